//! Reloading the household list (`[[household]]` in `bridge.toml`) while the bridge runs.
//!
//! On each request ([`Reload::requests`]: SIGHUP in `voltmesh bridge`) and, if
//! [`Reload::watch`] is set, whenever the file's bytes differ from the ones last read (checked
//! that often), the task re-reads and validates the whole file ([`Config::load`]) outside the
//! ingest lock, then swaps the household list in under the lock
//! ([`Ingest::replace_households`](crate::Ingest::replace_households)): kept households keep
//! their registers, readings and own orders, new ones start, removed ones stop (the bridge
//! subscribes with wildcards, so no subscription changes; a removed household's meter readings
//! become `unknown_meter` dead letters). Messages are handled under the same lock, one at a
//! time, so a reading that arrives during a reload is handled before or after the swap, never
//! lost.
//!
//! A file that does not load (bad TOML, a meter listed twice, ...) is refused with an error log
//! and the running list is kept; the next change or request tries again. Only the household list
//! is reloaded: other sections take effect at the next start.
//!
//! # Known limitations
//! The file is read on the runtime's thread (a few kB; a slow disk delays the tasks that share
//! it by that read). A file written in place, not renamed over, may be read half-written: it is
//! then refused and read again once its bytes change.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use crate::config::{Config, ConfigError};
use crate::household::registry::Registry;
use crate::ingest::HouseholdsChange;
use crate::runtime::shared::{lock, SharedIngest};
use crate::shutdown::Shutdown;

/// Where and when [`crate::runtime::run`] reloads the household list (module docs).
#[derive(Debug)]
pub struct Reload {
    /// The `bridge.toml` the bridge started from.
    pub path: PathBuf,
    /// Each message asks for a reload; a closed channel asks for nothing more.
    pub requests: mpsc::Receiver<()>,
    /// Also reload when the file's bytes change, checked this often (`None`: only on request).
    pub watch: Option<Duration>,
}

/// How often `voltmesh bridge` checks `bridge.toml` for changes.
pub const WATCH_PERIOD: Duration = Duration::from_secs(5);

/// Re-reads `path` and, if it loads, replaces the household list in `ingest` (module docs).
///
/// # Errors
/// [`ConfigError`] if the file does not load; `ingest` is then unchanged.
pub fn reload_households(
    path: &Path,
    ingest: &SharedIngest,
) -> Result<HouseholdsChange, ConfigError> {
    reload(path, ingest).map(|(change, _)| change)
}

/// [`reload_households`], also returning the household list as the file has it.
fn reload(path: &Path, ingest: &SharedIngest) -> Result<(HouseholdsChange, Registry), ConfigError> {
    let config = Config::load(path)?;
    let registry = config.registry.clone();
    let change = lock(ingest).replace_households(config.registry);
    Ok((change, registry))
}

/// Runs reloads until shutdown (module docs); every changed household list also goes to
/// `households` (the Home Assistant task), if given.
pub(crate) async fn run_reloads(
    reload_from: Reload,
    ingest: SharedIngest,
    households: Option<watch::Sender<Registry>>,
    mut shutdown: Shutdown,
) {
    let Reload {
        path,
        requests,
        watch,
    } = reload_from;
    let mut requests = Some(requests);
    let mut last = std::fs::read(&path).ok();
    let mut poll = watch.map(|every| {
        let mut poll = tokio::time::interval(every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll
    });
    loop {
        let trigger = tokio::select! {
            biased;
            () = shutdown.recv() => return,
            asked = next_request(&mut requests) => {
                if !asked {
                    requests = None;
                    continue;
                }
                "request"
            }
            () = tick(&mut poll) => {
                let now = std::fs::read(&path).ok();
                if now == last {
                    continue;
                }
                "file changed"
            }
        };
        last = std::fs::read(&path).ok();
        let reloaded = reload(&path, &ingest).map(|(change, registry)| {
            if let (Some(tx), false) = (&households, change.is_empty()) {
                tx.send_replace(registry);
            }
            change
        });
        match reloaded {
            Ok(change) if change.is_empty() => info!(
                trigger,
                households = change.kept,
                "bridge.toml read: household list unchanged (other sections apply at restart)"
            ),
            Ok(change) => info!(
                trigger,
                added = ?names(&change.added),
                removed = ?names(&change.removed),
                changed = ?names(&change.changed),
                kept = change.kept,
                "households reloaded"
            ),
            Err(e) => error!(
                trigger,
                path = %path.display(),
                cause = %chain(&e),
                "bridge.toml refused; the running household list is kept"
            ),
        }
    }
}

fn names(participants: &[voltmesh_engine::ParticipantId]) -> Vec<&str> {
    participants
        .iter()
        .map(voltmesh_engine::ParticipantId::as_str)
        .collect()
}

/// `e` and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// True for a request, false once the channel is closed; never completes without a channel.
async fn next_request(requests: &mut Option<mpsc::Receiver<()>>) -> bool {
    match requests {
        Some(rx) => rx.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// The next poll; never completes without polling.
async fn tick(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(poll) => {
            poll.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG;
    use crate::runtime::shared::new_ingest;
    use crate::runtime::testing;
    use chrono::TimeDelta;
    use voltmesh_engine::ParticipantId;

    fn household(participant: &str, meter: &str, buy: &str) -> String {
        format!(
            "\n[[household]]\nparticipant = \"{participant}\"\nmeters = [\"{meter}\"]\n\
             buy_limit = \"{buy}\"\nsell_limit = \"0.10\"\n"
        )
    }

    fn file(households: &[String]) -> String {
        let mut text = DEFAULT_CONFIG.to_owned();
        for h in households {
            text.push_str(h);
        }
        text
    }

    fn reading(ingest: &SharedIngest, meter: &str, secs: i64, import_wh: u64) {
        let t = testing::at(secs);
        let payload = format!(
            r#"{{"meter":"{meter}","ts":"{}","import_wh":{import_wh},"export_wh":0,"power_w":0}}"#,
            t.to_rfc3339()
        );
        let outcome = lock(ingest).handle(&format!("meters/{meter}"), payload.as_bytes(), t);
        assert!(
            matches!(outcome, crate::Outcome::Accepted(_)),
            "{meter}: {outcome:?}"
        );
    }

    fn listed(ingest: &SharedIngest) -> Vec<String> {
        lock(ingest)
            .registry()
            .households()
            .map(|(p, _)| p.to_string())
            .collect()
    }

    #[test]
    fn kept_households_keep_their_registers_new_ones_start_removed_ones_stop_bad_files_are_refused()
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        let start = file(&[
            household("hh-01", "m1", "0.30"),
            household("hh-02", "m2", "0.30"),
        ]);
        std::fs::write(&path, &start).unwrap();
        let config = Config::load(&path).unwrap();
        let ingest = new_ingest(&config);
        reading(&ingest, "m1", 0, 1_000);
        reading(&ingest, "m2", 0, 5_000);

        // hh-02 leaves, hh-03 arrives, hh-01 stays with a new buy limit.
        std::fs::write(
            &path,
            file(&[
                household("hh-01", "m1", "0.25"),
                household("hh-03", "m3", "0.30"),
            ]),
        )
        .unwrap();
        let change = reload_households(&path, &ingest).unwrap();
        assert_eq!(change.added, [ParticipantId::from("hh-03")]);
        assert_eq!(change.removed, [ParticipantId::from("hh-02")]);
        assert_eq!(change.changed, [ParticipantId::from("hh-01")]);
        assert_eq!(listed(&ingest), ["hh-01", "hh-03"]);
        {
            let ingest = lock(&ingest);
            let m1 = crate::MeterId::new("m1").unwrap();
            assert_eq!(
                ingest.book().last_reading(&m1).map(|r| r.import_wh),
                Some(1_000),
                "hh-01's register survives the reload"
            );
            let hh1 = ingest.registry().household(&"hh-01".into()).unwrap();
            assert_eq!(hh1.preferences.buy_limit.to_string(), "0.250000");
            let m2 = crate::MeterId::new("m2").unwrap();
            assert!(ingest.book().last_reading(&m2).is_none(), "hh-02 forgotten");
        }
        // The kept meter's next reading is a delta (energy), the new one's a baseline.
        reading(&ingest, "m1", 60, 1_100);
        reading(&ingest, "m3", 60, 7_000);
        let removed = lock(&ingest).handle(
            "meters/m2",
            format!(
                r#"{{"meter":"m2","ts":"{}","import_wh":5100,"export_wh":0,"power_w":0}}"#,
                (testing::at(0) + TimeDelta::seconds(60)).to_rfc3339()
            )
            .as_bytes(),
            testing::at(60),
        );
        assert!(
            matches!(removed, crate::Outcome::Rejected(_)),
            "a removed household's meter is unknown: {removed:?}"
        );

        // A bad file (one meter under two households) is refused; the running list is kept.
        std::fs::write(
            &path,
            file(&[
                household("hh-01", "m1", "0.25"),
                household("hh-04", "m1", "0.30"),
            ]),
        )
        .unwrap();
        let e = reload_households(&path, &ingest).unwrap_err();
        assert!(e.to_string().contains("m1"), "{e}");
        assert_eq!(listed(&ingest), ["hh-01", "hh-03"]);
        std::fs::write(&path, "not toml [").unwrap();
        assert!(reload_households(&path, &ingest).is_err());
        assert_eq!(listed(&ingest), ["hh-01", "hh-03"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_or_a_changed_file_reloads_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, file(&[household("hh-01", "m1", "0.30")])).unwrap();
        let ingest = new_ingest(&Config::load(&path).unwrap());
        let (tx, requests) = mpsc::channel(1);
        let (notify, shutdown) = testing::shutdown();
        let task = tokio::spawn(run_reloads(
            Reload {
                path: path.clone(),
                requests,
                watch: Some(Duration::from_secs(5)),
            },
            ingest.clone(),
            None,
            shutdown,
        ));
        // A request reloads at once.
        let two = file(&[
            household("hh-01", "m1", "0.30"),
            household("hh-02", "m2", "0.30"),
        ]);
        std::fs::write(&path, &two).unwrap();
        tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(listed(&ingest), ["hh-01", "hh-02"]);
        // A changed file is picked up by the next check.
        std::fs::write(&path, file(&[household("hh-03", "m3", "0.30")])).unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(listed(&ingest), ["hh-03"]);
        drop(tx);
        drop(notify);
        task.await.unwrap();
    }
}
