//! `voltmesh sim --via-network`: the grid's households drive real meters, the bridge and four
//! validators on 127.0.0.1, and every interval the validators finalize must equal the
//! in-process engine's clearing of the same committed orders.

use std::process::Command;

#[test]
fn finalized_trades_equal_the_in_process_engine() {
    let out = Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args(["sim", "--via-network", "--intervals", "3", "--seed", "11"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== via network vs in-process engine"))
        .skip(2)
        .take_while(|l| !l.starts_with("==") && !l.trim().is_empty())
        .collect();
    assert!(!table.is_empty(), "{stdout}");
    for line in &table {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.last(), Some(&"yes"), "{line}");
        let orders: usize = cols[1].parse().unwrap();
        assert!(orders > 0, "{line}");
        // nodes' and engine's trades/Wh/price columns are identical text.
        assert_eq!(cols[2], cols[3], "{line}");
    }
    assert!(
        table
            .iter()
            .any(|l| !l.split_whitespace().nth(2).unwrap().starts_with("0/")),
        "at least one interval traded:\n{stdout}"
    );
    assert!(
        stdout.contains("via network: all"),
        "the command confirms the comparison:\n{stdout}"
    );
}
