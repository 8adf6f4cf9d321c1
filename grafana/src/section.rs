//! The `[metrics]` section of `node.toml` and `bridge.toml`: where a process writes its metrics.
//!
//! ```toml
//! [metrics]
//! url = "http://127.0.0.1:8086"   # InfluxDB 2; no URL anywhere = metrics off
//! org = "voltmesh"
//! bucket = "voltmesh"
//! # token: prefer VOLTMESH_INFLUX_TOKEN (a file or flag is easier to leak)
//! # node = "validator-0"          # the `node` tag of this process's health points
//! ```
//!
//! # Precedence, key by key
//! 1. `--influx-*` flags, where the command has them ([`MetricsSection::overridden_by`]);
//! 2. the file's keys;
//! 3. the `VOLTMESH_INFLUX_*` environment variables ([`MetricsSection::to_config`]).
//!
//! An empty or all-whitespace value counts as unset (as [`MetricsConfig::from_lookup`] treats it).

use serde::{Deserialize, Serialize};

use crate::MetricsConfig;

/// The `[metrics]` section (module docs). Every key is optional.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// InfluxDB 2 base URL (`VOLTMESH_INFLUX_URL`).
    pub url: Option<String>,
    /// Organization (`VOLTMESH_INFLUX_ORG`, default `voltmesh`).
    pub org: Option<String>,
    /// Bucket (`VOLTMESH_INFLUX_BUCKET`, default `voltmesh`).
    pub bucket: Option<String>,
    /// API token (`VOLTMESH_INFLUX_TOKEN`; prefer the environment for secrets).
    pub token: Option<String>,
    /// The `node` tag of this process's health points (default: a node's `validator-<index>`,
    /// the bridge's broker client id).
    pub node: Option<String>,
}

impl std::fmt::Debug for MetricsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSection")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("node", &self.node)
            .finish()
    }
}

impl MetricsSection {
    /// The writer configuration: this section's keys, else `env(VOLTMESH_INFLUX_*)`.
    pub fn to_config(&self, env: impl Fn(&str) -> Option<String>) -> MetricsConfig {
        MetricsConfig::from_lookup(|key| {
            self.key(key)
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .or_else(|| env(key))
        })
    }

    /// This section with the keys `flags` sets put in. `flags` is what the command line parser
    /// read (clap's `InfluxArgs`, which also reads `VOLTMESH_INFLUX_*`): a value equal to the
    /// environment variable's (`env`) came from the environment, not from a flag, so it does not
    /// override the file's key; `to_config` falls back to it anyway.
    #[must_use]
    pub fn overridden_by(
        &self,
        flags: &MetricsSection,
        env: impl Fn(&str) -> Option<String>,
    ) -> MetricsSection {
        let pick = |key: &str, own: &Option<String>| match flags.key(key) {
            Some(v) if !v.trim().is_empty() && env(key).as_ref() != Some(v) => Some(v.clone()),
            _ => own.clone(),
        };
        MetricsSection {
            url: pick(MetricsConfig::ENV_URL, &self.url),
            org: pick(MetricsConfig::ENV_ORG, &self.org),
            bucket: pick(MetricsConfig::ENV_BUCKET, &self.bucket),
            token: pick(MetricsConfig::ENV_TOKEN, &self.token),
            node: self.node.clone(),
        }
    }

    fn key(&self, env_key: &str) -> Option<&String> {
        match env_key {
            MetricsConfig::ENV_URL => self.url.as_ref(),
            MetricsConfig::ENV_ORG => self.org.as_ref(),
            MetricsConfig::ENV_BUCKET => self.bucket.as_ref(),
            MetricsConfig::ENV_TOKEN => self.token.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(key: &str) -> Option<String> {
        match key {
            MetricsConfig::ENV_URL => Some("http://env:8086".into()),
            MetricsConfig::ENV_TOKEN => Some("env-token".into()),
            _ => None,
        }
    }

    #[test]
    fn flags_then_file_then_environment() {
        let file: MetricsSection =
            toml::from_str("url = \"http://file:8086\"\nbucket = \"nb1\"\nnode = \"n1\"").unwrap();
        let c = file.to_config(env);
        assert_eq!(c.url.as_deref(), Some("http://file:8086"));
        assert_eq!(
            (c.org.as_str(), c.bucket.as_str(), c.token.as_str()),
            ("voltmesh", "nb1", "env-token")
        );
        assert_eq!(
            MetricsSection::default().to_config(env).url.as_deref(),
            Some("http://env:8086")
        );
        assert_eq!(MetricsSection::default().to_config(|_| None).url, None);
        let blank = MetricsSection {
            url: Some("  ".into()),
            ..MetricsSection::default()
        };
        assert_eq!(
            blank.to_config(env).url.as_deref(),
            Some("http://env:8086"),
            "blank = unset"
        );

        // A flag beats the file; a parsed value equal to the environment's is not a flag.
        let flags = MetricsSection {
            url: Some("http://env:8086".into()),
            org: Some("flag-org".into()),
            ..MetricsSection::default()
        };
        let merged = file.overridden_by(&flags, env);
        assert_eq!(merged.url.as_deref(), Some("http://file:8086"));
        assert_eq!(merged.org.as_deref(), Some("flag-org"));
        assert_eq!(merged.bucket.as_deref(), Some("nb1"));
        assert_eq!(merged.node.as_deref(), Some("n1"));
        let flags = MetricsSection {
            url: Some("http://flag:8086".into()),
            ..MetricsSection::default()
        };
        assert_eq!(
            file.overridden_by(&flags, env)
                .to_config(env)
                .url
                .as_deref(),
            Some("http://flag:8086")
        );
        assert!(toml::from_str::<MetricsSection>("uri = \"x\"").is_err());
        let secret = MetricsSection {
            token: Some("s3cret".into()),
            ..MetricsSection::default()
        };
        assert!(!format!("{secret:?}").contains("s3cret"));
    }
}
