//! The node key file written by `voltmesh keygen`, as a libp2p identity.
//!
//! # Format
//! The file format is the wire contract's ([`voltmesh_wire::key`]): one line holding the 32-byte
//! ed25519 secret key as 64 lowercase hex characters. This module only converts between it and
//! libp2p's [`Keypair`]; the libp2p [`PeerId`] is derived from the same key.

use std::path::Path;

use libp2p::{
    identity::{ed25519, Keypair},
    PeerId,
};

use ed25519_dalek::SigningKey;
use voltmesh_wire::key;
pub use voltmesh_wire::key::KEY_LEN;

use super::error::KeyFileError;

/// A fresh ed25519 keypair from the operating system's RNG (for `voltmesh keygen`; never call this
/// on a replicated path).
#[must_use]
pub fn generate_keypair() -> Keypair {
    Keypair::generate_ed25519()
}

/// The 32-byte ed25519 secret key (seed) of `keypair`, e.g. to build the consensus signer
/// (`ed25519_dalek::SigningKey::from_bytes`) from the same key file as the libp2p identity.
///
/// # Errors
/// [`KeyFileError::NotEd25519`] if the keypair is not ed25519.
pub fn secret_key_bytes(keypair: &Keypair) -> Result<[u8; KEY_LEN], KeyFileError> {
    let ed = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| KeyFileError::NotEd25519)?;
    // `to_bytes` is the secret (32 bytes) followed by the public key (32 bytes).
    let bytes = ed.to_bytes();
    let mut secret = [0u8; KEY_LEN];
    secret.copy_from_slice(&bytes[..KEY_LEN]);
    Ok(secret)
}

/// The 32-byte ed25519 public key of `keypair`.
///
/// # Errors
/// [`KeyFileError::NotEd25519`] if the keypair is not ed25519.
pub fn public_key_bytes(keypair: &Keypair) -> Result<[u8; KEY_LEN], KeyFileError> {
    let public = keypair
        .public()
        .try_into_ed25519()
        .map_err(|_| KeyFileError::NotEd25519)?;
    Ok(public.to_bytes())
}

/// The secret key of `keypair` as 64 hex characters (no newline).
///
/// # Errors
/// [`KeyFileError::NotEd25519`] if the keypair is not ed25519.
pub fn secret_to_hex(keypair: &Keypair) -> Result<String, KeyFileError> {
    Ok(hex::encode(secret_key_bytes(keypair)?))
}

/// Parses a keypair from the hex secret key (surrounding whitespace ignored).
///
/// # Errors
/// [`KeyFileError::Key`] for non-hex text or a length other than 32 bytes ([`key::from_hex`]),
/// [`KeyFileError::Invalid`] if libp2p refuses the key.
pub fn keypair_from_hex(text: &str) -> Result<Keypair, KeyFileError> {
    let secret = key::from_hex(text)?;
    Keypair::ed25519_from_bytes(secret.to_bytes()).map_err(KeyFileError::Invalid)
}

/// The ed25519 public key of `keypair` as 64 hex characters.
///
/// # Errors
/// [`KeyFileError::NotEd25519`] if the keypair is not ed25519.
pub fn public_key_hex(keypair: &Keypair) -> Result<String, KeyFileError> {
    Ok(hex::encode(public_key_bytes(keypair)?))
}

/// Parses an ed25519 public key from 64 hex characters (as written in the genesis file).
///
/// # Errors
/// [`KeyFileError::Key`] or [`KeyFileError::Invalid`] as for [`keypair_from_hex`].
pub fn public_key_from_hex(text: &str) -> Result<ed25519::PublicKey, KeyFileError> {
    let bytes = hex::decode(text.trim()).map_err(key::KeyError::Hex)?;
    if bytes.len() != KEY_LEN {
        return Err(key::KeyError::Length {
            expected: KEY_LEN,
            found: bytes.len(),
        }
        .into());
    }
    ed25519::PublicKey::try_from_bytes(&bytes).map_err(KeyFileError::Invalid)
}

/// The libp2p peer id of an ed25519 public key.
#[must_use]
pub fn peer_id_of(public: &ed25519::PublicKey) -> PeerId {
    libp2p::identity::PublicKey::from(public.clone()).to_peer_id()
}

/// Writes `keypair` to a new file at `path` in the key file format ([`key::write`]).
///
/// # Errors
/// [`KeyFileError::Key`] if the file exists already or cannot be written,
/// [`KeyFileError::NotEd25519`] if the keypair is not ed25519.
pub fn save_keypair(path: &Path, keypair: &Keypair) -> Result<(), KeyFileError> {
    let secret = SigningKey::from_bytes(&secret_key_bytes(keypair)?);
    Ok(key::write(path, &secret)?)
}

/// Reads a keypair from a key file ([`key::read`]).
///
/// # Errors
/// [`KeyFileError::Key`] if the file cannot be read, otherwise as for [`keypair_from_hex`].
pub fn load_keypair(path: &Path) -> Result<Keypair, KeyFileError> {
    let secret = key::read(path)?;
    Keypair::ed25519_from_bytes(secret.to_bytes()).map_err(KeyFileError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn hex_round_trip_keeps_identity() {
        let kp = generate_keypair();
        let text = secret_to_hex(&kp).expect("ed25519");
        assert_eq!(text.len(), 64);
        let back = keypair_from_hex(&format!("  {text}\n")).expect("parse");
        assert_eq!(back.public(), kp.public());
        let public = public_key_from_hex(&public_key_hex(&kp).expect("ed")).expect("pk");
        assert_eq!(peer_id_of(&public), kp.public().to_peer_id());
        // The seed alone rebuilds the same keypair (what a second signer library would do).
        let seed = secret_key_bytes(&kp).expect("ed");
        let again = Keypair::ed25519_from_bytes(seed).expect("seed");
        assert_eq!(public_key_bytes(&again).expect("ed"), public.to_bytes());
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        assert!(matches!(
            keypair_from_hex("zz"),
            Err(KeyFileError::Key(key::KeyError::Hex(_)))
        ));
        assert!(matches!(
            keypair_from_hex("abcd"),
            Err(KeyFileError::Key(key::KeyError::Length {
                expected: 32,
                found: 2
            }))
        ));
        assert!(matches!(
            public_key_from_hex(&"00".repeat(31)),
            Err(KeyFileError::Key(key::KeyError::Length { .. }))
        ));
        assert!(matches!(
            keypair_from_hex(""),
            Err(KeyFileError::Key(key::KeyError::Length { .. }))
        ));
    }

    #[test]
    fn save_then_load_and_never_overwrite() {
        let dir = std::env::temp_dir().join(format!(
            "voltmesh-keyfile-test-{}-{}",
            std::process::id(),
            public_key_hex(&generate_keypair()).expect("ed")
        ));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("node.key");
        let kp = generate_keypair();
        save_keypair(&path, &kp).expect("save");
        let loaded = load_keypair(&path).expect("load");
        assert_eq!(loaded.public(), kp.public());
        let other = generate_keypair();
        assert!(matches!(
            save_keypair(&path, &other),
            Err(KeyFileError::Key(key::KeyError::Io { .. }))
        ));
        assert_eq!(load_keypair(&path).expect("load").public(), kp.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
