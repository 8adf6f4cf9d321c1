//! `voltmesh sim --via-network`: the in-process simulation's household orders go through MQTT,
//! the meter bridge and four validators on 127.0.0.1, and every interval the validators finalize
//! must equal the in-process run's (price, volume and the trade list by participant).

use std::process::Command;

#[test]
fn finalized_trades_equal_the_in_process_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args(["sim", "--via-network", "--intervals", "4", "--seed", "11"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== via network vs in-process sim"))
        .skip(2)
        .take_while(|l| !l.starts_with(' ') && !l.trim().is_empty() && !l.starts_with("re-"))
        .collect();
    assert_eq!(table.len(), 4, "one row per interval:\n{stdout}");
    let mut traded = 0;
    for line in &table {
        // date time network orders sim nodes same
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 7, "{line}");
        assert_eq!(cols[6], "yes", "{line}");
        // The simulation's book and the committed one have the same size (and, checked by the
        // command, the same orders).
        let (sim_orders, net_orders) = cols[3].split_once('/').unwrap();
        assert_eq!(sim_orders, net_orders, "{line}");
        assert!(sim_orders.parse::<usize>().unwrap() > 0, "{line}");
        // The simulation's and the nodes' trades/Wh/price are identical text.
        assert_eq!(cols[4], cols[5], "{line}");
        let trades: usize = cols[4].split('/').next().unwrap().parse().unwrap();
        if trades > 0 {
            traded += 1;
        }
    }
    assert!(traded >= 3, "at least 3 intervals traded:\n{stdout}");
    // The extra check: the committed orders re-clear to the committed outcome.
    assert!(
        stdout.contains(
            "re-clearing the committed orders in process: 4 of 4 committed intervals equal"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("via network: all 4 intervals equal the in-process run"),
        "the command confirms the comparison:\n{stdout}"
    );
}
