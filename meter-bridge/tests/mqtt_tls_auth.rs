//! Password + ACL + TLS: the bridge connects over TLS with a username and password (CA and server
//! certificate generated here); clients without credentials or with a wrong password are refused,
//! and the ACL keeps a meter from writing where it may not.

mod mqtt_support;

use std::process::Command;

use mqtt_support::{
    bridge_config, mosquitto_pub, wait_until, BrokerOptions, BrokerTls, Mosquitto, RunningBridge,
    TempDir, PATIENCE,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, TlsConfiguration,
    Transport,
};
use voltmesh_meter_bridge::config::TlsConfig;
use voltmesh_meter_bridge::runtime::mqtt::options::client_tls_config;
use voltmesh_meter_bridge::runtime::shared::lock;
use voltmesh_meter_bridge::testing::run_ok;

struct Pki {
    ca: std::path::PathBuf,
    tls: BrokerTls,
}

fn pki(dir: &TempDir) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Voltmesh test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server cert");
    let ca_path = dir.write("ca.pem", ca.pem());
    Pki {
        ca: ca_path.clone(),
        tls: BrokerTls {
            ca: ca_path,
            cert: dir.write("server.pem", server.pem()),
            key: dir.write("server.key", server_key.serialize_pem()),
        },
    }
}

fn passwd(file: &std::path::Path, create: bool, user: &str, password: &str) {
    let mut cmd = Command::new("mosquitto_passwd");
    cmd.arg("-b");
    if create {
        cmd.arg("-c");
    }
    run_ok(cmd.arg(file).args([user, password]));
}

/// Connects a TLS client and returns how the broker answered the CONNECT.
async fn try_connect(
    port: u16,
    ca: &std::path::Path,
    login: Option<(&str, &str)>,
) -> Result<(), ConnectionError> {
    let mut options = MqttOptions::new("probe", "127.0.0.1", port);
    let tls = client_tls_config(&TlsConfig {
        ca_file: ca.to_owned(),
        client_cert_file: None,
        client_key_file: None,
    })
    .expect("client TLS config");
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        std::sync::Arc::new(tls),
    )));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (_client, mut eventloop) = AsyncClient::new(options, 10);
    let polled = tokio::time::timeout(PATIENCE, eventloop.poll())
        .await
        .expect("the broker answers");
    match polled {
        Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(()),
        Ok(other) => panic!("unexpected first event {other:?}"),
        Err(e) => Err(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_acl_and_tls() {
    let dir = TempDir::new("tls");
    let pki = pki(&dir);
    let passwords = dir.path().join("passwords");
    passwd(&passwords, true, "bridge", "bridge-secret");
    passwd(&passwords, false, "meter", "meter-secret");
    let acl = dir.write(
        "acl",
        "user bridge\n\
         topic read dsmr/#\n\
         topic read tele/+/SENSOR\n\
         topic read +/events/rpc\n\
         topic read voltmesh/meters/#\n\
         topic write voltmesh/#\n\
         \n\
         user meter\n\
         topic write dsmr/#\n",
    );
    let broker = Mosquitto::start(&BrokerOptions {
        password_file: Some(passwords),
        acl_file: Some(acl),
        tls: Some(pki.tls.clone()),
        ..BrokerOptions::default()
    });

    // Refused: no credentials, wrong password. Accepted: the right ones.
    let refused = |r: Result<(), ConnectionError>| {
        matches!(
            r,
            Err(ConnectionError::ConnectionRefused(
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
            ))
        )
    };
    assert!(refused(try_connect(broker.port, &pki.ca, None).await));
    assert!(refused(
        try_connect(broker.port, &pki.ca, Some(("meter", "nope"))).await
    ));
    try_connect(broker.port, &pki.ca, Some(("meter", "meter-secret")))
        .await
        .expect("valid credentials are accepted");

    let broker_extra = format!(
        "username = \"bridge\"\npassword = \"bridge-secret\"\n[broker.tls]\nca_file = {:?}\n",
        pki.ca.display().to_string()
    );
    let mut bridge = RunningBridge::start(
        bridge_config(broker.port, "bridge-tls", &broker_extra, ""),
        16,
    );
    bridge.wait_subscribed(1).await;

    let tls_args = |topic: &'static str, file: &std::path::Path| {
        vec![
            "--cafile".to_owned(),
            pki.ca.display().to_string(),
            "-u".to_owned(),
            "meter".to_owned(),
            "-P".to_owned(),
            "meter-secret".to_owned(),
            "-t".to_owned(),
            topic.to_owned(),
            "-f".to_owned(),
            file.display().to_string(),
        ]
    };
    // The ACL does not let the meter write to the native topic: the broker drops it.
    let native = mqtt_support::fixture_path("voltmesh_native_reading.json");
    let args = tls_args("voltmesh/meters/hh-042", &native);
    mosquitto_pub(
        broker.port,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let kaifa = mqtt_support::fixture_path("dsmr_v4_2_kaifa.txt");
    let args = tls_args("dsmr/kaifa", &kaifa);
    mosquitto_pub(
        broker.port,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let reading = bridge.next_reading().await;
    assert_eq!(reading.meter.as_str(), "3960221976967177082151037881335713");
    wait_until("one reading in", || {
        lock(&bridge.ingest).counters().accepted == 1
    })
    .await;
    let counters = lock(&bridge.ingest).counters().clone();
    assert_eq!(
        (counters.accepted, counters.pending, counters.duplicates),
        (1, 0, 0),
        "the denied publish never reached the bridge: {counters:?}"
    );
    bridge.shutdown().await;
}
