//! The canonical byte encoding of every consensus value.
//!
//! # Format
//! A hand-written, length-prefixed, big-endian encoding: integers are fixed width (`u8`, `u16`,
//! `u32`, `u64`), byte strings are a `u32` length followed by the bytes, sequences are a `u16`
//! count followed by the items, and an optional value is a `0`/`1` byte followed by the value.
//! There is exactly one encoding of each value, so hashes and signatures over it are stable
//! across machines and versions of any serialization library (we use none).
//!
//! # Invariants
//! - Decoding never allocates more than the remaining input can justify, and never panics.
//! - `decode(encode(x)) == x`, and a decoder that does not consume all of its input reports
//!   [`DecodeError::TrailingBytes`].

use thiserror::Error;

/// Why bytes could not be decoded into a consensus value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input truncated: needed {needed} more bytes at offset {at}")]
    Truncated {
        /// Bytes that were still needed.
        needed: usize,
        /// Offset where they were needed.
        at: usize,
    },
    /// The input is longer than a message may be.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A length or count field exceeds its limit.
    #[error("{what} of {len} exceeds the limit of {max}")]
    LengthLimit {
        /// Which field.
        what: &'static str,
        /// Its value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// The value is well formed but not in canonical form (for example unsorted signers).
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// Appends canonical encodings to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_domain(domain: &[u8]) -> Self {
        let mut enc = Self::new();
        enc.bytes(domain);
        enc
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Fixed-size bytes, no length prefix (hashes, keys, signatures).
    pub(crate) fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Variable-size bytes with a `u32` length prefix.
    ///
    /// Callers bound `v` (payloads by [`MAX_PAYLOAD_BYTES`]) so the length fits in a `u32`.
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    /// A sequence count; callers bound sequences well below `u16::MAX`.
    pub(crate) fn count(&mut self, n: usize) -> &mut Self {
        self.u16(u16::try_from(n).unwrap_or(u16::MAX))
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Largest application payload in one block. A proposal (block, TC, signature) stays well
/// under [`MAX_MESSAGE_BYTES`].
pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
/// Largest encoded consensus message; equal to the network adapter's default frame limit
/// (`net::config::DEFAULT_MAX_MESSAGE_SIZE`), so everything the core emits can be carried.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest count of any sequence (signers, blocks in a sync response).
pub(crate) const MAX_COUNT: usize = 1024;

/// Reads canonical encodings from a byte slice.
#[derive(Debug)]
pub(crate) struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.input.len() - self.pos;
        if n > remaining {
            return Err(DecodeError::Truncated {
                needed: n - remaining,
                at: self.pos,
            });
        }
        let out = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::LengthLimit { what, len, max });
        }
        Ok(self.take(len)?.to_vec())
    }

    /// A `u16` sequence count of at most `max`.
    pub(crate) fn count(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(DecodeError::LengthLimit { what, len, max });
        }
        Ok(len)
    }

    /// A `0`/`1` presence byte.
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::UnknownTag {
                what: "option",
                tag,
            }),
        }
    }

    /// Fails unless the whole input was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        let left = self.input.len() - self.pos;
        if left == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(left))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let mut enc = Encoder::new();
        enc.u8(7).u16(300).u64(1 << 40).bytes(b"abc").count(2);
        let bytes = enc.finish();
        let mut dec = Decoder::new(&bytes);
        assert_eq!(dec.u8(), Ok(7));
        assert_eq!(dec.u16(), Ok(300));
        assert_eq!(dec.u64(), Ok(1 << 40));
        assert_eq!(dec.bytes("x", 3), Ok(b"abc".to_vec()));
        assert_eq!(
            dec.count("n", 1).unwrap_err().to_string(),
            "n of 2 exceeds the limit of 1"
        );
        assert!(dec.finish().is_ok());

        let mut dec = Decoder::new(&bytes[..5]);
        dec.u8().unwrap();
        dec.u16().unwrap();
        assert_eq!(dec.u64(), Err(DecodeError::Truncated { needed: 6, at: 3 }));

        // A length prefix larger than the input must not allocate or panic.
        let mut dec = Decoder::new(&[0xFF, 0xFF, 0xFF, 0xF0]);
        assert!(matches!(
            dec.bytes("x", usize::MAX),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
