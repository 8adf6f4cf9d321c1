//! Issue 13, validator changes with real `voltmesh node` processes: four genesis validators
//! approve a new set in which the fourth leaves and a fifth joins. Every node switches at the
//! block the change took effect in (epoch 1), the chain keeps committing under the new set, the
//! fifth validator joins from a copy of a validator's data directory (with an untrusted safety
//! record) and takes part, the one that left stops at the end of epoch 0, trades clear in the
//! new epoch, and after a restart of every node the ledgers are identical and `voltmesh verify`
//! replays the switch.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;
use std::time::Duration;

use support::order;
use voltmesh_engine::Side;
use voltmesh_wire::governance::Action;

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_validator_leaves_and_one_joins_at_an_epoch_boundary() {
    let mut cluster = support::start("validator-change", 4, &[]);
    cluster.expect_height(2, Duration::from_secs(30));
    let (joiner, joiner_entry) = cluster
        .make_node("node4", "untrusted_safety_record = true\n")
        .unwrap();
    let mut validators = cluster.community(0).unwrap().validators;
    let leaver = validators.remove(3);
    validators.push(joiner_entry);
    cluster
        .enact(
            0,
            "replace-validator-3",
            Action::SetValidators {
                validators: validators.clone(),
            },
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // Every node, the leaver too, applied the change at the same block: epoch 1.
    let views: Vec<_> = (0..4).map(|i| cluster.community(i).unwrap()).collect();
    for (i, view) in views.iter().enumerate() {
        assert_eq!(view.epoch, 1, "node {i}");
        assert_eq!(view.validators, validators, "node {i}");
    }
    assert!(!views[0].validators.contains(&leaver));

    // The three that stay commit under the new set (quorum 3 of 4 without the joiner).
    let switched = cluster.height(0);
    cluster
        .wait_for("commits in epoch 1", Duration::from_secs(60), |c| {
            (0..3).all(|i| c.height(i) >= switched + 5)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The leaver stays at the end of epoch 0.
    let left_at = cluster.height(3);
    assert!(left_at < switched + 5, "the leaver committed on: {left_at}");

    // The joiner starts from a copy of node 0's data directory (taken while node 0 is
    // stopped), with an untrusted safety record.
    cluster.kill(0);
    copy_dir(&cluster.data_dir(0), &joiner.dir.join("data"));
    let joiner = cluster.add_node(joiner);
    cluster.start_node(0).unwrap();
    cluster.start_node(joiner).unwrap();
    cluster.kill(3);
    let before = cluster.height(1);
    cluster
        .wait_for("the joiner commits", Duration::from_secs(60), |c| {
            [0, 1, 2, joiner].iter().all(|&i| c.height(i) >= before + 5)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let status = cluster.status(joiner).unwrap();
    assert_eq!(status.validators, 4);

    // A trade in the new epoch, submitted to the joiner.
    let start = support::open_interval(3);
    let sell = order(1, "s1", start, Side::Sell, 500, "0.10", 0);
    let buy = order(2, "b1", start, Side::Buy, 500, "0.30", 0);
    cluster.submit_accepted(joiner, &sell);
    cluster.submit_accepted(joiner, &buy);
    let clearing = cluster
        .wait_cleared(start, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(clearing.outcome.volume_wh, 500);

    // A restart of every node of the new set: identical ledgers, and the chain goes on.
    for i in [0, 1, 2, joiner] {
        cluster.kill(i);
    }
    for i in [0, 1, 2, joiner] {
        cluster.start_node(i).unwrap();
    }
    let before = cluster.height(0);
    cluster
        .wait_for("commits after the restart", Duration::from_secs(60), |c| {
            [0, 1, 2, joiner].iter().all(|&i| c.height(i) >= before + 3)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let common = [0, 1, 2, joiner]
        .iter()
        .map(|&i| cluster.height(i))
        .min()
        .unwrap();
    for h in 1..=common {
        let hashes: Vec<_> = [0, 1, 2, joiner]
            .iter()
            .map(|&i| cluster.block_hash(i, h))
            .collect();
        assert!(
            hashes.iter().all(|x| x.is_some() && x == &hashes[0]),
            "height {h}: {hashes:?}"
        );
    }
    for i in [0, 1, 2, joiner] {
        assert_eq!(cluster.community(i).unwrap().epoch, 1, "node {i}");
    }
    // `voltmesh verify` re-executes the ledger across the switch.
    cluster.kill(1);
    let out = support::voltmesh()
        .args([
            "verify",
            "--data-dir",
            support::path_str(&cluster.data_dir(1)),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
