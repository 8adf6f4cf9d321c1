//! Who may read what (issue 14, deliverable 6), decided by the driver on the committed state:
//! a participant's trades, bills and statements go to requests signed by one of its keys
//! (removed members keep reading their history) or by a billing key named in genesis; one
//! interval's bills with every participant go to billing keys only.
//!
//! The ledger's replication surface (an interval's clearing, a block, the snapshot) is served
//! by [`Scope`]: whole to billing keys and validators' keys, the trades, unfilled orders and
//! orders of the participants a key may sign for to that key, and only the aggregates (price,
//! volume, counts) to an unsigned request; the snapshot only whole.

use std::collections::BTreeSet;

use voltmesh_engine::ParticipantId;
use voltmesh_wire::api::BlockView;
use voltmesh_wire::read::ReadRejection;
use voltmesh_wire::{Genesis, IntervalClearing};

use super::api_reads::ReadAuth;
use crate::ledger::Community;

/// Whether the request `auth` describes may read `participant`'s data (`None`: every
/// participant's, which only billing keys may), at `now_ms`.
///
/// # Errors
/// [`ReadRejection`] naming why not.
pub(super) fn authorize(
    genesis: &Genesis,
    community: &Community,
    participant: Option<&ParticipantId>,
    auth: &ReadAuth,
    now_ms: u64,
) -> Result<(), ReadRejection> {
    let signature = auth.signature.as_ref().ok_or(ReadRejection::Unsigned)?;
    signature.check(&genesis.neighborhood, "GET", &auth.path_and_query, now_ms)?;
    if genesis.billing_keys.contains(&signature.key) {
        return Ok(());
    }
    let own = participant.is_some_and(|p| {
        community
            .members()
            .get(p)
            .is_some_and(|member| member.keys.contains(&signature.key))
    });
    if own {
        return Ok(());
    }
    Err(ReadRejection::Forbidden {
        key: signature.key.to_string(),
        participant: participant.map_or_else(|| "every participant".to_owned(), |p| p.to_string()),
    })
}

/// What a reader may see of intervals, blocks and snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// A billing key or a validator's key: everything.
    Everything,
    /// A signed read by a key the members named here list: their trades and orders.
    Participants(BTreeSet<ParticipantId>),
    /// An unsigned read (or a key no member lists): aggregates only.
    Aggregates,
}

impl Scope {
    /// The scope of the request `auth` describes, at `now_ms`.
    ///
    /// # Errors
    /// [`ReadRejection`] for a signature that does not check (an absent one is
    /// [`Scope::Aggregates`]).
    pub(super) fn of(
        genesis: &Genesis,
        community: &Community,
        auth: &ReadAuth,
        now_ms: u64,
    ) -> Result<Scope, ReadRejection> {
        let Some(signature) = auth.signature.as_ref() else {
            return Ok(Scope::Aggregates);
        };
        signature.check(&genesis.neighborhood, "GET", &auth.path_and_query, now_ms)?;
        let key = &signature.key;
        let validator = genesis
            .validators
            .iter()
            .chain(&community.epoch().validators)
            .any(|v| v.public_key == *key);
        if validator || genesis.billing_keys.contains(key) {
            return Ok(Scope::Everything);
        }
        let members: BTreeSet<ParticipantId> = community
            .members()
            .iter()
            .filter(|(_, m)| m.keys.contains(key))
            .map(|(p, _)| p.clone())
            .collect();
        Ok(if members.is_empty() {
            Scope::Aggregates
        } else {
            Scope::Participants(members)
        })
    }

    /// Whether the reader sees `participant`'s trades and orders.
    pub(super) fn sees(&self, participant: &ParticipantId) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Participants(members) => members.contains(participant),
            Scope::Aggregates => false,
        }
    }

    /// Keeps the trades with a party and the unfilled orders of a participant the reader sees;
    /// price and volume stay.
    pub(super) fn clearing(&self, mut clearing: IntervalClearing) -> IntervalClearing {
        if *self != Scope::Everything {
            let (trades, unfilled) = (clearing.trade_count(), clearing.unfilled_count());
            let outcome = &mut clearing.outcome;
            outcome
                .trades
                .retain(|t| self.sees(&t.buyer) || self.sees(&t.seller));
            // The ledger's engine ids are `participant:id` (order ids have no `:`).
            outcome.unfilled.retain(|u| {
                u.id.as_str()
                    .rsplit_once(':')
                    .is_some_and(|(p, _)| self.sees(&ParticipantId::from(p)))
            });
            let withheld = voltmesh_wire::clearing::Withheld {
                trades: trades - outcome.trades.len() as u64,
                unfilled: unfilled - outcome.unfilled.len() as u64,
            };
            clearing.withheld =
                (withheld != voltmesh_wire::clearing::Withheld::default()).then_some(withheld);
        }
        clearing
    }

    /// Keeps the orders and clearings' trades the reader sees (module docs).
    pub(super) fn block(&self, mut block: BlockView) -> BlockView {
        if *self != Scope::Everything {
            block.orders.retain(|o| self.sees(&o.ticket.participant));
            block.clearings = block
                .clearings
                .into_iter()
                .map(|c| self.clearing(c))
                .collect();
        }
        block
    }

    /// The snapshot holds every participant's open orders, deliveries and waiting trades: only
    /// [`Scope::Everything`] reads it.
    ///
    /// # Errors
    /// [`ReadRejection::Unsigned`] or [`ReadRejection::Forbidden`].
    pub(super) fn snapshot(&self, auth: &ReadAuth) -> Result<(), ReadRejection> {
        match (self, &auth.signature) {
            (Scope::Everything, _) => Ok(()),
            (_, None) => Err(ReadRejection::Unsigned),
            (_, Some(signature)) => Err(ReadRejection::Forbidden {
                key: signature.key.to_string(),
                participant: "the ledger's snapshot".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ed25519_dalek::SigningKey;
    use voltmesh_wire::read::{sign, ReadSignature};
    use voltmesh_wire::PublicKey;

    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn pk(n: u8) -> PublicKey {
        PublicKey(key(n).verifying_key().to_bytes())
    }

    fn genesis() -> Genesis {
        let text = serde_json::json!({
            "neighborhood": "nb",
            "genesis_time": "2026-01-01T00:00:00Z",
            "market": {
                "mechanism": {"kind": "uniform", "k": "0.5"},
                "rules": {"tariffs": {"feed_in": "0.08", "retail": "0.32"}, "max_order_wh": 1000},
                "network_fee": "0.01",
                "interval": {"length_secs": 900, "gate_closure_lead_secs": 300},
            },
            "validators": (100..104).map(|n| serde_json::json!({
                "public_key": pk(n).to_string(), "address": "/ip4/127.0.0.1/tcp/1"
            })).collect::<Vec<_>>(),
            "participants": BTreeMap::from([("h1", vec![pk(1).to_string()]), ("h2", vec![pk(2).to_string()])]),
            "billing_keys": [pk(9).to_string()],
        });
        Genesis::from_json(&text.to_string()).unwrap()
    }

    fn auth(signer: u8, path: &str, time_ms: u64) -> ReadAuth {
        let [(_, k), (_, t), (_, s)] = sign("nb", "GET", path, time_ms, &key(signer));
        ReadAuth {
            signature: ReadSignature::from_headers(Some(&k), Some(&t), Some(&s)).unwrap(),
            path_and_query: path.to_owned(),
        }
    }

    #[test]
    fn own_keys_and_billing_keys_read_others_do_not() {
        let g = genesis();
        let community = Community::genesis(&g);
        let (h1, now) = (ParticipantId::from("h1"), 1_000_000);
        let path = "/v1/participants/h1/statement?from=0&to=900";
        let check = |who: Option<&ParticipantId>, auth: &ReadAuth| {
            authorize(&g, &community, who, auth, now).map_err(|e| e.kind())
        };
        assert_eq!(check(Some(&h1), &auth(1, path, now)), Ok(()));
        assert_eq!(check(Some(&h1), &auth(9, path, now)), Ok(()), "billing key");
        assert_eq!(
            check(Some(&h1), &auth(2, path, now)),
            Err("forbidden"),
            "h2's key"
        );
        assert_eq!(
            check(None, &auth(1, path, now)),
            Err("forbidden"),
            "not everyone's"
        );
        assert_eq!(check(None, &auth(9, path, now)), Ok(()));
        let unsigned = ReadAuth {
            signature: None,
            path_and_query: path.to_owned(),
        };
        assert_eq!(check(Some(&h1), &unsigned), Err("unsigned_read"));
        // Signed for another path, or long ago.
        let mut moved = auth(1, path, now);
        moved.path_and_query = "/v1/participants/h2/statement?from=0&to=900".into();
        assert_eq!(check(Some(&h1), &moved), Err("bad_signature"));
        assert_eq!(
            check(Some(&h1), &auth(1, path, now - 600_000)),
            Err("stale_read")
        );
    }

    /// Intervals and blocks are served whole to billing and validator keys, the reader's own
    /// trades, unfilled orders and orders to a member's key, aggregates to anyone; snapshots
    /// only whole.
    #[test]
    fn a_clearing_and_a_block_show_what_the_reader_may_see() {
        use voltmesh_engine::{ClearingOutcome, Mechanism, Side, Trade, Unfilled, K};
        let g = genesis();
        let community = Community::genesis(&g);
        let now = 1_000_000;
        let path = "/v1/intervals/900";
        let scope = |auth: &ReadAuth| Scope::of(&g, &community, auth, now);
        let trade = |buyer: &str, seller: &str| Trade {
            buyer: buyer.into(),
            seller: seller.into(),
            quantity_wh: 100,
            price: "0.20".parse().unwrap(),
            buy_id: format!("{buyer}:b").as_str().into(),
            sell_id: format!("{seller}:s").as_str().into(),
        };
        let clearing = IntervalClearing {
            withheld: None,
            interval_start: 900,
            outcome: ClearingOutcome {
                mechanism: Mechanism::Uniform { k: K::HALF },
                clearing_price: Some("0.20".parse().unwrap()),
                price_range: None,
                volume_wh: 200,
                trades: vec![trade("h2", "h1"), trade("h2", "h3")],
                unfilled: vec![
                    Unfilled {
                        id: "h1:s".into(),
                        side: Side::Sell,
                        remaining_wh: 5,
                    },
                    Unfilled {
                        id: "h2:b".into(),
                        side: Side::Buy,
                        remaining_wh: 7,
                    },
                ],
            },
        };
        let unsigned = ReadAuth {
            signature: None,
            path_and_query: path.to_owned(),
        };
        for (auth, trades, unfilled) in [
            (auth(9, path, now), 2, 2),
            (auth(100, path, now), 2, 2),
            (auth(1, path, now), 1, 1),
            (auth(2, path, now), 2, 1),
            (auth(5, path, now), 0, 0),
            (unsigned.clone(), 0, 0),
        ] {
            let seen = scope(&auth).unwrap().clearing(clearing.clone());
            assert_eq!(seen.outcome.volume_wh, 200, "aggregates for everyone");
            assert_eq!(seen.outcome.clearing_price, clearing.outcome.clearing_price);
            assert_eq!(
                (seen.trade_count(), seen.unfilled_count()),
                (2, 2),
                "counts too"
            );
            assert_eq!(
                (seen.outcome.trades.len(), seen.outcome.unfilled.len()),
                (trades, unfilled),
                "{auth:?}"
            );
        }
        let h1 = scope(&auth(1, path, now)).unwrap();
        assert!(h1.sees(&"h1".into()) && !h1.sees(&"h2".into()));
        assert_eq!(
            h1.snapshot(&auth(1, path, now)).unwrap_err().kind(),
            "forbidden"
        );
        assert_eq!(
            scope(&unsigned)
                .unwrap()
                .snapshot(&unsigned)
                .unwrap_err()
                .kind(),
            "unsigned_read"
        );
        assert_eq!(
            scope(&auth(100, path, now)).unwrap().snapshot(&unsigned),
            Ok(())
        );
        assert_eq!(
            scope(&auth(1, path, now - 600_000)).unwrap_err().kind(),
            "stale_read"
        );
    }
}
