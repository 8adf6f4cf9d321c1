//! `voltmesh bridge`'s arguments (behind the `clap` feature): run the bridge, or `decode` a
//! captured payload to check a meter before it is added (see [`crate::decode::capture`]).

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::decode::capture::{self, CaptureError, Message};
use crate::{Format, Reading};

/// Arguments of `voltmesh bridge`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BridgeArgs {
    /// Something else than running the bridge.
    #[command(subcommand)]
    pub command: Option<BridgeCommand>,
    /// The bridge's configuration file.
    #[arg(long, default_value = "bridge.toml")]
    pub config: PathBuf,
    /// Print a commented example configuration (every key with its default) and exit.
    #[arg(long)]
    pub print_example_config: bool,
    /// Where the bridge writes its metrics: these flags override `[metrics]` of the config file,
    /// whose missing keys fall back to the `VOLTMESH_INFLUX_*` variables.
    #[command(flatten)]
    pub influx: voltmesh_metrics::InfluxArgs,
}

/// Sub-tasks of `voltmesh bridge`.
#[derive(Debug, clap::Subcommand)]
pub enum BridgeCommand {
    /// Decode a captured meter payload (as `mosquitto_sub` prints it) with the bridge's decoders
    /// and print each reading as a JSON line; a payload that does not decode exits with status 2.
    Decode(DecodeArgs),
}

/// Arguments of `voltmesh bridge decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The payload format [default: picked from the topic and payload, as the bridge does].
    #[arg(long, value_parser = parse_format, value_name = "dsmr|tasmota|shelly-gen2|shelly-gen1|native")]
    pub format: Option<Format>,
    /// The topic the payload was published on (Tasmota needs `tele/<device>/SENSOR`, Shelly its
    /// device topic).
    #[arg(long, default_value = "")]
    pub topic: String,
    /// Each line of the input is `topic payload`, as `mosquitto_sub -v` prints it (a Shelly Gen1
    /// burst); `--topic` is then ignored.
    #[arg(long)]
    pub lines: bool,
    /// Captured payloads, one message each (`-` reads standard input). A Shelly Gen2 reading
    /// needs two: the `em:0` and the `emdata:0` status.
    #[arg(required = true, value_name = "FILE|-")]
    pub inputs: Vec<PathBuf>,
}

/// Why `voltmesh bridge decode` printed no reading.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCommandError {
    /// An input could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The input.
        path: String,
        /// What failed (in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// The capture did not decode.
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// Reads the inputs `args` name and decodes them as received at `receive_time`.
///
/// # Errors
/// An input that cannot be read, or what [`capture::decode`] refuses.
pub fn decode(
    args: &DecodeArgs,
    receive_time: DateTime<Utc>,
) -> Result<Vec<Reading>, DecodeCommandError> {
    let mut messages = Vec::new();
    for input in &args.inputs {
        let bytes = read_input(input)?;
        if args.lines {
            messages.extend(capture::parse_lines(&String::from_utf8_lossy(&bytes))?);
        } else {
            messages.push(Message::from_capture(&args.topic, &bytes));
        }
    }
    Ok(capture::decode(args.format, &messages, receive_time)?)
}

fn read_input(input: &PathBuf) -> Result<Vec<u8>, DecodeCommandError> {
    let read_error = |error| DecodeCommandError::Read {
        path: input.display().to_string(),
        error,
    };
    if input.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        Ok(bytes)
    } else {
        std::fs::read(input).map_err(read_error)
    }
}

/// `--format`: the names `bridge.toml` uses, with `-` or `_`.
fn parse_format(text: &str) -> Result<Format, String> {
    let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
    Format::ALL
        .into_iter()
        .find(|f| serde_json::to_value(f).ok().and_then(|v| v.as_str().map(str::to_owned)) == Some(wanted.clone()))
        .ok_or_else(|| format!("unknown format {text:?}: expected dsmr, tasmota, shelly-gen2, shelly-gen1 or native"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        assert_eq!(parse_format("shelly-gen2"), Ok(Format::ShellyGen2));
        assert_eq!(parse_format("shelly_gen1"), Ok(Format::ShellyGen1));
        assert_eq!(parse_format("DSMR"), Ok(Format::Dsmr));
        assert!(parse_format("p1").unwrap_err().contains("expected dsmr"));
    }
}
