//! Who may read what (issue 14, deliverable 6), decided by the driver on the committed state:
//! a participant's trades, bills and statements go to requests signed by one of its keys
//! (removed members keep reading their history) or by a billing key named in genesis; one
//! interval's bills with every participant go to billing keys only.

use voltmesh_engine::ParticipantId;
use voltmesh_wire::read::ReadRejection;
use voltmesh_wire::Genesis;

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
}
