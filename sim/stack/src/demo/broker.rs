//! The demo's MQTT broker: rumqttd in this process (feature `embedded-broker`, on by default), or
//! an external broker named by `--broker mqtt://host:port`.
//!
//! # Known limitation
//! rumqttd 0.20 has no shutdown: [`start_embedded`] starts the broker's router and listener
//! threads, which end with the process. `voltmesh demo` is one process, so nothing outlives it;
//! a caller that runs the demo as a library in a longer-lived process keeps those idle threads
//! (and the port) until it exits.

use std::fmt;
use std::str::FromStr;

use super::DemoError;

/// Where the broker listens (plain TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

impl FromStr for BrokerAddr {
    type Err = DemoError;

    /// `mqtt://host:port`, `tcp://host:port` or `host:port`; the port defaults to 1883.
    fn from_str(text: &str) -> Result<Self, DemoError> {
        let bad = |why: &str| DemoError::Broker(format!("{text:?}: {why}"));
        let rest = match text.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "scheme {scheme:?} is not supported (the demo speaks plain mqtt://)"
                )))
            }
            None => text,
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            return Err(bad(
                "expected mqtt://host:port, without credentials or path",
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("the port must be 1..=65535"))?,
            ),
            None => (rest, 1883),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(BrokerAddr {
            host: host.to_owned(),
            port,
        })
    }
}

/// Starts rumqttd on 127.0.0.1 on a free port and waits until it accepts connections.
///
/// # Errors
/// [`DemoError::Broker`] if no port is free, the configuration is refused or the broker does not
/// listen within 10 s.
#[cfg(feature = "embedded-broker")]
pub fn start_embedded() -> Result<BrokerAddr, DemoError> {
    let port = crate::testing::cluster::free_port()
        .map_err(|e| DemoError::Broker(format!("no free port: {e}")))?;
    let config: rumqttd::Config = serde_json::from_value(serde_json::json!({
        "id": 0,
        "router": {
            "max_connections": 64,
            "max_outgoing_packet_count": 200,
            "max_segment_size": 16_777_216,
            "max_segment_count": 4,
        },
        "v4": {
            "1": {
                "name": "voltmesh-demo",
                "listen": format!("127.0.0.1:{port}"),
                "next_connection_delay_ms": 1,
                "connections": {
                    "connection_timeout_ms": 60_000,
                    "max_payload_size": 262_144,
                    "max_inflight_count": 200,
                    "dynamic_filters": true,
                },
            },
        },
    }))
    .map_err(|e| DemoError::Broker(format!("rumqttd configuration: {e}")))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(cause = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| DemoError::Broker(format!("cannot start the broker thread: {e}")))?;
    // Probe by binding, not by connecting: a connection without an MQTT CONNECT makes the
    // broker log an error.
    let start = std::time::Instant::now();
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            return Err(DemoError::Broker(format!(
                "the embedded broker does not listen on port {port} after 10 s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(BrokerAddr {
        host: "127.0.0.1".into(),
        port,
    })
}

/// Waits until `addr` (an external broker) accepts a TCP connection.
///
/// # Errors
/// [`DemoError::Broker`] after `timeout`.
pub fn wait_listening(addr: &BrokerAddr, timeout: std::time::Duration) -> Result<(), DemoError> {
    let start = std::time::Instant::now();
    loop {
        if std::net::TcpStream::connect((addr.host.as_str(), addr.port)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(DemoError::Broker(format!(
                "nothing listens at {addr} after {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let a: BrokerAddr = "mqtt://127.0.0.1:1884".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 1884));
        let a: BrokerAddr = "localhost".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("localhost", 1883));
        let a: BrokerAddr = "tcp://[::1]:1883/".parse().unwrap();
        assert_eq!(a.host, "::1");
        for bad in [
            "mqtts://h:8883",
            "mqtt://h:0",
            "mqtt://:1883",
            "mqtt://u@h:1",
            "h:x",
        ] {
            assert!(bad.parse::<BrokerAddr>().is_err(), "{bad}");
        }
    }
}
