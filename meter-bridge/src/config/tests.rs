use super::*;
use crate::decode::Format;
use voltmesh_wire::Genesis;

#[test]
fn the_default_file_is_valid_and_complete() {
    let config = Config::from_toml(DEFAULT_CONFIG).unwrap();
    assert_eq!(config.broker, BrokerConfig::default());
    assert_eq!(config.queues, Queues::default());
    assert_eq!(config.topics, Topics::default());
    assert_eq!(config.home_assistant, HomeAssistantConfig::default());
    assert!(config.home_assistant.discovery, "on by default");
    assert_eq!(config.home_assistant.discovery_prefix, "homeassistant");
    assert_eq!(config.node, NodeConfig::default());
    assert_eq!(config.market, IntervalSpec::DEFAULT);
    assert_eq!(config.settlement, SettlementConfig::default());
    assert_eq!(
        config.deliveries,
        Default::default(),
        "no genesis: the default window"
    );
    assert!(config.node.publish_bills, "on by default");
    assert_eq!(config.subscriptions.len(), 5);
    // `+/events/rpc` has no literal prefix: sniffed, not mapped.
    assert_eq!(config.ingest.formats.len(), 4);
    assert_eq!(config.ingest.formats.get("tele/"), Some(&Format::Tasmota));
    assert_eq!(config.ingest.formats.get("dsmr/"), Some(&Format::Dsmr));
}

fn with(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml(&format!(
        "{extra}\n[[subscription]]\nfilter = \"m/#\"\nformat = \"native\"\n"
    ))
}

#[test]
fn refuses_what_breaks_an_invariant() {
    assert!(with("").is_ok());
    assert!(matches!(
        Config::from_toml("[broker]\nport = 1\n"),
        Err(ConfigError::NoSubscriptions)
    ));
    assert!(matches!(
        with("[broker]\nprot = 1"),
        Err(ConfigError::Parse(_))
    ));
    assert!(matches!(
        with("[broker]\nclient_id = \"\""),
        Err(ConfigError::BadClientId(0))
    ));
    assert!(matches!(
        with("[broker]\nport = 0"),
        Err(ConfigError::ZeroPort)
    ));
    assert!(matches!(
        with("[broker]\nreconnect_min_ms = 10\nreconnect_max_ms = 5"),
        Err(ConfigError::BadBackoff { .. })
    ));
    assert!(matches!(
        with("[broker]\npassword = \"x\""),
        Err(ConfigError::PasswordWithoutUsername)
    ));
    assert!(matches!(
        with("[broker]\nmax_packet_bytes = 100"),
        Err(ConfigError::PacketLimitTooSmall { .. })
    ));
    assert!(matches!(
        with("[broker.tls]\nca_file = \"ca.pem\"\nclient_key_file = \"k.pem\""),
        Err(ConfigError::ClientCertWithoutKey)
    ));
    assert!(matches!(
        with("[topics]\ndead_letter = \"dl/#\""),
        Err(ConfigError::BadTopic { .. })
    ));
    assert!(matches!(
        with("[queues]\nreadings = 0"),
        Err(ConfigError::ZeroQueue("readings"))
    ));
    assert!(matches!(
        with("[node]\napi_url = \"ftp://x\""),
        Err(ConfigError::BadNodeUrl(_))
    ));
    assert!(matches!(
        with("[node]\napi_url = \"http://\""),
        Err(ConfigError::BadNodeUrl(_))
    ));
    assert!(matches!(
        with("[node]\nsubmit_lead_secs = 0"),
        Err(ConfigError::BadSubmitLead { lead: 0, .. })
    ));
    assert!(matches!(
        with("[node]\nsubmit_lead_secs = 900"),
        Err(ConfigError::BadSubmitLead {
            lead: 900,
            interval: 900
        })
    ));
    assert_eq!(
        with("[node]\nsubmit_lead_secs = 120")
            .expect("a lead shorter than the interval")
            .node
            .submit_lead_secs,
        Some(120)
    );
    assert!(matches!(
        with("[node]\nneighborhood = \"\""),
        Err(ConfigError::EmptyNeighborhood)
    ));
    assert!(matches!(
        with("[settlement]\nfeed_in = \"0.5\"\nretail = \"0.3\""),
        Err(ConfigError::FeedInAboveRetail { .. })
    ));
    let dup = "[[household]]\nparticipant = \"a\"\nmeters = [\"m1\"]\nbuy_limit = \"0.3\"\nsell_limit = \"0.1\"\n";
    assert!(matches!(
        with(&format!("{dup}{}", dup.replace("\"a\"", "\"b\""))),
        Err(ConfigError::Registry(RegistryError::DuplicateMeter { .. }))
    ));
}

#[test]
fn load_resolves_the_key_file_next_to_the_config() {
    let dir = std::env::temp_dir().join(format!("vm-bridge-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bridge.toml");
    std::fs::write(&path, DEFAULT_CONFIG).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.node.key_file, dir.join("bridge.key"));
    std::fs::write(
        &path,
        DEFAULT_CONFIG.replace("\"bridge.key\"", "\"/k/b.key\""),
    )
    .unwrap();
    assert_eq!(
        Config::load(&path).unwrap().node.key_file,
        Path::new("/k/b.key")
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(Config::load(&path), Err(ConfigError::Read { .. })));
}

/// A valid genesis for neighborhood `nb`: 600 s intervals, 0.07/0.30 tariffs, 0.02 fee.
fn genesis_json() -> String {
    use voltmesh_engine::{MarketConfig, MarketRules, Mechanism, K};
    use voltmesh_wire::{GenesisValidator, PublicKey};
    let key = |n: u8| {
        PublicKey(
            ed25519_dalek::SigningKey::from_bytes(&[n; 32])
                .verifying_key()
                .to_bytes(),
        )
    };
    let p = |s: &str| s.parse::<Price>().unwrap();
    let genesis = Genesis {
        neighborhood: "nb".into(),
        genesis_time: "2026-09-21T00:00:00Z".parse().unwrap(),
        currency: voltmesh_wire::Currency::EUR,
        market: MarketConfig {
            mechanism: Mechanism::Uniform { k: K::HALF },
            rules: MarketRules {
                tariffs: Tariffs::new(p("0.07"), p("0.30")).unwrap(),
                max_order_wh: 1_000_000,
            },
            network_fee: p("0.02"),
            interval: IntervalSpec::new(600, 120).unwrap(),
            admission: voltmesh_engine::AdmissionLimits::DEFAULT,
        },
        validators: vec![GenesisValidator {
            public_key: key(1),
            address: "/ip4/127.0.0.1/tcp/7100".into(),
        }],
        participants: [("h1".into(), vec![key(2)])].into(),
        snapshot_interval_blocks: 0,
        governance: None,
        deliveries: voltmesh_wire::delivery::DeliveryRules {
            window_secs: 1_800,
            ..Default::default()
        },
        billing_keys: Vec::new(),
    };
    serde_json::to_string(&genesis).unwrap()
}

#[test]
fn genesis_supplies_the_market_and_settlement() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("genesis.json"), genesis_json()).unwrap();
    let path = dir.path().join("bridge.toml");
    let base = "[node]\nneighborhood = \"nb\"\ngenesis = \"genesis.json\"\n\n\
                [[subscription]]\nfilter = \"m/#\"\n";
    std::fs::write(&path, base).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.market, IntervalSpec::new(600, 120).unwrap());
    assert_eq!(config.settlement.feed_in, "0.07".parse().unwrap());
    assert_eq!(config.settlement.retail, "0.30".parse().unwrap());
    assert_eq!(config.settlement.network_fee, "0.02".parse().unwrap());
    assert_eq!(config.deliveries.window_secs, 1_800, "the bills' window");
    assert_eq!(
        config.node.genesis.as_deref(),
        Some(dir.path().join("genesis.json").as_path())
    );

    // Deprecated tables that agree are accepted; ones that disagree are refused, and the
    // error says what to do.
    let agreeing = format!(
        "{base}[market]\nlength_secs = 600\ngate_closure_lead_secs = 120\n\
         [settlement]\nfeed_in = \"0.07\"\nretail = \"0.3\"\nnetwork_fee = \"0.020000\"\n"
    );
    std::fs::write(&path, &agreeing).unwrap();
    assert!(Config::load(&path).is_ok());
    std::fs::write(&path, agreeing.replace("600", "900")).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::DisagreesWithGenesis {
                table: "market",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("remove [market]"), "{e}");
    std::fs::write(&path, agreeing.replace("\"0.3\"", "\"0.32\"")).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::DisagreesWithGenesis {
                table: "settlement",
                ..
            }
        ),
        "{e}"
    );

    std::fs::write(&path, base.replace("\"nb\"", "\"other\"")).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(
        matches!(e, ConfigError::NeighborhoodDisagrees { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("write neighborhood = \"nb\""), "{e}");

    std::fs::write(&path, base.replace("genesis.json", "missing.json")).unwrap();
    assert!(matches!(
        Config::load(&path),
        Err(ConfigError::Genesis { .. })
    ));
    std::fs::write(dir.path().join("genesis.json"), "{}").unwrap();
    std::fs::write(&path, base).unwrap();
    assert!(matches!(
        Config::load(&path),
        Err(ConfigError::Genesis { .. })
    ));
}

#[test]
fn deprecated_tables_still_work_without_genesis() {
    let config = with(
        "[market]\nlength_secs = 600\ngate_closure_lead_secs = 120\n\
         [settlement]\nretail = \"0.40\"",
    )
    .unwrap();
    assert_eq!(config.market, IntervalSpec::new(600, 120).unwrap());
    assert_eq!(config.settlement.retail, "0.40".parse().unwrap());
    assert_eq!(
        config.settlement.feed_in,
        SettlementConfig::default().feed_in
    );
    assert_eq!(config.node.genesis, None);
}

#[test]
fn node_api_url_takes_one_url_or_a_failover_list() {
    let one = with("[node]\napi_url = \"http://127.0.0.1:7600\"").unwrap();
    assert_eq!(one.node.api_url.urls(), ["http://127.0.0.1:7600"]);
    let many =
        with("[node]\napi_url = [\"http://10.0.0.1:7600\", \"https://10.0.0.2:7600\"]").unwrap();
    assert_eq!(
        many.node.api_url.urls(),
        ["http://10.0.0.1:7600", "https://10.0.0.2:7600"]
    );
    assert_eq!(many.node.api_url.primary(), "http://10.0.0.1:7600");
    assert!(matches!(
        with("[node]\napi_url = [\"http://10.0.0.1:7600\", \"ftp://x\"]"),
        Err(ConfigError::BadNodeUrl(url)) if url == "ftp://x"
    ));
    let empty = with("[node]\napi_url = []").unwrap_err().to_string();
    assert!(empty.contains("names no node"), "{empty}");
}

#[test]
fn home_assistant_discovery_is_on_by_default_and_its_prefix_checked() {
    let none = with("").unwrap();
    assert_eq!(none.home_assistant, HomeAssistantConfig::default());
    let off = with("[home_assistant]\ndiscovery = false\ndiscovery_prefix = \"ha\"").unwrap();
    assert!(!off.home_assistant.discovery);
    assert_eq!(off.home_assistant.discovery_prefix, "ha");
    assert!(matches!(
        with("[home_assistant]\ndiscovery_prefix = \"ha/#\""),
        Err(ConfigError::BadTopic {
            field: "home_assistant.discovery_prefix",
            ..
        })
    ));
    assert!(matches!(
        with("[home_assistant]\ndiscovry = true"),
        Err(ConfigError::Parse(_))
    ));
}
