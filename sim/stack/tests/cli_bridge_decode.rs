//! `voltmesh bridge decode` as an installer runs it: a real process on captured payloads (the
//! bridge's real-meter fixtures), JSON readings on stdout, the decoder's error and exit status 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../meter-bridge/tests/fixtures")
        .join(name);
    path.to_str().expect("a UTF-8 path").to_owned()
}

fn decode(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voltmesh"))
        .args(["bridge", "decode"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the voltmesh binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin takes the capture");
    child.wait_with_output().expect("it exits")
}

fn readings(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON reading per line"))
        .collect()
}

#[test]
fn a_dsmr_telegram_from_a_file_and_from_stdin() {
    let file = fixture("dsmr_v5_iskra_MT382.txt");
    let from_file = readings(&decode(&[&file], b""));
    assert_eq!(from_file.len(), 1);
    assert_eq!(from_file[0]["meter"], "K8EG004046395507");
    assert_eq!(from_file[0]["import_wh"], 6825);
    assert_eq!(from_file[0]["export_wh"], 2444);
    // As `mosquitto_sub -C 1 -t dsmr/# > capture` leaves it: the telegram and one more newline.
    let mut printed = std::fs::read(&file).unwrap();
    printed.push(b'\n');
    assert_eq!(readings(&decode(&["-"], &printed)), from_file);
}

#[test]
fn tasmota_needs_its_topic_and_shelly_every_half() {
    let tasmota = fixture("tasmota_sml_tele_SENSOR_1phase.json");
    let r = readings(&decode(&["--topic", "tele/hh-7/SENSOR", &tasmota], b""));
    assert_eq!(r[0]["meter"], "hh-7");
    let topic = "shellypro3em-c8f09e8a1b2c/events/rpc";
    let em = fixture("shelly_pro3em_events_rpc_em0.json");
    let emdata = fixture("shelly_pro3em_events_rpc_emdata0.json");
    let half = decode(&["--topic", topic, &em], b"");
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("no complete reading"));
    assert_eq!(
        readings(&decode(&["--topic", topic, &em, &emdata], b"")).len(),
        1
    );
    let gen1 = fixture("voltmesh_shelly_gen1_session.txt");
    assert!(!readings(&decode(&["--lines", &gen1], b"")).is_empty());
}

#[test]
fn a_bad_payload_is_one_error_line_and_status_2() {
    let native = fixture("voltmesh_native_reading.json");
    // Only `-` reads stdin: a process that reads a file may exit before a write to its stdin,
    // which then fails with a broken pipe.
    for (args, stdin, expected) in [
        (vec!["--format", "dsmr", native.as_str()], &b""[..], "DSMR"),
        (vec!["-"], &b"garbage"[..], "no decoder"),
        (
            vec!["/nonexistent/capture"],
            &b""[..],
            "cannot read /nonexistent/capture",
        ),
    ] {
        let out = decode(&args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{err}"
        );
    }
}
