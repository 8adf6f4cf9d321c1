//! The ed25519 key file: a node's identity and validator key, a bridge's or a household's order
//! signing key.
//!
//! # Format
//! One line holding the 32-byte ed25519 secret key (seed) as 64 lowercase hex characters,
//! followed by a newline. Surrounding whitespace is ignored when reading. The public key (what
//! goes into the genesis file) is the 32-byte ed25519 public key, also as 64 hex characters
//! ([`PublicKey`]).
//!
//! On Unix the file is created with mode `0600`, and [`write()`] never overwrites an existing file.
//! The node's libp2p identity is derived from the same file (`voltmesh_consensus::net::keyfile`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::genesis::PublicKey;

/// Length of an ed25519 secret or public key in bytes.
pub const KEY_LEN: usize = 32;

/// A key file that cannot be read, written or parsed, or a key that cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed (including "already exists" when writing).
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The contents are not hexadecimal.
    #[error("key is not valid hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// The decoded key has the wrong length.
    #[error("key must be {expected} bytes, found {found}")]
    Length {
        /// Required length.
        expected: usize,
        /// Decoded length.
        found: usize,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A fresh key from the operating system's RNG (for `keygen`; never call this on a replicated
/// path).
///
/// # Errors
/// [`KeyError::Random`] if the operating system gives no randomness.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; KEY_LEN];
    getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The secret key as 64 hex characters (no newline): the key file's contents.
pub fn to_hex(key: &SigningKey) -> String {
    hex::encode(key.to_bytes())
}

/// Parses the hex secret key (surrounding whitespace ignored).
///
/// # Errors
/// [`KeyError::Hex`] for non-hex text, [`KeyError::Length`] if it does not decode to 32 bytes.
pub fn from_hex(text: &str) -> Result<SigningKey, KeyError> {
    let bytes = hex::decode(text.trim())?;
    let seed: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| KeyError::Length {
        expected: KEY_LEN,
        found: bytes.len(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key of `key`, as genesis lists it.
pub fn public_key(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// Writes `key` to a new file at `path` (mode `0600` on Unix).
///
/// # Errors
/// [`KeyError::Io`] if the file exists already or cannot be written.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err)?;
    file.write_all(to_hex(key).as_bytes()).map_err(io_err)?;
    file.write_all(b"\n").map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// Reads a key file.
///
/// # Errors
/// [`KeyError::Io`] if the file cannot be read, otherwise as for [`from_hex`].
pub fn read(path: &Path) -> Result<SigningKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_hex(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let key = generate().expect("rng");
        let text = to_hex(&key);
        assert_eq!(text.len(), 64);
        let back = from_hex(&format!("  {text}\n")).expect("parse");
        assert_eq!(back.to_bytes(), key.to_bytes());
        assert_eq!(public_key(&back), public_key(&key));
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        assert!(matches!(from_hex("zz"), Err(KeyError::Hex(_))));
        assert!(matches!(
            from_hex("abcd"),
            Err(KeyError::Length {
                expected: 32,
                found: 2
            })
        ));
        assert!(matches!(from_hex(""), Err(KeyError::Length { .. })));
    }

    #[test]
    fn write_then_read_and_never_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        let key = generate().expect("rng");
        write(&path, &key).expect("write");
        assert_eq!(read(&path).expect("read").to_bytes(), key.to_bytes());
        let text = fs::read_to_string(&path).expect("text");
        assert_eq!(text, format!("{}\n", to_hex(&key)));
        let other = generate().expect("rng");
        assert!(matches!(write(&path, &other), Err(KeyError::Io { .. })));
        assert_eq!(read(&path).expect("read").to_bytes(), key.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            read(&dir.path().join("missing.key")),
            Err(KeyError::Io { .. })
        ));
    }
}
