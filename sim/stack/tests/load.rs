//! "Orders answered 202 and committed: 100 %": concurrent submitters, each its own participant,
//! spread their orders over the open intervals and the four nodes' APIs; once the gates have
//! closed, every order answered 202 is `committed` on every node.

#[allow(dead_code, unused_imports)]
mod support;

use std::time::{Duration, Instant};

use support::{open_interval, order};
use voltmesh::testing::cluster::{HOUSEHOLDS, INTERVAL_SECS};
use voltmesh_engine::Side;
use voltmesh_wire::api::OrderState;

/// An order the node answered 202.
struct Accepted {
    participant: String,
    id: String,
    interval: i64,
}

/// The figures of one run.
struct Report {
    submitted: usize,
    accepted: usize,
    committed_everywhere: usize,
    submit_secs: f64,
}

/// `submitters` threads (households 1..) each send `per_interval` orders to each of
/// `intervals` consecutive open intervals, round-robin over the nodes; then waits for the last
/// gate and counts the accepted orders every node reports committed.
fn run(name: &str, submitters: u8, intervals: i64, per_interval: usize) -> Report {
    assert!(submitters <= HOUSEHOLDS);
    let cluster = support::start(name, 4, &[]);
    cluster.expect_height(2, Duration::from_secs(60));
    let first = open_interval(10);
    let starts: Vec<i64> = (0..intervals).map(|k| first + k * INTERVAL_SECS).collect();
    let began = Instant::now();
    let (submitted, accepted) = std::thread::scope(|s| {
        let threads: Vec<_> = (1..=submitters)
            .map(|h| {
                let (cluster, starts) = (&cluster, &starts);
                s.spawn(move || {
                    let mut accepted = Vec::new();
                    let mut submitted = 0;
                    for k in 0..per_interval {
                        for (j, &interval) in starts.iter().enumerate() {
                            let id = format!("o{k}-{j}");
                            let side = if h % 2 == 0 { Side::Buy } else { Side::Sell };
                            let price = if side == Side::Buy { "0.30" } else { "0.10" };
                            let o = order(h, &id, interval, side, 100 + k as u64, price, 1);
                            submitted += 1;
                            let (status, body) = cluster.submit((k + j + h as usize) % 4, &o);
                            match status {
                                202 => accepted.push(Accepted {
                                    participant: format!("h{h}"),
                                    id,
                                    interval,
                                }),
                                422 | 429 | 503 => assert!(body["error"].is_string(), "{body}"),
                                _ => panic!("answered {status}: {body}"),
                            }
                        }
                    }
                    (submitted, accepted)
                })
            })
            .collect();
        threads
            .into_iter()
            .fold((0, Vec::new()), |(n, mut all), t| {
                let (s, mut a) = t.join().unwrap();
                all.append(&mut a);
                (n + s, all)
            })
    });
    let submit_secs = began.elapsed().as_secs_f64();
    let last = starts[starts.len() - 1];
    cluster
        .wait_for(
            "the last interval to clear everywhere",
            Duration::from_secs(60 + 30 * intervals.unsigned_abs()),
            |c| (0..4).all(|i| c.interval(i, last).is_some()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let committed_everywhere = accepted
        .iter()
        .filter(|a| {
            (0..4).all(|i| {
                let view = cluster.nodes[i]
                    .client()
                    .order_status(&a.participant, &a.id, Some(a.interval))
                    .ok()
                    .flatten();
                let ok = view.as_ref().is_some_and(|v| {
                    v.orders
                        .iter()
                        .any(|e| matches!(e.status, OrderState::Committed { .. }))
                });
                if !ok {
                    eprintln!(
                        "node {i}: {} {} {}: {view:?}",
                        a.participant, a.id, a.interval
                    );
                }
                ok
            })
        })
        .count();
    Report {
        submitted,
        accepted: accepted.len(),
        committed_everywhere,
        submit_secs,
    }
}

fn check(report: &Report, submitters: u8) {
    println!(
        "load: {} orders from {submitters} submitters, {} answered 202, {} committed on all 4 nodes ({:.1} %), {:.0} orders/s submitted",
        report.submitted,
        report.accepted,
        report.committed_everywhere,
        100.0 * report.committed_everywhere as f64 / report.accepted.max(1) as f64,
        report.submitted as f64 / report.submit_secs
    );
    assert!(report.accepted > 0);
    assert_eq!(
        report.committed_everywhere, report.accepted,
        "every order answered 202 commits on every node"
    );
}

#[test]
fn every_order_answered_202_commits_on_every_node() {
    let report = run("load", 6, 2, 8);
    check(&report, 6);
}

/// The heavy run: `cargo nextest run -p voltmesh --test load --run-ignored only --no-capture`.
#[test]
#[ignore = "heavy load, a few minutes"]
fn heavy_load_every_order_answered_202_commits_on_every_node() {
    let report = run("load-heavy", 6, 4, 20);
    check(&report, 6);
}
