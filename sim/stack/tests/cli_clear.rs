//! `voltmesh clear` as a user runs it: real process, files on disk, exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn voltmesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args(args)
        .output()
        .expect("the voltmesh binary runs")
}

/// Writes `text` to a fresh file in the target's temp area and returns its path.
fn book(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_clear");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    path
}

fn orders(bids: &[(u64, &str)], asks: &[(u64, &str)]) -> String {
    let mut items = Vec::new();
    for (side, list) in [("buy", bids), ("sell", asks)] {
        for (i, (q, p)) in list.iter().enumerate() {
            items.push(format!(
                r#"{{"id": "{side}{i}", "participant": "h-{side}{i}", "side": "{side}", "quantity_wh": {q}, "limit_price": "{p}"}}"#
            ));
        }
    }
    format!("[{}]", items.join(",\n"))
}

fn cleared(name: &str, bids: &[(u64, &str)], asks: &[(u64, &str)]) -> serde_json::Value {
    let path = book(name, &orders(bids, asks));
    let out = voltmesh(&[
        "clear",
        "--mechanism",
        "uniform",
        "--orders",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn golden_books_clear_as_specified() {
    type Side<'a> = &'a [(u64, &'a str)];
    let cases: [(&str, Side<'_>, Side<'_>, &str, u64); 6] = [
        ("g1", &[(10, "30")], &[(10, "20")], "25.000000", 10),
        (
            "g2",
            &[(10, "30")],
            &[(4, "10"), (10, "20")],
            "20.000000",
            10,
        ),
        (
            "g3",
            &[(4, "30"), (10, "25")],
            &[(10, "20")],
            "25.000000",
            10,
        ),
        (
            "g4",
            &[(5, "30"), (5, "22")],
            &[(5, "10"), (5, "25")],
            "23.500000",
            5,
        ),
        (
            "g5",
            &[(10, "1"), (15, "2"), (20, "3")],
            &[(25, "1.00001"), (30, "5"), (35, "2.4")],
            "2.000000",
            25,
        ),
        (
            "g6",
            &[(40, "1.5"), (45, "2"), (50, "6")],
            &[(55, "1"), (60, "5"), (65, "1")],
            "1.500000",
            120,
        ),
    ];
    for (name, bids, asks, price, volume) in cases {
        let v = cleared(name, bids, asks);
        assert_eq!(v["clearing_price"], price, "{name}");
        assert_eq!(v["volume_wh"], volume, "{name}");
        let traded: u64 = v["trades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["quantity_wh"].as_u64().unwrap())
            .sum();
        assert_eq!(traded, volume, "{name}");
    }
}

#[test]
fn same_input_same_bytes_for_every_mechanism() {
    let path = book(
        "same",
        &orders(
            &[(40, "1.5"), (45, "2"), (50, "6")],
            &[(55, "1"), (60, "5"), (65, "1")],
        ),
    );
    for mechanism in ["uniform", "pay-as-bid", "cda"] {
        let run = || {
            voltmesh(&[
                "clear",
                "--mechanism",
                mechanism,
                "--orders",
                path.to_str().unwrap(),
            ])
        };
        let (a, b) = (run(), run());
        assert!(a.status.success());
        assert_eq!(a.stdout, b.stdout, "{mechanism}");
        let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
        assert_eq!(v["mechanism"], mechanism);
        assert_eq!(v.get("clearing_price").is_some(), mechanism == "uniform");
    }
}

#[test]
fn tariffs_reject_orders_with_a_reason() {
    let path = book(
        "tariffs",
        &orders(&[(10, "0.35"), (10, "0.25")], &[(10, "0.05"), (10, "0.10")]),
    );
    let out = voltmesh(&[
        "clear",
        "--feed-in",
        "0.08",
        "--retail",
        "0.30",
        "--orders",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rejected: Vec<&str> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rejected, ["buy0", "sell0"]);
    assert_eq!(v["clearing_price"], "0.175000");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_order() {
    let ok =
        r#"{"id": "a", "participant": "h", "side": "sell", "quantity_wh": 5, "limit_price": "1"}"#;
    let cases = [
        ("not-json", "this is not json".to_string(), "not valid JSON"),
        (
            "missing",
            format!(
                r#"[{ok}, {{"id": "b", "participant": "h", "side": "buy", "quantity_wh": 5}}]"#
            ),
            "index 1 (id \"b\")",
        ),
        (
            "unknown-field",
            format!(
                r#"[{ok}, {{"id": "b", "participant": "h", "side": "buy", "quantity_wh": 5, "limit_price": "1", "x": 1}}]"#
            ),
            "unknown field",
        ),
        (
            "zero",
            format!(
                r#"[{{"id": "z", "participant": "h", "side": "buy", "quantity_wh": 0, "limit_price": "1"}}, {ok}]"#
            ),
            "index 0 (id \"z\")",
        ),
        (
            "negative",
            format!(
                r#"[{ok}, {{"id": "n", "participant": "h", "side": "buy", "quantity_wh": -5, "limit_price": "1"}}]"#
            ),
            "(id \"n\")",
        ),
        (
            "side",
            format!(
                r#"[{ok}, {{"id": "s", "participant": "h", "side": "bid", "quantity_wh": 5, "limit_price": "1"}}]"#
            ),
            "unknown side",
        ),
        (
            "scale",
            format!(
                r#"[{ok}, {{"id": "p", "participant": "h", "side": "buy", "quantity_wh": 5, "limit_price": "0.1234567"}}]"#
            ),
            "decimal places",
        ),
        ("dup", format!(r#"[{ok}, {ok}]"#), "duplicate id"),
        (
            "absurd",
            format!(
                r#"[{ok}, {{"id": "m", "participant": "h", "side": "buy", "quantity_wh": 5, "limit_price": "99999999"}}]"#
            ),
            "(id \"m\")",
        ),
        (
            "huge-qty",
            format!(
                r#"[{ok}, {{"id": "q", "participant": "h", "side": "buy", "quantity_wh": 1e30, "limit_price": "1"}}]"#
            ),
            "(id \"q\")",
        ),
    ];
    for (name, text, needle) in cases {
        let path = book(name, &text);
        let out = voltmesh(&["clear", "--orders", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
    }
}

#[test]
fn garbage_never_panics() {
    let garbage = [
        "", "[", "]", "null", "[null]", "[[]]", "[{}]", "\u{0}\u{1}", "[{\"id\": 5}]",
        "[{\"id\": \"a\", \"participant\": \"h\", \"side\": \"buy\", \"quantity_wh\": 18446744073709551616, \"limit_price\": \"1\"}]",
        "[{\"id\": \"a\", \"participant\": \"h\", \"side\": \"buy\", \"quantity_wh\": 1, \"limit_price\": \"1\", \"seq\": -1}]",
        "[{\"id\": \"a\", \"participant\": \"h\", \"side\": \"buy\", \"quantity_wh\": 1, \"limit_price\": \"-\"}]",
        "[{\"id\": \"a\", \"participant\": \"h\", \"side\": \"buy\", \"quantity_wh\": 1, \"limit_price\": \"79228162514264337593543950336\"}]",
    ];
    for (i, text) in garbage.iter().enumerate() {
        let path = book(&format!("garbage{i}"), text);
        let out = voltmesh(&["clear", "--orders", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{text:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = voltmesh(&["clear", "--orders", "/nonexistent/book.json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = voltmesh(&["clear", "--mechanism", "cda", "--k", "0.3"]);
    assert_eq!(out.status.code(), Some(2));
    let out = voltmesh(&["clear", "--k", "1.5"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_bundled_example_clears() {
    let out = voltmesh(&["clear", "--feed-in", "0.08", "--retail", "0.32"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["volume_wh"].as_u64().unwrap() > 0);
}
