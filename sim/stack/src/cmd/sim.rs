//! `voltmesh sim`: the grid simulation ([`voltmesh_sim::cli`]), and `--via-network`, which runs
//! the simulation's household orders through the whole stack ([`crate::via_network`]).

use anyhow::{bail, Context};
use voltmesh_engine::Mechanism;
use voltmesh_sim::cli::{self, RunArgs, SimArgs, SimCommand};
use voltmesh_sim::sweep::SweepError;

use super::BadInput;
use voltmesh_sim::run::Window;
use voltmesh_sim::simbench::Grid;

/// Runs `voltmesh sim`.
///
/// # Errors
/// As [`voltmesh_sim::cli::run`]; with `--via-network`, also an interval the nodes finalized
/// differently from the in-process run, or one they never finalized. A bad `sim sweep` spec is
/// [`BadInput`] (exit status 2).
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    match &args.command {
        None if args.run.via_network => via_network(&args.run),
        Some(SimCommand::Sweep(sweep)) => {
            voltmesh_sim::sweep::run_cli(sweep).map_err(|e| match e {
                SweepError::Spec(_) => BadInput(e.into()).into(),
                e => e.into(),
            })
        }
        _ => cli::run(args),
    }
}

/// `voltmesh sim --via-network`: the in-process run's household orders through the demo's stack
/// (MQTT, the bridge, 4 validators), interval by interval against the in-process trades
/// ([`crate::via_network`] documents the mapping).
fn via_network(args: &RunArgs) -> anyhow::Result<()> {
    if args.interval_minutes != 15 {
        bail!("--via-network plays one 15-minute profile step per network interval: it does not take --interval-minutes");
    }
    let scenario = cli::scenario(args)?;
    if scenario.mechanism == Mechanism::Continuous {
        bail!("--via-network compares call auctions: the continuous book (cda) matches in arrival order, which the network does not keep");
    }
    if args.intervals == 0 {
        bail!("--intervals must be at least 1");
    }
    let from = match &args.from {
        Some(text) => cli::parse_time(text)?,
        None => cli::parse_time("2016-06-21 10:00")?,
    };
    let dir = cli::grid_dir(args.grid.as_ref());
    let grid = Grid::read(&dir).with_context(|| format!("reading grid {}", dir.display()))?;
    let first = grid
        .load_profiles
        .index_of(from)
        .filter(|&i| i >= 3)
        .with_context(|| {
            format!(
                "{from} is not an interval start at least 45 minutes into the profiles of {}",
                grid.name
            )
        })?;
    let intervals = args.intervals as usize;
    // One warm-up interval first: the households' forecasts need a metered interval.
    let window = Window {
        start: first - 1,
        steps: intervals + 1,
    };
    let mut sims = crate::via_network::simulate(&grid, &scenario, window).context("simulation")?;
    let sims = sims.split_off(1);
    let map = crate::via_network::participant_map(&grid);
    let own = sims
        .iter()
        .map(|s| crate::via_network::planned_orders(s, &map))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "voltmesh sim --via-network: {} intervals of {} from {} (seed {}): {} orders, {} trades in process; the same orders now go through MQTT, the bridge and the nodes",
        sims.len(),
        grid.name,
        from.format("%Y-%m-%d %H:%M"),
        args.seed,
        own.iter().map(Vec::len).sum::<usize>(),
        sims.iter().map(|s| s.outcome.trades.len()).sum::<usize>(),
    );
    let options = crate::demo::DemoOptions {
        intervals: args.intervals,
        households: grid.loads.len(),
        grid: dir,
        // With own orders the demo's first shown interval plays the profile step three after
        // `from` (two warm-up intervals and one more for the bridge's subscriptions).
        from: grid.load_profiles.time_of(first - 3),
        seed: args.seed,
        prices: crate::demo::neighborhood::Prices {
            feed_in: args.feed_in,
            retail: args.retail,
            network_fee: args.network_fee,
        },
        mechanism: scenario.mechanism,
        pv_scale: args.pv_scale,
        compare: true,
        own_orders: Some(own),
        ..crate::demo::DemoOptions::default()
    };
    let outcome = crate::demo::run_blocking(&options, &mut std::io::stdout())?;
    if outcome.interrupted {
        bail!("interrupted");
    }
    let len = i64::from(options.interval_secs);
    let first_start = outcome.views.first().map_or(0, |v| v.start);
    let committed = &outcome.committed;
    let checks: Vec<_> = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| {
            let start = outcome
                .views
                .get(i)
                .map_or(first_start + len * i as i64, |v| v.start);
            let book = committed
                .orders
                .get(&start)
                .map(|o| crate::via_network::committed_book(o))
                .unwrap_or_default();
            let clearing = committed.clearings.get(&start).map(|c| &c.outcome);
            crate::via_network::check(sim, &map, start, &book, clearing)
        })
        .collect();
    print!("{}", crate::via_network::table(&checks));
    let mismatched = checks.iter().filter(|c| !c.matches()).count();
    let traded = checks.iter().filter(|c| !c.sim_trades.is_empty()).count();
    println!(
        "re-clearing the committed orders in process: {} of {} committed intervals equal",
        outcome.compared - outcome.mismatched,
        outcome.compared
    );
    if mismatched > 0 {
        bail!(
            "{mismatched} of {} intervals finalized by the nodes differ from the in-process run",
            checks.len()
        );
    }
    if outcome.mismatched > 0 {
        bail!(
            "{} of {} committed intervals re-clear differently in process",
            outcome.mismatched,
            outcome.compared
        );
    }
    println!(
        "via network: all {} intervals equal the in-process run ({traded} with trades, {} trades)",
        checks.len(),
        checks.iter().map(|c| c.sim_trades.len()).sum::<usize>()
    );
    Ok(())
}
