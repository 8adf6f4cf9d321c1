//! Writer configuration and its validation.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use url::Url;

/// Where and how the writer sends points.
///
/// With `url` = `None` the writer is disabled: [`crate::MetricsHandle::record`] discards points and
/// nothing is started.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// InfluxDB 2 base URL (`http://127.0.0.1:8086`); `None` disables metrics.
    pub url: Option<String>,
    /// Organization.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// API token (may be empty for databases without authentication).
    pub token: String,
    /// Points per write request; a full batch is written at once.
    pub batch_size: usize,
    /// A partial batch is written when its oldest point has waited this long.
    pub flush_interval: Duration,
    /// Capacity of the channel between [`crate::MetricsHandle::record`] and the writer task;
    /// beyond it points are dropped and counted.
    pub queue_capacity: usize,
    /// Points the task keeps while the database is unreachable; beyond it the oldest are dropped
    /// and counted.
    pub max_buffered: usize,
    /// First retry delay after a failed write.
    pub backoff_initial: Duration,
    /// Longest retry delay (the delay doubles up to this).
    pub backoff_max: Duration,
    /// Write attempts for what is still buffered when every handle is gone.
    pub shutdown_attempts: u32,
    /// Distinct values each tag key may take; points that would add more are dropped and counted
    /// (a guard against a misused id type exploding series cardinality).
    pub max_tag_values: usize,
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_buffered", &self.max_buffered)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("shutdown_attempts", &self.shutdown_attempts)
            .field("max_tag_values", &self.max_tag_values)
            .finish()
    }
}

impl Default for MetricsConfig {
    /// Disabled, with production batching defaults: 5,000 points or 1 s per write, a 10,000-point
    /// channel, 100,000 points kept while the database is down, backoff 250 ms doubling to 30 s.
    fn default() -> Self {
        MetricsConfig {
            url: None,
            org: "voltmesh".into(),
            bucket: "voltmesh".into(),
            token: String::new(),
            batch_size: 5_000,
            flush_interval: Duration::from_secs(1),
            queue_capacity: 10_000,
            max_buffered: 100_000,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            shutdown_attempts: 3,
            max_tag_values: 10_000,
        }
    }
}

/// Why a [`MetricsConfig`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The URL does not parse.
    #[error("metrics URL {url:?} does not parse: {reason}")]
    BadUrl {
        /// The offending URL.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The URL's scheme is neither `http` nor `https`.
    #[error("metrics URL {url:?} must start with http:// or https://")]
    BadScheme {
        /// The offending URL.
        url: String,
    },
    /// Organization or bucket is empty.
    #[error("metrics {what} must not be empty")]
    Empty {
        /// `org` or `bucket`.
        what: &'static str,
    },
    /// The HTTP client could not be built (for example, no TLS roots).
    #[error("cannot build the metrics HTTP client: {reason}")]
    Client {
        /// The client's complaint.
        reason: String,
    },
    /// A size or duration is zero, or the backoff bounds are reversed.
    #[error("metrics {what} is out of range")]
    OutOfRange {
        /// The offending setting.
        what: &'static str,
    },
}

impl MetricsConfig {
    /// An enabled configuration with default batching.
    pub fn new(
        url: impl Into<String>,
        org: impl Into<String>,
        bucket: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        MetricsConfig {
            url: Some(url.into()),
            org: org.into(),
            bucket: bucket.into(),
            token: token.into(),
            ..MetricsConfig::default()
        }
    }

    /// The environment variable with the database URL (unset or empty: metrics disabled).
    pub const ENV_URL: &'static str = "VOLTMESH_INFLUX_URL";
    /// The environment variable with the organization (default `voltmesh`).
    pub const ENV_ORG: &'static str = "VOLTMESH_INFLUX_ORG";
    /// The environment variable with the bucket (default `voltmesh`).
    pub const ENV_BUCKET: &'static str = "VOLTMESH_INFLUX_BUCKET";
    /// The environment variable with the API token (default empty).
    pub const ENV_TOKEN: &'static str = "VOLTMESH_INFLUX_TOKEN";

    /// The configuration from the `VOLTMESH_INFLUX_*` environment variables, with default
    /// batching; disabled when `VOLTMESH_INFLUX_URL` is unset or empty. Call
    /// [`MetricsConfig::validate`] (or [`crate::MetricsWriter::spawn`]) to check it.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// As [`MetricsConfig::from_env`], reading variables through `lookup` (for command-line
    /// parsers that merge flags and environment, and for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let defaults = MetricsConfig::default();
        MetricsConfig {
            url: get(Self::ENV_URL),
            org: get(Self::ENV_ORG).unwrap_or(defaults.org.clone()),
            bucket: get(Self::ENV_BUCKET).unwrap_or(defaults.bucket.clone()),
            token: get(Self::ENV_TOKEN).unwrap_or_default(),
            ..defaults
        }
    }

    /// Checks the configuration; returns the parsed URL, or `None` when metrics are disabled.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn validate(&self) -> Result<Option<Url>, ConfigError> {
        let Some(text) = &self.url else {
            return Ok(None);
        };
        let url = Url::parse(text).map_err(|e| ConfigError::BadUrl {
            url: text.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::BadScheme { url: text.clone() });
        }
        if self.org.is_empty() {
            return Err(ConfigError::Empty { what: "org" });
        }
        if self.bucket.is_empty() {
            return Err(ConfigError::Empty { what: "bucket" });
        }
        let checks: [(&'static str, bool); 6] = [
            ("batch_size", self.batch_size > 0),
            ("queue_capacity", self.queue_capacity > 0),
            ("max_buffered", self.max_buffered >= self.batch_size),
            ("flush_interval", !self.flush_interval.is_zero()),
            ("backoff_initial", !self.backoff_initial.is_zero()),
            ("backoff_max", self.backoff_max >= self.backoff_initial),
        ];
        if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(ConfigError::OutOfRange { what });
        }
        Ok(Some(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_lookup_fills_url_org_bucket_token() {
        let env = |key: &str| match key {
            "VOLTMESH_INFLUX_URL" => Some("http://influxdb:8086".to_owned()),
            "VOLTMESH_INFLUX_BUCKET" => Some("nb1".to_owned()),
            "VOLTMESH_INFLUX_TOKEN" => Some("t0k".to_owned()),
            _ => None,
        };
        let c = MetricsConfig::from_lookup(env);
        assert_eq!(c.url.as_deref(), Some("http://influxdb:8086"));
        assert_eq!(
            (c.org.as_str(), c.bucket.as_str(), c.token.as_str()),
            ("voltmesh", "nb1", "t0k")
        );
        assert!(c.validate().is_ok());
        let blank = MetricsConfig::from_lookup(|_| Some(" ".to_owned()));
        assert_eq!(blank.url, None);
    }

    #[test]
    fn disabled_without_url() {
        assert_eq!(MetricsConfig::default().validate(), Ok(None));
    }

    #[test]
    fn bad_settings_are_named() {
        let ok = MetricsConfig::new("http://127.0.0.1:8086", "o", "b", "t");
        assert!(ok.validate().is_ok());
        let bad_url = MetricsConfig {
            url: Some("not a url".into()),
            ..ok.clone()
        };
        assert!(matches!(
            bad_url.validate(),
            Err(ConfigError::BadUrl { .. })
        ));
        let ftp = MetricsConfig {
            url: Some("ftp://x".into()),
            ..ok.clone()
        };
        assert!(matches!(ftp.validate(), Err(ConfigError::BadScheme { .. })));
        let no_bucket = MetricsConfig {
            bucket: String::new(),
            ..ok.clone()
        };
        assert_eq!(
            no_bucket.validate(),
            Err(ConfigError::Empty { what: "bucket" })
        );
        let small = MetricsConfig {
            max_buffered: 1,
            batch_size: 2,
            ..ok.clone()
        };
        assert_eq!(
            small.validate(),
            Err(ConfigError::OutOfRange {
                what: "max_buffered"
            })
        );
        let secret = format!(
            "{:?}",
            MetricsConfig {
                token: "s3cret".into(),
                ..ok
            }
        );
        assert!(!secret.contains("s3cret"), "{secret}");
    }
}
