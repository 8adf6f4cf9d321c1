//! [`MqttOptions`] from the `[broker]` config: persistent session, manual acks, credentials and
//! TLS (rustls with the ring provider; no OpenSSL).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{BrokerConfig, TlsConfig};

/// Why connection options could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The CA file holds no usable certificate.
    #[error("{0}: no CA certificate found")]
    NoCaCertificate(PathBuf),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Options for one connection of the bridge.
///
/// `client_id` is the broker-side identity: use the configured one for the subscribing
/// connection (its persistent session holds the subscriptions and unacknowledged messages) and a
/// derived one for the publishing connection. Both get `clean_session = false`; `manual_acks`
/// only matters for the subscribing one.
///
/// # Errors
/// [`OptionsError`] if a TLS file is missing, unparsable or inconsistent.
pub fn mqtt_options(
    broker: &BrokerConfig,
    client_id: &str,
    manual_acks: bool,
    request_capacity: usize,
) -> Result<MqttOptions, OptionsError> {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options
        .set_keep_alive(Duration::from_secs(broker.keep_alive_secs.max(1)))
        .set_clean_session(false)
        .set_manual_acks(manual_acks)
        .set_max_packet_size(broker.max_packet_bytes, broker.max_packet_bytes)
        .set_request_channel_capacity(request_capacity.max(1));
    if let Some(username) = &broker.username {
        options.set_credentials(
            username.clone(),
            broker.password.clone().unwrap_or_default(),
        );
    }
    if let Some(tls) = &broker.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(client_tls_config(tls)?),
        )));
    }
    Ok(options)
}

/// A rustls client config trusting `tls.ca_file`, with the client certificate if configured.
///
/// # Errors
/// [`OptionsError`] for unreadable or unusable files.
pub fn client_tls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, OptionsError> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(read_certs(&tls.ca_file)?);
    if added == 0 {
        return Err(OptionsError::NoCaCertificate(tls.ca_file.clone()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, &e))?;
            builder.with_client_auth_cert(read_certs(cert)?, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, OptionsError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, &e))
}

fn pem_error(path: &Path, e: &rustls::pki_types::pem::Error) -> OptionsError {
    OptionsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_a_persistent_session_and_credentials() {
        let broker = BrokerConfig {
            username: Some("bridge".into()),
            password: Some("pw".into()),
            ..BrokerConfig::default()
        };
        let o = mqtt_options(&broker, "id-1", true, 64).unwrap();
        assert!(!o.clean_session());
        assert!(o.manual_acks());
        assert_eq!(o.client_id(), "id-1");
        let login = o.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("bridge", "pw")
        );
        assert_eq!(o.max_packet_size(), broker.max_packet_bytes);
    }

    #[test]
    fn missing_or_empty_tls_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("vm-opt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let tls = |ca: &Path| TlsConfig {
            ca_file: ca.to_owned(),
            client_cert_file: None,
            client_key_file: None,
        };
        assert!(matches!(
            client_tls_config(&tls(&dir.join("missing.pem"))),
            Err(OptionsError::Pem { .. })
        ));
        assert!(matches!(
            client_tls_config(&tls(&empty)),
            Err(OptionsError::NoCaCertificate(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
