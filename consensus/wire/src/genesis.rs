//! The genesis file every node of a neighborhood shares: validators, market, participants.
//!
//! # Invariants (checked by [`Genesis::validate`])
//! At least one validator; validator keys are distinct; every participant has at least one key;
//! the market configuration is consistent. Participant ids are pseudonyms: the ledger never holds
//! a name or an address of a household.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use voltmesh_engine::{ConfigError, MarketConfig, ParticipantId};

use crate::currency::Currency;
use crate::delivery::DeliveryRules;
use crate::governance::{Policies, Policy};

/// Most intervals one block clears. Gates that closed together (after a stall) are cleared in
/// consecutive blocks, oldest first; orders for them are refused from their gate on either way.
pub const MAX_CLEARINGS_PER_BLOCK: usize = 1;

/// An ed25519 public key, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key for signature checks.
    ///
    /// # Errors
    /// [`GenesisError::BadKey`] if the bytes are not a valid curve point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, GenesisError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| GenesisError::BadKey(self.to_string()))
    }

    /// The key for signature checks, refusing small-order keys (under which one signature can
    /// verify for many messages).
    ///
    /// # Errors
    /// [`GenesisError::BadKey`] if not a curve point, [`GenesisError::WeakKey`] if of small order.
    pub fn strong_verifying_key(&self) -> Result<VerifyingKey, GenesisError> {
        let key = self.verifying_key()?;
        if key.is_weak() {
            return Err(GenesisError::WeakKey(self.to_string()));
        }
        Ok(key)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = GenesisError;
    fn from_str(text: &str) -> Result<Self, GenesisError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| GenesisError::BadKey(text.to_owned()))?;
        Ok(PublicKey(bytes))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One validator node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Its ed25519 key: libp2p identity and validator key at once.
    pub public_key: PublicKey,
    /// Where other validators dial it (a libp2p multiaddr, e.g. `/ip4/10.0.0.1/tcp/7100`).
    pub address: String,
}

/// The shared genesis of a neighborhood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The neighborhood's name; also separates signatures between neighborhoods.
    pub neighborhood: String,
    /// When the chain starts.
    pub genesis_time: DateTime<Utc>,
    /// The currency of every price and amount (ISO 4217, e.g. `"EUR"`); absent means EUR.
    #[serde(default)]
    pub currency: Currency,
    /// Mechanism, tariffs, network fee, interval length and gate closure.
    pub market: MarketConfig,
    /// The validator set, in index order.
    pub validators: Vec<GenesisValidator>,
    /// Participant pseudonym → keys allowed to sign its orders (its own, its bridge's).
    pub participants: BTreeMap<ParticipantId, Vec<PublicKey>>,
    /// Every this many committed blocks the ledger state is snapshotted, and the next block
    /// carries the snapshot's digest, which the validators check: a new or wiped node starts
    /// from a verified snapshot instead of replaying the chain (state sync). `0` (the default,
    /// and what a genesis without the key means) turns snapshots off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshot_interval_blocks: u64,
    /// Who may approve governance actions ([`crate::governance`]); absent: a Byzantine quorum
    /// of the validators' keys for every scope ([`Genesis::policies`]). Governance changes the
    /// policies on the ledger; genesis holds the first ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<Policies>,
    /// What the ledger admits of metered deliveries ([`crate::delivery`]); absent: the
    /// defaults.
    #[serde(default, skip_serializing_if = "is_default_deliveries")]
    pub deliveries: DeliveryRules,
    /// Keys the community names for billing: besides a participant's own keys, only these may
    /// read its trades, bills and statements ([`crate::read`]); absent: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub billing_keys: Vec<PublicKey>,
}

fn is_default_deliveries(rules: &DeliveryRules) -> bool {
    *rules == DeliveryRules::default()
}

/// The snapshot interval a new genesis gets: about two minutes of blocks at two per second.
pub const DEFAULT_SNAPSHOT_INTERVAL_BLOCKS: u64 = 256;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An unusable genesis file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// Not JSON of the genesis shape.
    #[error("genesis is malformed: {0}")]
    Malformed(String),
    /// The delivery rules are unusable.
    #[error("genesis deliveries: {0}")]
    Deliveries(String),
    /// No validators.
    #[error("genesis lists no validators")]
    NoValidators,
    /// Two validators share a key.
    #[error("validator key {0} appears twice")]
    DuplicateValidator(String),
    /// A key is not valid ed25519.
    #[error("{0:?} is not an ed25519 public key")]
    BadKey(String),
    /// A key is of small order (a "weak" key: one signature verifies for many messages).
    #[error("{0:?} is a small-order (weak) ed25519 key")]
    WeakKey(String),
    /// A participant has no key.
    #[error("participant {0} has no keys")]
    ParticipantWithoutKeys(ParticipantId),
    /// The market configuration is inconsistent.
    #[error("market: {0}")]
    Market(#[from] ConfigError),
    /// A governance policy is inconsistent.
    #[error("governance: {0}")]
    Governance(String),
}

impl Genesis {
    /// Parses and validates a genesis file.
    ///
    /// # Errors
    /// [`GenesisError`] naming the problem.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis =
            serde_json::from_str(text).map_err(|e| GenesisError::Malformed(e.to_string()))?;
        genesis.validate()
    }

    /// Checks the invariants.
    ///
    /// # Errors
    /// The first broken invariant.
    pub fn validate(self) -> Result<Genesis, GenesisError> {
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        let mut seen = BTreeSet::new();
        for v in &self.validators {
            v.public_key.strong_verifying_key()?;
            if !seen.insert(v.public_key) {
                return Err(GenesisError::DuplicateValidator(v.public_key.to_string()));
            }
        }
        for (participant, keys) in &self.participants {
            if keys.is_empty() {
                return Err(GenesisError::ParticipantWithoutKeys(participant.clone()));
            }
            for key in keys {
                key.strong_verifying_key()?;
            }
        }
        self.market.validate()?;
        if self.deliveries.window_secs == 0 || self.deliveries.max_connection_kw == 0 {
            return Err(GenesisError::Deliveries(
                "window_secs and max_connection_kw must be at least 1".into(),
            ));
        }
        if let Some(policies) = &self.governance {
            policies
                .check()
                .map_err(|e| GenesisError::Governance(e.to_string()))?;
        }
        Ok(self)
    }

    /// The governance policies at genesis: the file's, or a Byzantine quorum of the validators'
    /// keys ([`Policy::quorum_of`]) for every scope.
    #[must_use]
    pub fn policies(&self) -> Policies {
        self.governance.clone().unwrap_or_else(|| {
            let quorum = Policy::quorum_of(self.validators.iter().map(|v| v.public_key).collect());
            Policies {
                members: quorum.clone(),
                rules: quorum,
                prices: None,
            }
        })
    }

    /// The genesis time in milliseconds since the Unix epoch.
    pub fn genesis_time_ms(&self) -> u64 {
        u64::try_from(self.genesis_time.timestamp_millis()).unwrap_or(0)
    }

    /// Whether `key` may sign orders for `participant`.
    pub fn may_sign(&self, participant: &ParticipantId, key: &PublicKey) -> Option<bool> {
        self.participants
            .get(participant)
            .map(|keys| keys.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use voltmesh_engine::{IntervalSpec, MarketRules, Mechanism, Price, Tariffs, K};

    fn pk(n: u8) -> PublicKey {
        PublicKey(SigningKey::from_bytes(&[n; 32]).verifying_key().to_bytes())
    }

    fn p(s: &str) -> Price {
        s.parse().expect("price")
    }

    fn genesis() -> Genesis {
        Genesis {
            neighborhood: "testville".into(),
            genesis_time: "2026-09-21T00:00:00Z".parse().expect("time"),
            currency: crate::Currency::EUR,
            market: MarketConfig {
                mechanism: Mechanism::Uniform { k: K::HALF },
                rules: MarketRules {
                    tariffs: Tariffs::new(p("0.08"), p("0.32")).expect("tariffs"),
                    max_order_wh: 1_000_000,
                },
                network_fee: p("0.01"),
                interval: IntervalSpec::DEFAULT,
                admission: voltmesh_engine::AdmissionLimits::DEFAULT,
            },
            validators: (100..104)
                .map(|n| GenesisValidator {
                    public_key: pk(n),
                    address: format!("/ip4/127.0.0.1/tcp/{n}"),
                })
                .collect(),
            participants: BTreeMap::from([("h1".into(), vec![pk(1), pk(9)])]),
            snapshot_interval_blocks: DEFAULT_SNAPSHOT_INTERVAL_BLOCKS,
            governance: None,
            deliveries: Default::default(),
            billing_keys: Vec::new(),
        }
    }

    fn parse(genesis: &Genesis) -> Result<Genesis, GenesisError> {
        Genesis::from_json(&serde_json::to_string(genesis).expect("json"))
    }

    #[test]
    fn a_valid_genesis_round_trips() {
        let g = genesis();
        assert_eq!(parse(&g), Ok(g.clone()));
        assert_eq!(g.may_sign(&"h1".into(), &pk(9)), Some(true));
        assert_eq!(g.may_sign(&"h1".into(), &pk(2)), Some(false));
        assert_eq!(g.may_sign(&"h2".into(), &pk(1)), None);
        assert_eq!(g.genesis_time_ms(), 1_789_948_800_000);
    }

    #[test]
    fn the_currency_defaults_to_eur_and_must_have_a_minor_unit() {
        let mut json = serde_json::to_value(genesis()).expect("json");
        json.as_object_mut().expect("object").remove("currency");
        let g = Genesis::from_json(&json.to_string()).expect("a genesis without currency");
        assert_eq!(g.currency, Currency::EUR);
        json["currency"] = "JPY".into();
        let g = Genesis::from_json(&json.to_string()).expect("JPY");
        assert_eq!(
            (g.currency.code(), g.currency.minor_unit_decimals()),
            ("JPY", 0)
        );
        json["currency"] = "XAU".into();
        let err = Genesis::from_json(&json.to_string()).expect_err("gold");
        assert!(err.to_string().contains("no minor unit"), "{err}");
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(matches!(
            Genesis::from_json("{}"),
            Err(GenesisError::Malformed(_))
        ));
        let mut g = genesis();
        g.validators.clear();
        assert_eq!(parse(&g), Err(GenesisError::NoValidators));

        let mut g = genesis();
        g.validators[1].public_key = g.validators[0].public_key;
        assert_eq!(
            parse(&g),
            Err(GenesisError::DuplicateValidator(pk(100).to_string()))
        );

        let mut g = genesis();
        g.participants.insert("h2".into(), Vec::new());
        assert_eq!(
            parse(&g),
            Err(GenesisError::ParticipantWithoutKeys("h2".into()))
        );

        // Some 32-byte strings are not points on the curve.
        let not_a_point = (0..=u8::MAX)
            .map(|b| PublicKey([b; 32]))
            .find(|k| k.verifying_key().is_err())
            .expect("a non-point");
        let mut g = genesis();
        g.participants.insert("h2".into(), vec![not_a_point]);
        assert_eq!(
            parse(&g),
            Err(GenesisError::BadKey(not_a_point.to_string()))
        );
        assert!(matches!(
            "zz".parse::<PublicKey>(),
            Err(GenesisError::BadKey(_))
        ));

        // Small-order keys are points, but weak (audit L8): refused for participants and
        // validators.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey(identity);
        assert!(weak.verifying_key().is_ok());
        let mut g = genesis();
        g.participants.insert("h2".into(), vec![weak]);
        assert_eq!(parse(&g), Err(GenesisError::WeakKey(weak.to_string())));
        let mut g = genesis();
        g.validators[2].public_key = weak;
        assert_eq!(parse(&g), Err(GenesisError::WeakKey(weak.to_string())));

        // Blocks carry clearing records, not clearings: a book's size is the community's
        // choice (issue 12: 10,000 households in one interval).
        let mut g = genesis();
        g.market.admission.max_orders_per_interval = 100_000;
        assert!(parse(&g).is_ok());

        let mut g = genesis();
        g.market.rules.tariffs.feed_in = p("0.50");
        assert!(matches!(parse(&g), Err(GenesisError::Market(_))));

        let text =
            serde_json::to_string(&genesis())
                .expect("json")
                .replacen('{', "{\"extra\":1,", 1);
        assert!(matches!(
            Genesis::from_json(&text),
            Err(GenesisError::Malformed(_))
        ));
    }

    #[test]
    fn public_keys_are_64_hex_digits() {
        let key = pk(1);
        let text = serde_json::to_string(&key).expect("json");
        assert_eq!(text.len(), 66);
        assert_eq!(
            serde_json::from_str::<PublicKey>(&text).expect("parse"),
            key
        );
        assert_eq!(format!("{key:?}"), format!("PublicKey({key})"));
    }
}
