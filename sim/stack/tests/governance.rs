//! Issue 13 with real `voltmesh node` processes: the community changes on the ledger, without a
//! new genesis. A household joins through `voltmesh admin` (draft, sign on each organisation's
//! key, combine, submit) and trades in the next interval; fewer approvals than the quorum change
//! nothing; a rotated key signs and the revoked one is refused; a removed household is refused
//! from its interval on and its history stays readable; new tariffs and k apply exactly from
//! their interval; after a restart of every node the ledgers are identical and
//! `voltmesh verify` replays the governance.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use support::{open_interval, Cluster};
use voltmesh::testing::cluster::{household_key, NEIGHBORHOOD};
use voltmesh_engine::{Mechanism, Price, Side, Tariffs, K};
use voltmesh_wire::api::CommunityView;
use voltmesh_wire::governance::Action;
use voltmesh_wire::{OrderTicket, PublicKey, SignedOrder};

fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// An order of `participant` signed with `key`.
fn order_as(
    participant: &str,
    key: &SigningKey,
    id: &str,
    interval_start: i64,
    side: Side,
    wh: u64,
    price: &str,
) -> SignedOrder {
    OrderTicket {
        participant: participant.into(),
        interval_start,
        id: id.into(),
        side,
        quantity_wh: wh,
        limit_price: price.parse().unwrap(),
        nonce: 0,
    }
    .sign(NEIGHBORHOOD, key)
}

fn community(cluster: &Cluster, i: usize) -> Option<CommunityView> {
    cluster.community(i)
}

/// Runs `voltmesh admin <args>`, which must succeed; its stdout.
fn admin(args: &[&str]) -> String {
    let out = support::voltmesh()
        .arg("admin")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "voltmesh admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn key_file(cluster: &Cluster, i: usize) -> PathBuf {
    cluster.nodes[i].dir.join("node.key")
}

fn path(p: &Path) -> &str {
    support::path_str(p)
}

fn enact(cluster: &Cluster, to: usize, id: &str, action: Action) {
    cluster
        .enact(to, id, action, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
}

fn expect_refused(cluster: &Cluster, i: usize, order: &SignedOrder, kind: &str) {
    let (status, body) = cluster.submit(i, order);
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some(kind)),
        "expected {kind}: {body}"
    );
}

fn wait_cleared(cluster: &Cluster, start: i64) -> voltmesh_wire::IntervalClearing {
    cluster
        .wait_cleared(start, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_community_changes_on_the_ledger_without_a_new_genesis() {
    let mut cluster = support::start("governance", 4, &[]);
    cluster.expect_height(2, Duration::from_secs(30));
    let api0 = format!("http://{}", cluster.nodes[0].api);
    let dir = support::temp_dir("governance-files");
    let h9 = household_key(9);

    // Draft h9's admission from node 0's view, sign it on three "organisations' machines",
    // and hand two approvals in first: below the quorum nothing changes.
    let draft = dir.join("add-h9.json");
    admin(&[
        "draft",
        "--node",
        &api0,
        "--id",
        "add-h9",
        "--out",
        path(&draft),
        "add-participant",
        "--participant",
        "h9",
        "--key",
        &public(&h9).to_string(),
    ]);
    let signed: Vec<PathBuf> = (0..3)
        .map(|i| {
            let out = dir.join(format!("add-h9.org{i}.json"));
            admin(&[
                "sign",
                path(&draft),
                "--key",
                path(&key_file(&cluster, i)),
                "--out",
                path(&out),
            ]);
            out
        })
        .collect();
    let two = dir.join("add-h9.two.json");
    admin(&[
        "combine",
        path(&signed[0]),
        path(&signed[1]),
        "--out",
        path(&two),
    ]);
    let answer = admin(&["submit", path(&two), "--node", &api0]);
    assert!(answer.contains("\"approved\": 2"), "{answer}");
    cluster
        .wait_for("two approvals committed", Duration::from_secs(30), |c| {
            (0..4).all(|i| {
                community(c, i)
                    .is_some_and(|v| v.pending.len() == 1 && v.pending[0].approved_by.len() == 2)
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let early = order_as("h9", &h9, "early", open_interval(3), Side::Buy, 100, "0.30");
    expect_refused(&cluster, 1, &early, "unknown_participant");
    assert!(!community(&cluster, 2)
        .unwrap()
        .participants
        .contains_key(&"h9".into()));

    // The third approval, to another node: h9 is a member everywhere.
    let api3 = format!("http://{}", cluster.nodes[3].api);
    admin(&["submit", path(&signed[2]), "--node", &api3]);
    cluster
        .wait_for("h9 to join everywhere", Duration::from_secs(30), |c| {
            (0..4).all(|i| {
                community(c, i).is_some_and(|v| {
                    v.participants.contains_key(&"h9".into()) && v.pending.is_empty()
                })
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // A replay of the whole proposal is refused.
    let all = dir.join("add-h9.all.json");
    admin(&[
        "combine",
        path(&signed[0]),
        path(&signed[1]),
        path(&signed[2]),
        "--out",
        path(&all),
    ]);
    let replay = support::voltmesh()
        .args(["admin", "submit", path(&all), "--node", &api0])
        .output()
        .unwrap();
    assert!(!replay.status.success());
    assert!(String::from_utf8_lossy(&replay.stderr).contains("replayed"));

    // h9 trades in the next interval, against h1; h2 buys too.
    let start = open_interval(3);
    cluster.submit_accepted(1, &order_as("h9", &h9, "b9", start, Side::Buy, 400, "0.30"));
    cluster.submit_accepted(
        2,
        &support::order(1, "s1", start, Side::Sell, 600, "0.10", 1),
    );
    cluster.submit_accepted(
        0,
        &support::order(2, "b2", start, Side::Buy, 100, "0.30", 1),
    );
    let clearing = wait_cleared(&cluster, start);
    let h9_bought: u64 = clearing
        .outcome
        .trades
        .iter()
        .filter(|t| t.buyer.as_str() == "h9")
        .map(|t| t.quantity_wh)
        .sum();
    assert_eq!(h9_bought, 400);

    // h3's phone key is lost: a new key is added, the old one revoked.
    let new_h3 = household_key(33);
    enact(
        &cluster,
        2,
        "h3-new-key",
        Action::AddKey {
            participant: "h3".into(),
            key: public(&new_h3),
        },
    );
    enact(
        &cluster,
        1,
        "h3-revoke-lost-key",
        Action::RevokeKey {
            participant: "h3".into(),
            key: public(&household_key(3)),
        },
    );
    let next = open_interval(3);
    cluster.submit_accepted(
        0,
        &order_as("h3", &new_h3, "new-key", next, Side::Sell, 100, "0.10"),
    );
    expect_refused(
        &cluster,
        0,
        &order_as(
            "h3",
            &household_key(3),
            "old-key",
            next,
            Side::Sell,
            100,
            "0.10",
        ),
        "key_not_allowed",
    );

    // h2 moves out from an interval whose gate is still open; before it, it may still trade.
    let leave = open_interval(10);
    enact(
        &cluster,
        3,
        "h2-moves-out",
        Action::RemoveParticipant {
            participant: "h2".into(),
            from_interval: leave,
        },
    );
    expect_refused(
        &cluster,
        3,
        &support::order(2, "after", leave, Side::Buy, 100, "0.30", 1),
        "participant_removed",
    );
    let h2 = cluster.nodes[1].client().participant("h2").unwrap();
    assert_eq!(h2.balance.bought_wh, 100, "its history stays readable");
    assert!(!h2.trades.is_empty());

    // New tariffs and k = 0 from an open interval on: orders outside the new bounds are refused
    // there (and still taken before it), and its clearing uses the new rules.
    let from = open_interval(10);
    let mut rules = community(&cluster, 0).unwrap().rules[0].rules;
    rules.rules.tariffs = Tariffs::new("0.10".parse().unwrap(), "0.30".parse().unwrap()).unwrap();
    rules.mechanism = Mechanism::Uniform {
        k: K::from_ppm(0).unwrap(),
    };
    enact(
        &cluster,
        0,
        "tariffs-from",
        Action::ChangeRules {
            from_interval: from,
            rules,
        },
    );
    let view = community(&cluster, 1).unwrap();
    assert_eq!(view.rules.len(), 2);
    assert_eq!(view.rules[1].from_interval, Some(from));
    expect_refused(
        &cluster,
        2,
        &support::order(1, "cheap", from, Side::Sell, 100, "0.09", 1),
        "price_outside_tariffs",
    );
    expect_refused(
        &cluster,
        2,
        &order_as("h9", &h9, "dear", from, Side::Buy, 100, "0.31"),
        "price_outside_tariffs",
    );
    cluster.submit_accepted(
        1,
        &support::order(1, "s-new", from, Side::Sell, 300, "0.12", 1),
    );
    cluster.submit_accepted(
        2,
        &order_as("h9", &h9, "b-new", from, Side::Buy, 300, "0.28"),
    );
    let clearing = wait_cleared(&cluster, from);
    assert_eq!(clearing.outcome.volume_wh, 300);
    assert_eq!(
        clearing.outcome.clearing_price,
        Some("0.120000".parse::<Price>().unwrap()),
        "k = 0 prices at the ask; under the genesis k = 0.5 it would be 0.20"
    );

    // Every node restarts: the same community and the same chain.
    let views: Vec<CommunityView> = (0..4).map(|i| community(&cluster, i).unwrap()).collect();
    for i in 0..4 {
        cluster.kill(i);
    }
    for i in 0..4 {
        cluster.start_node(i).unwrap();
    }
    let target = views.iter().map(|v| v.height).max().unwrap() + 2;
    cluster.expect_height(target, Duration::from_secs(60));
    for (i, before) in views.iter().enumerate() {
        let after = community(&cluster, i).unwrap();
        assert_eq!(after.participants, before.participants, "node {i}");
        assert_eq!(after.rules, before.rules, "node {i}");
        assert_eq!(after.actions_applied, 5, "node {i}");
    }
    let common = (0..4).map(|i| cluster.height(i)).min().unwrap();
    for h in 1..=common {
        let hashes: Vec<_> = (0..4).map(|i| cluster.block_hash(i, h)).collect();
        assert!(
            hashes.iter().all(|x| x.is_some() && x == &hashes[0]),
            "height {h}: {hashes:?}"
        );
    }
    // `voltmesh verify` re-executes the whole ledger, governance included.
    cluster.kill(2);
    let out = support::voltmesh()
        .args(["verify", "--data-dir", path(&cluster.data_dir(2))])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
