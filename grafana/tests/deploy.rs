//! `deploy/compose.yaml` agrees with the files it mounts: every mounted file exists in the repo
//! (or is a documented secret), and ports, host names and paths agree between compose, Mosquitto,
//! the node and bridge configs and the Grafana provisioning. Docker is never run.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::provisioning;
use serde_yaml_ng::Value;

fn deploy_dir() -> PathBuf {
    provisioning::grafana_dir().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose_text() -> String {
    read(&deploy_dir().join("compose.yaml"))
}

/// One service, reduced to what the checks need.
#[derive(Debug, Default)]
struct Service {
    /// Bind mounts: target → source (relative to `deploy/`).
    binds: BTreeMap<String, String>,
    /// Named-volume mounts: target → volume.
    named: BTreeMap<String, String>,
    env_files: Vec<String>,
    environment: BTreeMap<String, String>,
    /// Container ports published.
    container_ports: Vec<u16>,
    command: Vec<String>,
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn parse_compose(text: &str) -> (BTreeMap<String, Service>, Vec<String>) {
    let mut doc: Value = serde_yaml_ng::from_str(text).expect("compose.yaml is YAML");
    doc.apply_merge().expect("merge keys resolve");
    let volumes: Vec<String> = doc["volumes"]
        .as_mapping()
        .map(|m| m.keys().map(str_of).collect())
        .unwrap_or_default();
    let mut services = BTreeMap::new();
    let Some(map) = doc["services"].as_mapping() else {
        panic!("compose.yaml has no services");
    };
    for (name, body) in map {
        let mut s = Service::default();
        for v in body["volumes"].as_sequence().into_iter().flatten() {
            let spec = str_of(v);
            let parts: Vec<&str> = spec.split(':').collect();
            assert!(
                parts.len() >= 2,
                "{spec}: short syntax source:target[:mode]"
            );
            if parts[0].starts_with('.') || parts[0].starts_with('/') {
                s.binds.insert(parts[1].to_owned(), parts[0].to_owned());
            } else {
                s.named.insert(parts[1].to_owned(), parts[0].to_owned());
            }
        }
        s.env_files = body["env_file"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(str_of)
            .collect();
        if let Some(env) = body["environment"].as_mapping() {
            for (k, v) in env {
                s.environment.insert(str_of(k), str_of(v));
            }
        }
        for p in body["ports"].as_sequence().into_iter().flatten() {
            let spec = str_of(p);
            let container = spec.rsplit(':').next().unwrap_or_default();
            s.container_ports
                .push(container.parse().unwrap_or_else(|_| panic!("port {spec}")));
        }
        s.command = body["command"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(str_of)
            .collect();
        services.insert(str_of(name), s);
    }
    (services, volumes)
}

/// `http://host:port...` → (host, port).
fn host_port(url: &str) -> (String, u16) {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{url} has no port"));
    (
        host.to_owned(),
        port.parse().unwrap_or_else(|_| panic!("{url}")),
    )
}

/// Every problem with the deployment described by `compose` (and the files on disk).
fn check(compose: &str) -> Vec<String> {
    let dir = deploy_dir();
    let readme = read(&provisioning::grafana_dir().join("README.md"));
    let (services, volumes) = parse_compose(compose);
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);

    // Every mounted file exists in the repo, or is a documented secret.
    for (name, s) in &services {
        let sources = s.binds.values().chain(&s.env_files);
        for source in sources {
            if let Some(secret) = source.strip_prefix("./secrets/") {
                let template = dir.join("secrets.example").join(secret);
                if !template.exists() && !readme.contains(&format!("`secrets/{secret}`")) {
                    problem(format!(
                        "{name}: secret {source} has no template and no README step"
                    ));
                }
            } else if !dir.join(source).exists() {
                problem(format!(
                    "{name}: mounts {source}, which is not in the repository"
                ));
            }
        }
        for volume in s.named.values() {
            if !volumes.contains(volume) {
                problem(format!("{name}: volume {volume} is not declared"));
            }
        }
        if let Some(i) = s.command.iter().position(|a| a == "--config") {
            let target = s.command.get(i + 1).cloned().unwrap_or_default();
            if !s.binds.contains_key(&target) {
                problem(format!("{name}: --config {target} is not mounted"));
            }
        }
    }
    let service = |n: &str| {
        services
            .get(n)
            .unwrap_or_else(|| panic!("compose.yaml has no service {n}"))
    };

    // Mosquitto: its listener is published and is where the bridge connects.
    let mosquitto = service("mosquitto");
    let conf_source = &mosquitto.binds["/mosquitto/config/mosquitto.conf"];
    let conf = read(&dir.join(conf_source));
    let directive = |key: &str| -> Vec<String> {
        conf.lines()
            .filter_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
            .collect()
    };
    let listeners: Vec<u16> = directive("listener ")
        .iter()
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    if listeners.is_empty() {
        problem("mosquitto.conf has no listener".into());
    }
    for port in &listeners {
        if !mosquitto.container_ports.contains(port) {
            problem(format!(
                "mosquitto listens on {port}, which compose does not publish"
            ));
        }
    }
    for file in directive("password_file ")
        .iter()
        .chain(&directive("acl_file "))
    {
        if !mosquitto.binds.contains_key(file) {
            problem(format!(
                "mosquitto.conf names {file}, which compose does not mount"
            ));
        }
    }
    if directive("allow_anonymous ") != ["false"] {
        problem("mosquitto.conf must refuse anonymous clients".into());
    }

    let bridge = service("bridge");
    let bridge_conf: toml::Table = read(&dir.join(&bridge.binds["/etc/voltmesh/bridge.toml"]))
        .parse()
        .expect("bridge.toml is TOML");
    let broker_host = bridge_conf["broker"]["host"].as_str().unwrap_or_default();
    let broker_port = bridge_conf["broker"]["port"]
        .as_integer()
        .unwrap_or_default();
    if broker_host != "mosquitto" {
        problem(format!(
            "bridge connects to {broker_host}, not the mosquitto service"
        ));
    }
    if !listeners.iter().any(|p| i64::from(*p) == broker_port) {
        problem(format!(
            "bridge connects to port {broker_port}; mosquitto listens on {listeners:?}"
        ));
    }
    let node_urls: Vec<String> = bridge_conf["node"]["urls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect();

    // Nodes: four of them; configs, keys and data mounted where the config says; p2p published;
    // the bridge reaches every node's API.
    let nodes: Vec<&String> = services.keys().filter(|n| n.starts_with("node-")).collect();
    if nodes.len() != 4 {
        problem(format!("expected 4 nodes, found {nodes:?}"));
    }
    for name in nodes {
        let s = &services[name];
        let Some(source) = s.binds.get("/etc/voltmesh/node.toml") else {
            problem(format!("{name}: no node.toml mounted"));
            continue;
        };
        let path = dir.join(source);
        if !path.exists() {
            continue; // reported above
        }
        let conf: toml::Table = read(&path).parse().expect("node config is TOML");
        for key in ["genesis", "key_file"] {
            let path = conf[key].as_str().unwrap_or_default();
            if !s.binds.contains_key(path) {
                problem(format!("{name}: {key} {path} is not mounted"));
            }
        }
        // The consensus dashboard names nodes by their `[metrics] node` tag: the service name.
        let tag = conf
            .get("metrics")
            .and_then(|m| m.get("node"))
            .and_then(|v| v.as_str());
        if tag != Some(&*name.to_string()) {
            problem(format!(
                "{name}: [metrics] node = {tag:?}, expected the service name"
            ));
        }
        let data = conf["data_dir"].as_str().unwrap_or_default();
        if !s.named.contains_key(data) {
            problem(format!("{name}: data_dir {data} is not on a volume"));
        }
        let listen = conf["listen"].as_str().unwrap_or_default();
        let p2p: u16 = listen
            .rsplit('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default();
        if !s.container_ports.contains(&p2p) {
            problem(format!(
                "{name}: listens on {p2p}, which compose does not publish"
            ));
        }
        let api = conf["api"].as_str().unwrap_or_default();
        let api_port = api.rsplit(':').next().unwrap_or_default();
        let expected = format!("http://{name}:{api_port}");
        if !node_urls.contains(&expected) {
            problem(format!(
                "bridge does not reach {name}'s API at {expected}: {node_urls:?}"
            ));
        }
        if !s.environment.contains_key("VOLTMESH_INFLUX_URL") {
            problem(format!("{name}: no VOLTMESH_INFLUX_URL"));
        }
    }

    // InfluxDB: the writers, Grafana and the database agree on address, org and bucket.
    let influx = service("influxdb");
    let datasources = provisioning::datasources();
    let ds = &datasources.datasources[0];
    let mut urls = vec![("grafana datasource".to_owned(), ds.url.clone())];
    for (name, s) in &services {
        if let Some(url) = s.environment.get("VOLTMESH_INFLUX_URL") {
            urls.push((name.clone(), url.clone()));
            let org = s.environment.get("VOLTMESH_INFLUX_ORG");
            let bucket = s.environment.get("VOLTMESH_INFLUX_BUCKET");
            if org != influx.environment.get("DOCKER_INFLUXDB_INIT_ORG")
                || bucket != influx.environment.get("DOCKER_INFLUXDB_INIT_BUCKET")
            {
                problem(format!("{name}: org/bucket differ from InfluxDB's"));
            }
        }
    }
    for (who, url) in urls {
        let (host, port) = host_port(&url);
        if host != "influxdb" || !influx.container_ports.contains(&port) {
            problem(format!(
                "{who} writes/reads {url}; InfluxDB is influxdb:{:?}",
                influx.container_ports
            ));
        }
    }
    if Some(&ds.json_data.organization) != influx.environment.get("DOCKER_INFLUXDB_INIT_ORG")
        || Some(&ds.json_data.default_bucket)
            != influx.environment.get("DOCKER_INFLUXDB_INIT_BUCKET")
    {
        problem("grafana datasource org/bucket differ from InfluxDB's".into());
    }

    // Grafana: provisioning where Grafana reads it, dashboards where the provider looks.
    let grafana = service("grafana");
    if grafana
        .binds
        .get("/etc/grafana/provisioning")
        .map(String::as_str)
        != Some("../provisioning")
    {
        problem("grafana does not mount ../provisioning at /etc/grafana/provisioning".into());
    }
    let providers = provisioning::providers();
    let path = &providers.providers[0].options.path;
    if grafana.binds.get(path).map(String::as_str) != Some("../dashboards") {
        problem(format!(
            "grafana does not mount ../dashboards at the provider path {path}"
        ));
    }
    if !grafana.container_ports.contains(&3000) {
        problem("grafana's port 3000 is not published".into());
    }
    problems
}

#[test]
fn compose_mounts_existing_files_and_ports_agree() {
    let problems = check(&compose_text());
    assert!(
        problems.is_empty(),
        "deploy problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_disagreements() {
    let compose = compose_text();
    for (from, to, expect) in [
        (
            "\"1883:1883\"",
            "\"1884:1884\"",
            "mosquitto listens on 1883",
        ),
        ("\"7103:7100\"", "\"7103:7200\"", "node-3: listens on 7100"),
        (
            "./nodes/node-2.toml:",
            "./nodes/node-9.toml:",
            "not in the repository",
        ),
        (
            "http://influxdb:8086",
            "http://influxdb:9999",
            "InfluxDB is influxdb",
        ),
        ("../dashboards:", "../dashboard:", "provider path"),
        (
            "./secrets/node-4.key:",
            "./secrets/node-5.key:",
            "no template and no README step",
        ),
    ] {
        assert!(compose.contains(from), "{from}");
        let problems = check(&compose.replacen(from, to, 1));
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "replacing {from} by {to} should report {expect:?}; got {problems:?}"
        );
    }
}
