//! What the ledger's in-process tests (`ledger.rs`, `governance.rs`, `deliveries.rs`) share: the
//! start time `T0`, deterministic keys, block times after `T0`, and a block on top of another.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use voltmesh_consensus::protocol::{Block, QuorumCert, ValidatorIndex};
use voltmesh_consensus::wire::PublicKey;

/// The genesis time of every ledger test.
pub const T0: &str = "2026-11-22T10:00:00Z";

/// The signing key made of byte `n`.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// [`key`]`(n)`'s public key.
pub fn pk(n: u8) -> PublicKey {
    PublicKey(key(n).verifying_key().to_bytes())
}

/// `T0` in Unix seconds.
pub fn t0() -> i64 {
    T0.parse::<DateTime<Utc>>().unwrap().timestamp()
}

/// Milliseconds at `T0 + secs`.
pub fn at(secs: i64) -> u64 {
    (t0() + secs) as u64 * 1000
}

/// A block on `parent` (next height and view, proposer 0) at `T0 + secs` carrying `payload`.
pub fn child(parent: &Block, secs: i64, payload: Vec<u8>) -> Block {
    Block::new(
        parent.height() + 1,
        parent.view() + 1,
        ValidatorIndex(0),
        at(secs),
        QuorumCert::empty(parent.hash()),
        payload,
    )
}

/// The neighborhood of [`meters_genesis`].
pub const NB: &str = "meters";

/// Four validators (keys 100..=103); households h1 to h4 (keys 1 to 4); tariffs 0.08 / 0.32,
/// network fee 0.01; 15-minute intervals; a one-hour delivery window.
pub fn meters_genesis() -> voltmesh_consensus::wire::Genesis {
    use voltmesh_consensus::wire::delivery::DeliveryRules;
    use voltmesh_consensus::wire::{Genesis, GenesisValidator};
    use voltmesh_engine::{
        AdmissionLimits, IntervalSpec, MarketConfig, MarketRules, Mechanism, Tariffs, K,
    };
    Genesis {
        neighborhood: NB.into(),
        genesis_time: T0.parse::<DateTime<Utc>>().unwrap(),
        currency: voltmesh_wire::Currency::EUR,
        market: MarketConfig {
            mechanism: Mechanism::Uniform { k: K::HALF },
            rules: MarketRules {
                tariffs: Tariffs::new("0.08".parse().unwrap(), "0.32".parse().unwrap()).unwrap(),
                max_order_wh: 1_000_000,
            },
            network_fee: "0.01".parse().unwrap(),
            interval: IntervalSpec::DEFAULT,
            admission: AdmissionLimits::DEFAULT,
        },
        validators: (100..104)
            .map(|n| GenesisValidator {
                public_key: pk(n),
                address: format!("/ip4/127.0.0.1/tcp/{n}"),
            })
            .collect(),
        participants: (1..=4)
            .map(|n| (format!("h{n}").as_str().into(), vec![pk(n)]))
            .collect(),
        snapshot_interval_blocks: 0,
        governance: None,
        deliveries: DeliveryRules::default(),
        billing_keys: Vec::new(),
    }
    .validate()
    .unwrap()
}

/// The 10:15 interval of [`meters_genesis`], seconds after `T0`: gate at 10:10, ends 10:30,
/// delivery window closes 11:30.
pub const METERS_INTERVAL: i64 = 900;

/// Household `h<n>`'s order for the [`METERS_INTERVAL`], signed with its key.
pub fn meters_order(
    n: u8,
    side: voltmesh_engine::Side,
    wh: u64,
    price: &str,
) -> voltmesh_consensus::wire::SignedOrder {
    voltmesh_consensus::wire::OrderTicket {
        participant: format!("h{n}").as_str().into(),
        interval_start: t0() + METERS_INTERVAL,
        id: format!("o{n}").as_str().into(),
        side,
        quantity_wh: wh,
        limit_price: price.parse().unwrap(),
        nonce: 0,
    }
    .sign(NB, &key(n))
}

/// Household `h<n>`'s metered delivery for the [`METERS_INTERVAL`], signed with its key.
pub fn meters_delivery(
    n: u8,
    import_wh: u64,
    export_wh: u64,
) -> voltmesh_consensus::wire::delivery::SignedDelivery {
    voltmesh_consensus::wire::delivery::DeliveryTicket {
        participant: format!("h{n}").as_str().into(),
        interval_start: t0() + METERS_INTERVAL,
        import_wh,
        export_wh,
        meters: vec![format!("meter-h{n}")],
    }
    .sign(NB, &key(n))
}

/// Four validators' apps on one chain of `genesis`; each block is proposed by the first and
/// validated and committed by all.
pub struct MetersChain {
    /// The validators' apps.
    pub apps: Vec<voltmesh_consensus::ledger::LedgerApp>,
    /// The last block.
    pub tip: Block,
}

impl MetersChain {
    /// A chain of [`meters_genesis`].
    pub fn new() -> MetersChain {
        MetersChain::of(meters_genesis())
    }

    /// A chain of `genesis`.
    pub fn of(genesis: voltmesh_consensus::wire::Genesis) -> MetersChain {
        let g = std::sync::Arc::new(genesis);
        let genesis_block = Block::genesis(g.genesis_time_ms(), NB.as_bytes().to_vec());
        MetersChain {
            apps: (0..4)
                .map(|_| {
                    voltmesh_consensus::ledger::LedgerApp::new(
                        std::sync::Arc::clone(&g),
                        &genesis_block,
                    )
                })
                .collect(),
            tip: genesis_block,
        }
    }

    /// The first app proposes a block at `secs` after `T0`; every app validates and commits it.
    pub fn block(&mut self, secs: i64) -> voltmesh_consensus::ledger::BlockBody {
        use voltmesh_consensus::protocol::App;
        let payload = self.apps[0].propose(&self.tip, at(secs));
        let block = child(&self.tip, secs, payload);
        for app in &mut self.apps {
            app.validate(&self.tip, block.payload(), at(secs)).unwrap();
            app.certified(&block);
            app.commit(&block);
        }
        self.tip = block;
        voltmesh_consensus::ledger::BlockBody::decode(self.tip.payload()).unwrap()
    }
}

/// The seed of the billing key the correction tests name in genesis.
pub const BILLING: u8 = 50;

/// A correction import of official `(participant, import Wh, export Wh)` readings for the
/// [`METERS_INTERVAL`], whose leaves are now `leaves`, signed with key `signer`.
pub fn correction_import(
    leaves: &[voltmesh_consensus::wire::correction::SettledLeaf],
    readings: &[(&str, u64, u64)],
    id: &str,
    signer: u8,
) -> voltmesh_consensus::wire::correction::SignedCorrection {
    use voltmesh_consensus::wire::correction::{
        settlement_proof, CorrectionTicket, IntervalCorrection, LeafCorrection,
    };
    let hashes: Vec<[u8; 32]> = leaves.iter().map(|l| l.hash()).collect();
    let mut corrections: Vec<LeafCorrection> = readings
        .iter()
        .map(|&(who, import_wh, export_wh)| {
            let index = leaves
                .iter()
                .position(|l| l.participant.as_str() == who)
                .unwrap();
            LeafCorrection {
                index: index as u32,
                leaf: leaves[index].clone(),
                metering_points: vec![format!("AT00300000000000000000000{who}")],
                import_wh,
                export_wh,
            }
        })
        .collect();
    corrections.sort_by_key(|c| c.index);
    let indices: Vec<usize> = corrections.iter().map(|c| c.index as usize).collect();
    CorrectionTicket {
        id: id.into(),
        source: "EDA".into(),
        intervals: vec![IntervalCorrection {
            interval_start: t0() + METERS_INTERVAL,
            proof: settlement_proof(&hashes, &indices),
            corrections,
        }],
    }
    .sign(NB, &key(signer))
}

/// The book the bills, corrections and verify tests share for the [`METERS_INTERVAL`]: h1 sells
/// 1,500 Wh at 0.10 or more, h2 buys 1,000 at up to 0.30, h3 500 at up to 0.25 (h1 sells to
/// both).
pub fn meters_book() -> [voltmesh_consensus::wire::SignedOrder; 3] {
    use voltmesh_engine::Side;
    [
        meters_order(1, Side::Sell, 1_500, "0.10"),
        meters_order(2, Side::Buy, 1_000, "0.30"),
        meters_order(3, Side::Buy, 500, "0.25"),
    ]
}
