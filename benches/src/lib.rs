//! Deterministic fixtures shared by the criterion benches in `benches/benches/`.
//!
//! Every generator takes a seed, so two runs (and two machines) bench the same books.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use voltmesh_engine::{Order, OrderId, Price, Side};
use voltmesh_meter_bridge::config::Config;
use voltmesh_meter_bridge::testing::{BridgeToml, BrokerSection, HouseholdEntry};

/// The release `voltmesh` binary the node benches start (`$VOLTMESH_BIN`, else
/// `target/release/voltmesh`), if it exists.
pub fn release_binary() -> Option<std::path::PathBuf> {
    let bin = std::env::var_os("VOLTMESH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/voltmesh")
        });
    bin.exists().then_some(bin)
}

/// A process's resident memory, MB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// CPU time a process has used, user plus system, in seconds (`/proc/<pid>/stat`, in the
/// kernel's 100 Hz clock ticks).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Bytes of every file under `dir`.
pub fn bytes_under(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Limit prices of a realistic neighborhood book: 0.05 to 0.35 per kWh on a 0.001 tick, with
/// buyers a little above sellers so that roughly half the volume crosses.
fn price(rng: &mut ChaCha8Rng, side: Side) -> Price {
    let centre: i64 = match side {
        Side::Buy => 210,
        Side::Sell => 190,
    };
    // Sum of two uniforms: a triangular spread of ±100 ticks around the centre.
    let ticks = centre + rng.gen_range(-50..=50) + rng.gen_range(-50..=50);
    Price::from_micros(ticks * 1_000).unwrap_or(Price::ZERO)
}

/// One random order; quantities of 50 Wh to 2 kWh, as a household's 15-minute surplus or need.
pub fn order(rng: &mut ChaCha8Rng, seq: u64) -> Order {
    let side = if rng.gen_bool(0.5) {
        Side::Buy
    } else {
        Side::Sell
    };
    Order {
        id: OrderId::from(format!("o{seq}")),
        participant: format!("h{}", rng.gen_range(0..10_000)).into(),
        side,
        quantity_wh: rng.gen_range(50..=2_000),
        limit_price: price(rng, side),
        seq,
    }
}

/// `n` random orders for one interval's call auction.
pub fn book(n: usize, seed: u64) -> Vec<Order> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n as u64).map(|seq| order(&mut rng, seq)).collect()
}

/// A command in a continuous market's stream.
#[derive(Debug, Clone)]
pub enum Command {
    /// A new order.
    Submit(Order),
    /// Withdraw an earlier order (it may already be filled: then the book refuses).
    Cancel(OrderId),
    /// Re-price and re-size an earlier order.
    Replace(OrderId, u64, Price),
}

/// A realistic continuous-market stream of `n` commands: 80 % new orders, 12 % cancels and 8 %
/// replaces of recent orders.
pub fn cda_stream(n: usize, seed: u64) -> Vec<Command> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    let mut submitted: u64 = 0;
    for _ in 0..n {
        let roll = rng.gen_range(0..100);
        if roll < 80 || submitted < 100 {
            out.push(Command::Submit(order(&mut rng, submitted)));
            submitted += 1;
        } else {
            let target = OrderId::from(format!("o{}", submitted - rng.gen_range(1..=100)));
            if roll < 92 {
                out.push(Command::Cancel(target));
            } else {
                let side = if rng.gen_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                out.push(Command::Replace(
                    target,
                    rng.gen_range(50..=2_000),
                    price(&mut rng, side),
                ));
            }
        }
    }
    out
}

/// A bridge on `broker` for `meters` native meters `m0, m1, ...` on `voltmesh/meters/+`, each the
/// one meter of household `p0, p1, ...` (limits 0.3 / 0.1), with `dedupe_window`.
///
/// # Panics
/// If the bridge refuses the config (a bug in the bench).
pub fn native_meters_bridge(broker: BrokerSection, dedupe_window: u64, meters: u64) -> Config {
    let mut config = BridgeToml::new(broker)
        .subscribe("voltmesh/meters/+", "native")
        .dedupe_window(dedupe_window);
    for m in 0..meters {
        let household = HouseholdEntry::new(&format!("p{m}"), &format!("m{m}"), "0.3", "0.1");
        config = config.household(household);
    }
    match config.to_config() {
        Ok(c) => c,
        Err(e) => panic!("bench config: {e}"),
    }
}
