//! `voltmesh clear`'s arguments, behind the `clap` feature: the flags that pick a mechanism and
//! the market rules for [`crate::book_file::clear_text`].

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::{MarketRules, Mechanism, PayAsBidPricing, Price, Tariffs, K};

/// `--mechanism`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MechanismArg {
    /// Uniform-price double auction (pay-as-clear).
    Uniform,
    /// Pay-as-bid matching.
    PayAsBid,
    /// Continuous double auction, orders replayed in sequence.
    Cda,
}

/// `--pay-as-bid-price`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PricingArg {
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
    pub mechanism: MechanismArg,
    /// Position of the uniform price in the clearing range, in [0, 1] (uniform only).
    #[arg(long)]
    pub k: Option<String>,
    /// Trade price of pay-as-bid pairs.
    #[arg(long, value_enum, default_value = "midpoint")]
    pub pay_as_bid_price: PricingArg,
    /// Utility feed-in tariff per kWh: lower bound for limit prices.
    #[arg(long, requires = "retail")]
    pub feed_in: Option<String>,
    /// Utility retail price per kWh: upper bound for limit prices.
    #[arg(long, requires = "feed_in")]
    pub retail: Option<String>,
    /// JSON array of orders; without it, a bundled example book of ten households.
    #[arg(long)]
    pub orders: Option<PathBuf>,
}

impl ClearArgs {
    /// The mechanism and market rules the flags describe.
    ///
    /// # Errors
    /// A bad `--k`, `--feed-in` or `--retail`, `--k` with a mechanism other than uniform, or a
    /// feed-in tariff above the retail price; the message names the flag.
    pub fn market(&self) -> Result<(Mechanism, MarketRules), String> {
        let args = self;
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

    /// What `voltmesh clear` prints for these flags: the report of [`crate::book_file`] for the
    /// book `text` (a JSON array of orders), or, without it, for the file `--orders` names (the
    /// bundled example book without that either).
    ///
    /// # Errors
    /// As [`ClearArgs::market`] (checked first), a file that cannot be read, or a malformed book
    /// ([`crate::book_file::BookFileError`]); each message names the flag, the file or the order.
    pub fn report(&self, text: Option<&str>) -> Result<String, String> {
        let (mechanism, rules) = self.market()?;
        let read;
        let text = match (text, &self.orders) {
            (Some(text), _) => text,
            (None, Some(path)) => {
                read = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                &read
            }
            (None, None) => crate::book_file::EXAMPLE_BOOK,
        };
        crate::book_file::clear_text(text, mechanism, rules).map_err(|e| e.to_string())
    }
}
