//! A real Home Assistant for the process tests: where its `hass` is, a minimal configuration
//! directory, the process (killed with its process group when dropped, also on a panic), and
//! requests to its REST API.
//!
//! Home Assistant is installed by `sim/stack/tests/home-assistant/install.sh` (`.ci/test.sh` runs
//! it) into `<target dir>/home-assistant-venv`, pinned by the `requirements.txt` beside it; it is
//! started with `--skip-pip`, so it never installs anything at start.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where `hass` is: `VOLTMESH_HASS`, else `<target dir>/home-assistant-venv/bin/hass`. `None`
/// when neither names one.
///
/// # Panics
/// If `VOLTMESH_HASS` is set but names no file.
pub(crate) fn find_hass() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VOLTMESH_HASS").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "VOLTMESH_HASS={} is not a file (sim/stack/tests/home-assistant/install.sh prints \
             the path it installs)",
            path.display()
        );
        return Some(path);
    }
    // `CARGO_TARGET_TMPDIR` is `<target dir>/tmp` of the build that compiled this test.
    let mut targets: Vec<PathBuf> = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    targets.extend(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map(Path::to_path_buf),
    );
    targets
        .into_iter()
        .map(|t| t.join("home-assistant-venv/bin/hass"))
        .find(|p| p.is_file())
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a request sends.
pub(crate) enum Body<'a> {
    None,
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

/// One request to 127.0.0.1:`port` (30 s timeout), with `token` as its bearer.
///
/// # Errors
/// If the connection fails or the answer cannot be read.
pub(crate) fn request(
    port: u16,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Body<'_>,
) -> reqwest::Result<Answer> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut request = client
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        Body::None => request,
        Body::Json(value) => request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(value).expect("json")),
        Body::Form(pairs) => request.form(pairs),
    };
    let answer = request.send()?;
    Ok(Answer {
        status: answer.status().as_u16(),
        body: answer.bytes()?.to_vec(),
    })
}

/// A Home Assistant process on 127.0.0.1, with its own configuration directory; killed with its
/// process group when dropped.
#[derive(Debug)]
pub(crate) struct HomeAssistant {
    pub(crate) port: u16,
    pub(crate) config: PathBuf,
    child: Option<Child>,
    /// The owner's access token, once onboarded.
    pub(crate) token: Option<String>,
    /// The token set as the frontend keeps it (`hassTokens`), once onboarded.
    pub(crate) frontend_tokens: Option<Value>,
}

impl HomeAssistant {
    /// Writes a minimal configuration into `config` and starts `hass` on `port`.
    ///
    /// The configuration holds the core settings, `http` (loopback, `port`), `api` and `config`
    /// (the REST API and config flows); Home Assistant adds its default integrations (frontend,
    /// onboarding, person, ...). Onboarding's location, analytics and integration steps are
    /// marked done in its store (the location step would start integrations that need the
    /// network), so creating the owner ([`HomeAssistant::onboard`]) completes onboarding and
    /// the frontend opens without its wizard.
    pub(crate) fn start(hass: &Path, config: &Path, port: u16) -> HomeAssistant {
        std::fs::create_dir_all(config.join(".storage")).expect("config dir");
        let yaml = format!(
            "homeassistant:\n  name: Voltmesh household\n  unit_system: metric\n  \
             currency: EUR\n  country: DE\n  time_zone: UTC\n  latitude: 51.3\n  \
             longitude: 9.5\n  elevation: 150\n\
             http:\n  server_host: 127.0.0.1\n  server_port: {port}\n\
             api:\nconfig:\n\
             logger:\n  default: warning\n"
        );
        std::fs::write(config.join("configuration.yaml"), yaml).expect("configuration.yaml");
        let onboarding = json!({
            "version": 4,
            "minor_version": 1,
            "key": "onboarding",
            "data": {"done": ["core_config", "analytics", "integration"]},
        });
        std::fs::write(
            config.join(".storage/onboarding"),
            serde_json::to_vec(&onboarding).expect("json"),
        )
        .expect("onboarding store");
        let out = std::fs::File::create(config.join("hass.out")).expect("hass.out");
        let child = Command::new(hass)
            .arg("--config")
            .arg(config)
            .arg("--skip-pip")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("hass.out"))
            .stderr(out)
            // Its own process group, so the guard kills whatever it starts too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", hass.display()));
        HomeAssistant {
            port,
            config: config.to_path_buf(),
            child: Some(child),
            token: None,
            frontend_tokens: None,
        }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last `lines` lines of Home Assistant's log and output, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        for name in ["hass.out", "home-assistant.log"] {
            let log = std::fs::read_to_string(self.config.join(name)).unwrap_or_default();
            let all: Vec<&str> = log.lines().collect();
            let from = all.len().saturating_sub(lines);
            text.push_str(&format!("--- {name} (last {lines} lines)\n"));
            text.push_str(&all[from..].join("\n"));
            text.push('\n');
        }
        text
    }

    /// Waits until the HTTP server answers `GET /api/onboarding` (at most `patience`); panics
    /// with the log if it does not or if Home Assistant exits.
    pub(crate) fn wait_up(&mut self, patience: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(answer) = request(
                self.port,
                reqwest::Method::GET,
                "/api/onboarding",
                None,
                Body::None,
            ) {
                if answer.status == 200 {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("Home Assistant exited with {status}\n{}", self.log_tail(60));
                }
            }
            assert!(
                start.elapsed() < patience,
                "Home Assistant did not answer within {patience:?}\n{}",
                self.log_tail(60)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Creates the owner through onboarding (`POST /api/onboarding/users`, which answers an
    /// authorization code) and exchanges the code for tokens (`POST /auth/token`).
    pub(crate) fn onboard(&mut self) {
        let client_id = format!("{}/", self.url());
        let user = json!({
            "client_id": client_id,
            "name": "Household",
            "username": "household",
            "password": "voltmesh-test-password",
            "language": "en",
        });
        let answer = self
            .post_json("/api/onboarding/users", None, &user)
            .expect("onboarding answers");
        assert_eq!(answer.status, 200, "onboarding: {}", answer.text());
        let code = answer.json()["auth_code"]
            .as_str()
            .unwrap_or_else(|| panic!("no auth_code: {}", answer.text()))
            .to_owned();
        let answer = request(
            self.port,
            reqwest::Method::POST,
            "/auth/token",
            None,
            Body::Form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
            ]),
        )
        .expect("token answer");
        assert_eq!(answer.status, 200, "token: {}", answer.text());
        let tokens = answer.json();
        let token = tokens["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {}", answer.text()))
            .to_owned();
        let expires_in = tokens["expires_in"].as_u64().unwrap_or(1800);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        self.frontend_tokens = Some(json!({
            "hassUrl": self.url(),
            "clientId": client_id,
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "expires": now_ms + expires_in * 1000,
            "refresh_token": tokens["refresh_token"],
        }));
        self.token = Some(token);
    }

    fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Result<Answer> {
        request(
            self.port,
            reqwest::Method::POST,
            path,
            token,
            Body::Json(body),
        )
    }

    /// `POST path` with a JSON body as the owner.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_json(path, self.token.as_deref(), body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log_tail(40)))
    }

    /// `GET path` as the owner.
    pub(crate) fn get(&self, path: &str) -> Answer {
        request(
            self.port,
            reqwest::Method::GET,
            path,
            self.token.as_deref(),
            Body::None,
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log_tail(40)))
    }

    /// Adds the MQTT integration for the broker on 127.0.0.1:`broker_port` through its config
    /// flow (`POST /api/config/config_entries/flow {"handler": "mqtt"}`, then the broker step).
    pub(crate) fn add_mqtt(&self, broker_port: u16) {
        let answer = self.post(
            "/api/config/config_entries/flow",
            &json!({"handler": "mqtt"}),
        );
        let flow = answer.json();
        assert_eq!(
            (answer.status, &flow["type"], &flow["step_id"]),
            (200, &json!("form"), &json!("broker")),
            "MQTT config flow: {}\n{}",
            answer.text(),
            self.log_tail(40)
        );
        let id = flow["flow_id"].as_str().expect("flow_id");
        let answer = self.post(
            &format!("/api/config/config_entries/flow/{id}"),
            &json!({"broker": "127.0.0.1", "port": broker_port}),
        );
        let entry = answer.json();
        assert_eq!(
            (answer.status, &entry["type"], &entry["result"]["state"]),
            (200, &json!("create_entry"), &json!("loaded")),
            "MQTT broker step: {}\n{}",
            answer.text(),
            self.log_tail(40)
        );
    }

    /// Every entity's state (`GET /api/states`), by entity id.
    pub(crate) fn states(&self) -> std::collections::BTreeMap<String, Value> {
        let answer = self.get("/api/states");
        assert_eq!(answer.status, 200, "states: {}", answer.text());
        answer
            .json()
            .as_array()
            .expect("a list of states")
            .iter()
            .filter_map(|s| Some((s["entity_id"].as_str()?.to_owned(), s.clone())))
            .collect()
    }

    /// Renders `template` (`POST /api/template`).
    pub(crate) fn render(&self, template: &str) -> String {
        let answer = self.post("/api/template", &json!({"template": template}));
        assert_eq!(answer.status, 200, "template: {}", answer.text());
        answer.text()
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The group first (Home Assistant's children, if any), then the child itself.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
