//! ed25519 signatures under the ZIP-215 rules, one at a time or in a batch: what orders and
//! metered deliveries are signed with (see [`crate::order`] for why ZIP-215).

use rand_chacha::rand_core::SeedableRng;

/// The bytes every signed object of the ledger is signed over: `<domain>\n<neighborhood>\n`
/// and the compact JSON of `value` (the domain keeps a signature for one kind of object from
/// passing for another, the neighborhood keeps it from being replayed in another one).
pub(crate) fn signing_bytes(
    domain: &str,
    neighborhood: &str,
    value: &impl serde::Serialize,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(domain.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(neighborhood.as_bytes());
    bytes.push(b'\n');
    // The ledger's objects are plain structs of strings, integers, booleans and vectors, which
    // always serialize.
    bytes.extend_from_slice(&serde_json::to_vec(value).unwrap_or_default());
    bytes
}

/// Whether `signature` by `key` over `message` is valid (ZIP-215).
pub(crate) fn valid(key: [u8; 32], signature: [u8; 64], message: &[u8]) -> bool {
    let Ok(key) = ed25519_zebra::VerificationKey::try_from(key) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from(signature), message)
        .is_ok()
}

/// Whether each `(key, signature, message)` is valid, as [`valid`] says, checked in one batch:
/// for hundreds of signatures about a third of the cost of checking them one by one. If the
/// batch fails, each is checked on its own to find the bad ones, so a bad signature costs what
/// it always did, never another's admission.
///
/// # Invariant
/// `batch_valid(entries)[i] == valid(entries[i])` for every `i`: ZIP-215 makes the batch
/// equation and the single one agree. The batch's random coefficients come from the operating
/// system, so nobody can craft a bad signature that passes it (a batch accepts a bad signature
/// with probability below 2^-128).
pub(crate) fn batch_valid(entries: &[([u8; 32], [u8; 64], Vec<u8>)]) -> Vec<bool> {
    let singly = || {
        entries
            .iter()
            .map(|(key, signature, message)| valid(*key, *signature, message))
            .collect()
    };
    if entries.len() < 2 {
        return singly();
    }
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (key, signature, message) in entries {
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(*key),
            ed25519_zebra::Signature::from(*signature),
            message,
        ));
    }
    let mut seed = [0u8; 32];
    if getrandom::getrandom(&mut seed).is_ok()
        && batch
            .verify(rand_chacha::ChaCha20Rng::from_seed(seed))
            .is_ok()
    {
        return vec![true; entries.len()];
    }
    singly()
}
