//! The `--influx-*` command-line flags, shared by every `voltmesh` subcommand that writes metrics
//! (`sim`, `demo`, `node`, `bridge`). Behind the `clap` feature.
//!
//! Each flag falls back to its `VOLTMESH_INFLUX_*` environment variable (the names of
//! [`MetricsConfig::ENV_URL`] and friends), so a deployment can keep the token out of the command
//! line. Without a URL metrics are disabled.
//!
//! ```
//! use clap::Parser;
//! use voltmesh_metrics::InfluxArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     influx: InfluxArgs,
//! }
//!
//! let cli = Cli::parse_from(["prog", "--influx-url", "http://127.0.0.1:8086"]);
//! let config = cli.influx.to_config();
//! assert_eq!(config.url.as_deref(), Some("http://127.0.0.1:8086"));
//! ```

use crate::config::MetricsConfig;

/// `--influx-url/--influx-org/--influx-bucket/--influx-token`, each with its `VOLTMESH_INFLUX_*`
/// environment fallback. Flatten it into a clap command and call [`InfluxArgs::to_config`].
///
/// Invariant: a flag or variable that is empty or only whitespace counts as unset (so
/// `VOLTMESH_INFLUX_URL=` disables metrics), exactly as [`MetricsConfig::from_lookup`] treats it.
#[derive(Clone, Default, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Metrics (InfluxDB 2)")]
pub struct InfluxArgs {
    /// InfluxDB 2 base URL, e.g. http://127.0.0.1:8086 (unset: no metrics).
    #[arg(long = "influx-url", env = "VOLTMESH_INFLUX_URL", value_name = "URL")]
    pub url: Option<String>,
    /// InfluxDB organization [default: voltmesh].
    #[arg(long = "influx-org", env = "VOLTMESH_INFLUX_ORG", value_name = "ORG")]
    pub org: Option<String>,
    /// InfluxDB bucket [default: voltmesh].
    #[arg(
        long = "influx-bucket",
        env = "VOLTMESH_INFLUX_BUCKET",
        value_name = "BUCKET"
    )]
    pub bucket: Option<String>,
    /// InfluxDB API token (prefer the environment variable: a flag shows in `ps`).
    #[arg(
        long = "influx-token",
        env = "VOLTMESH_INFLUX_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl std::fmt::Debug for InfluxArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxArgs")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl InfluxArgs {
    /// The writer configuration (default batching); disabled without a URL. Call
    /// [`MetricsConfig::validate`] or [`crate::MetricsWriter::spawn`] to check it.
    pub fn to_config(&self) -> MetricsConfig {
        // clap has already read the environment into the flags.
        self.to_section().to_config(|_| None)
    }

    /// These flags as a `[metrics]` section (no `node` tag), to lay over a config file's with
    /// [`crate::MetricsSection::overridden_by`].
    pub fn to_section(&self) -> crate::MetricsSection {
        crate::MetricsSection {
            url: self.url.clone(),
            org: self.org.clone(),
            bucket: self.bucket.clone(),
            token: self.token.clone(),
            node: None,
        }
    }

    /// True if a URL was given (by flag or environment).
    pub fn is_enabled(&self) -> bool {
        self.url.as_deref().is_some_and(|u| !u.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        influx: InfluxArgs,
    }

    #[test]
    fn flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "prog",
            "--influx-url",
            "http://127.0.0.1:8086",
            "--influx-bucket",
            "nb1",
            "--influx-token",
            "t0k",
        ])
        .expect("parses");
        assert!(cli.influx.is_enabled());
        let c = cli.influx.to_config();
        assert_eq!(c.url.as_deref(), Some("http://127.0.0.1:8086"));
        assert_eq!(
            (c.org.as_str(), c.bucket.as_str(), c.token.as_str()),
            ("voltmesh", "nb1", "t0k")
        );
        assert!(c.validate().is_ok());
        assert!(!format!("{:?}", cli.influx).contains("t0k"));
    }

    #[test]
    fn empty_url_disables_and_a_bad_url_is_refused_by_validate() {
        let none = InfluxArgs {
            url: Some("  ".into()),
            ..InfluxArgs::default()
        };
        assert!(!none.is_enabled());
        assert_eq!(none.to_config().url, None);
        let bad = InfluxArgs {
            url: Some("influx:8086".into()),
            ..InfluxArgs::default()
        };
        assert!(bad.to_config().validate().is_err());
    }

    #[test]
    fn every_flag_falls_back_to_the_documented_variable() {
        let command = Cli::command();
        let env_of = |id: &str| {
            command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_env())
                .and_then(|e| e.to_str())
                .map(str::to_owned)
        };
        assert_eq!(env_of("url").as_deref(), Some(MetricsConfig::ENV_URL));
        assert_eq!(env_of("org").as_deref(), Some(MetricsConfig::ENV_ORG));
        assert_eq!(env_of("bucket").as_deref(), Some(MetricsConfig::ENV_BUCKET));
        assert_eq!(env_of("token").as_deref(), Some(MetricsConfig::ENV_TOKEN));
    }
}
