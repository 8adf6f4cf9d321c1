//! `voltmesh clear`: clear a book file and print the result (see `voltmesh_engine::book_file`).

use std::path::PathBuf;

use super::BadInput;
use clap::{Args, ValueEnum};
use voltmesh_engine::{book_file, MarketRules, Mechanism, PayAsBidPricing, Price, Tariffs, K};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MechanismArg {
    /// Uniform-price double auction (pay-as-clear).
    Uniform,
    /// Pay-as-bid matching.
    PayAsBid,
    /// Continuous double auction, orders replayed in sequence.
    Cda,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PricingArg {
    /// Midpoint of bid and ask.
    Midpoint,
    /// The bid's limit.
    Bid,
}

/// Arguments of `voltmesh clear`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Clearing mechanism.
    #[arg(long, value_enum, default_value = "uniform")]
    mechanism: MechanismArg,
    /// Position of the uniform price in the clearing range, in [0, 1] (uniform only).
    #[arg(long)]
    k: Option<String>,
    /// Trade price of pay-as-bid pairs.
    #[arg(long, value_enum, default_value = "midpoint")]
    pay_as_bid_price: PricingArg,
    /// Utility feed-in tariff per kWh: lower bound for limit prices.
    #[arg(long, requires = "retail")]
    feed_in: Option<String>,
    /// Utility retail price per kWh: upper bound for limit prices.
    #[arg(long, requires = "feed_in")]
    retail: Option<String>,
    /// JSON array of orders; without it, a bundled example book of ten households.
    #[arg(long)]
    orders: Option<PathBuf>,
}

fn market(args: &ClearArgs) -> Result<(Mechanism, MarketRules), String> {
    let mechanism = match args.mechanism {
        MechanismArg::Uniform => Mechanism::Uniform {
            k: match &args.k {
                Some(k) => k.parse::<K>().map_err(|e| format!("--k: {e}"))?,
                None => K::HALF,
            },
        },
        MechanismArg::PayAsBid | MechanismArg::Cda if args.k.is_some() => {
            return Err("--k applies only to --mechanism uniform".into())
        }
        MechanismArg::PayAsBid => Mechanism::PayAsBid {
            pricing: match args.pay_as_bid_price {
                PricingArg::Midpoint => PayAsBidPricing::Midpoint,
                PricingArg::Bid => PayAsBidPricing::Bid,
            },
        },
        MechanismArg::Cda => Mechanism::Continuous,
    };
    let tariffs = match (&args.feed_in, &args.retail) {
        (Some(feed_in), Some(retail)) => {
            let feed_in: Price = feed_in.parse().map_err(|e| format!("--feed-in: {e}"))?;
            let retail: Price = retail.parse().map_err(|e| format!("--retail: {e}"))?;
            Tariffs::new(feed_in, retail).map_err(|e| e.to_string())?
        }
        _ => Tariffs::UNBOUNDED,
    };
    Ok((
        mechanism,
        MarketRules {
            tariffs,
            ..MarketRules::PERMISSIVE
        },
    ))
}

/// Runs `voltmesh clear`: prints the report on stdout.
///
/// # Errors
/// Every error is [`BadInput`] (exit status 2, one line that names the order or the flag).
pub fn run(args: &ClearArgs) -> anyhow::Result<()> {
    let result = market(args).and_then(|(mechanism, rules)| {
        let text = match &args.orders {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => book_file::EXAMPLE_BOOK.to_owned(),
        };
        book_file::clear_text(&text, mechanism, rules).map_err(|e| e.to_string())
    });
    let report = result.map_err(|message| BadInput(anyhow::anyhow!(message)))?;
    super::print(&report);
    Ok(())
}
