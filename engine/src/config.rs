//! Market configuration: mechanism, tariffs and the admission rules every book applies.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::price::div_round_half_even;
use crate::{IntervalSpec, Order, Price, RejectReason, Wh};

/// The position of the uniform price inside the clearing range: `price = lo + k·(hi − lo)`.
///
/// Stored as parts per million, so `k` has at most six decimals and lies in `[0, 1]`. `k = 0` favours
/// buyers, `k = 1` sellers, `k = 1/2` (the default) splits the surplus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct K(u32);

impl K {
    const ONE_PPM: u32 = 1_000_000;
    /// `k = 1/2`.
    pub const HALF: K = K(Self::ONE_PPM / 2);

    /// `k` from parts per million.
    ///
    /// # Errors
    /// [`ConfigError::KOutOfRange`] above one million.
    pub fn from_ppm(ppm: u32) -> Result<K, ConfigError> {
        if ppm <= Self::ONE_PPM {
            Ok(K(ppm))
        } else {
            Err(ConfigError::KOutOfRange(Decimal::new(i64::from(ppm), 6)))
        }
    }

    /// `k` in parts per million.
    pub const fn ppm(self) -> u32 {
        self.0
    }

    /// `lo + k·(hi − lo)`, rounded half to even at the price scale. The result lies in `[lo, hi]`
    /// whenever `lo ≤ hi`.
    pub fn interpolate(self, lo: Price, hi: Price) -> Price {
        let span = i128::from(hi.micros()) - i128::from(lo.micros());
        let offset = div_round_half_even(span * i128::from(self.0), i128::from(Self::ONE_PPM));
        // |offset| ≤ |span| ≤ 2·MAX, and lo + offset lies between lo and hi, so it fits.
        Price::from_micros(lo.micros() + offset as i64).unwrap_or(lo)
    }
}

impl Default for K {
    fn default() -> Self {
        K::HALF
    }
}

impl FromStr for K {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<K, ConfigError> {
        let bad = || ConfigError::BadK(text.to_owned());
        let d = Decimal::from_str_exact(text.trim()).map_err(|_| bad())?;
        let normal = d.normalize();
        if normal.is_sign_negative() && !normal.is_zero() || normal > Decimal::ONE {
            return Err(ConfigError::KOutOfRange(d));
        }
        if normal.scale() > 6 {
            return Err(bad());
        }
        let ppm = normal.mantissa() * 10_i128.pow(6 - normal.scale());
        u32::try_from(ppm).map_err(|_| bad()).and_then(K::from_ppm)
    }
}

impl fmt::Display for K {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Decimal::new(i64::from(self.0), 6).normalize())
    }
}

impl Serialize for K {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for K {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The price of each pay-as-bid trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PayAsBidPricing {
    /// The midpoint of the bid's and the ask's limits (rounded half to even).
    #[default]
    Midpoint,
    /// The bid's limit: buyers pay what they bid.
    Bid,
}

/// How an interval's orders are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mechanism {
    /// Periodic uniform-price double auction (pay-as-clear).
    Uniform {
        /// Where the price sits inside the clearing range.
        #[serde(default)]
        k: K,
    },
    /// Periodic discriminatory matching: best bid with best ask, each pair at its own price.
    PayAsBid {
        /// The price of each pair.
        #[serde(default)]
        pricing: PayAsBidPricing,
    },
    /// Continuous double auction with price-time priority until gate closure.
    Continuous,
}

impl Mechanism {
    /// The mechanism's name as the command line and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::Uniform { .. } => "uniform",
            Mechanism::PayAsBid { .. } => "pay-as-bid",
            Mechanism::Continuous => "cda",
        }
    }
}

impl Default for Mechanism {
    fn default() -> Self {
        Mechanism::Uniform { k: K::HALF }
    }
}

/// The utility's prices that bound the local market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tariffs {
    /// What the utility pays a household for energy fed into the grid.
    pub feed_in: Price,
    /// What the utility charges a household for energy taken from the grid.
    pub retail: Price,
}

impl Tariffs {
    /// Bounds that admit every representable price (for auditing raw books).
    pub const UNBOUNDED: Tariffs = Tariffs {
        feed_in: Price::MIN,
        retail: Price::MAX,
    };

    /// Tariffs with `feed_in ≤ retail`.
    ///
    /// # Errors
    /// [`ConfigError::FeedInAboveRetail`] otherwise.
    pub fn new(feed_in: Price, retail: Price) -> Result<Tariffs, ConfigError> {
        if feed_in <= retail {
            Ok(Tariffs { feed_in, retail })
        } else {
            Err(ConfigError::FeedInAboveRetail { feed_in, retail })
        }
    }
}

/// What every book checks before it takes an order.
///
/// # Invariant
/// `tariffs.feed_in ≤ tariffs.retail` and `max_order_wh > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarketRules {
    /// Limits must lie in `[feed_in, retail]`.
    pub tariffs: Tariffs,
    /// The largest quantity one order may carry.
    pub max_order_wh: Wh,
}

impl MarketRules {
    /// Default per-order bound: 1 GWh, far beyond any household and still safe from overflow.
    pub const DEFAULT_MAX_ORDER_WH: Wh = 1_000_000_000;

    /// Rules that admit any price and the default quantity bound.
    pub const PERMISSIVE: MarketRules = MarketRules {
        tariffs: Tariffs::UNBOUNDED,
        max_order_wh: Self::DEFAULT_MAX_ORDER_WH,
    };

    /// Checks one order on its own (duplicates are the book's concern).
    ///
    /// # Errors
    /// The first rule the order breaks.
    pub fn admit(&self, order: &Order) -> Result<(), RejectReason> {
        if order.quantity_wh == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if order.quantity_wh > self.max_order_wh {
            return Err(RejectReason::QuantityTooLarge {
                quantity_wh: order.quantity_wh,
                max_wh: self.max_order_wh,
            });
        }
        if order.limit_price < self.tariffs.feed_in {
            return Err(RejectReason::BelowFeedIn {
                limit: order.limit_price,
                feed_in: self.tariffs.feed_in,
            });
        }
        if order.limit_price > self.tariffs.retail {
            return Err(RejectReason::AboveRetail {
                limit: order.limit_price,
                retail: self.tariffs.retail,
            });
        }
        Ok(())
    }
}

impl Default for MarketRules {
    fn default() -> Self {
        MarketRules::PERMISSIVE
    }
}

/// A neighborhood market's whole configuration, as genesis records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarketConfig {
    /// How each interval clears.
    pub mechanism: Mechanism,
    /// Tariff bounds and quantity bound.
    pub rules: MarketRules,
    /// Fee per kWh on locally traded energy, paid by the buyer to the network operator.
    pub network_fee: Price,
    /// Interval length and gate closure.
    pub interval: IntervalSpec,
    /// Per-participant and per-interval admission limits (absent in older genesis files: the
    /// defaults apply).
    #[serde(default)]
    pub admission: crate::AdmissionLimits,
}

impl MarketConfig {
    /// Checks the invariants of every part.
    ///
    /// # Errors
    /// The first inconsistency found.
    pub fn validate(self) -> Result<MarketConfig, ConfigError> {
        Tariffs::new(self.rules.tariffs.feed_in, self.rules.tariffs.retail)?;
        if self.rules.max_order_wh == 0 {
            return Err(ConfigError::ZeroMaxOrder);
        }
        if self.network_fee < Price::ZERO {
            return Err(ConfigError::NegativeNetworkFee(self.network_fee));
        }
        IntervalSpec::new(
            self.interval.length_secs(),
            self.interval.gate_closure_lead_secs(),
        )?;
        self.admission.validate()?;
        Ok(self)
    }
}

/// An inconsistent market configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `k` is not a decimal with at most six places.
    #[error("k must be a decimal in [0, 1] with at most 6 decimal places, got {0:?}")]
    BadK(String),
    /// `k` is outside `[0, 1]`.
    #[error("k must lie in [0, 1], got {0}")]
    KOutOfRange(Decimal),
    /// The feed-in tariff exceeds the retail price.
    #[error("feed-in tariff {feed_in} is above the retail price {retail}")]
    FeedInAboveRetail {
        /// Feed-in tariff.
        feed_in: Price,
        /// Retail price.
        retail: Price,
    },
    /// The per-order quantity bound is zero.
    #[error("the per-order maximum quantity must be positive")]
    ZeroMaxOrder,
    /// A negative network fee would pay buyers for trading locally.
    #[error("the network fee must not be negative, got {0}")]
    NegativeNetworkFee(Price),
    /// An admission limit is zero.
    #[error("the admission limit {0} must be positive")]
    ZeroAdmissionLimit(&'static str),
    /// The interval specification is invalid.
    #[error(transparent)]
    Interval(#[from] crate::IntervalError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn k_parses_and_interpolates() {
        assert_eq!("0.5".parse::<K>().unwrap(), K::HALF);
        assert_eq!("1".parse::<K>().unwrap().ppm(), 1_000_000);
        assert_eq!("0".parse::<K>().unwrap().ppm(), 0);
        assert!(matches!(
            "1.1".parse::<K>(),
            Err(ConfigError::KOutOfRange(_))
        ));
        assert!(matches!(
            "-0.1".parse::<K>(),
            Err(ConfigError::KOutOfRange(_))
        ));
        assert!(matches!(
            "0.1234567".parse::<K>(),
            Err(ConfigError::BadK(_))
        ));
        assert!(matches!("half".parse::<K>(), Err(ConfigError::BadK(_))));
        assert_eq!(K::HALF.interpolate(p("22"), p("25")), p("23.5"));
        let third: K = "0.333333".parse().unwrap();
        assert_eq!(third.interpolate(p("0"), p("0.000003")), p("0.000001"));
        assert_eq!(K::HALF.to_string(), "0.5");
    }

    #[test]
    fn admission_checks_each_rule() {
        let rules = MarketRules {
            tariffs: Tariffs::new(p("0.08"), p("0.30")).unwrap(),
            max_order_wh: 100,
        };
        let order = |q: u64, price: &str| Order {
            id: "o".into(),
            participant: "h".into(),
            side: crate::Side::Buy,
            quantity_wh: q,
            limit_price: p(price),
            seq: 0,
        };
        assert_eq!(rules.admit(&order(10, "0.2")), Ok(()));
        assert_eq!(rules.admit(&order(10, "0.08")), Ok(()));
        assert_eq!(rules.admit(&order(10, "0.30")), Ok(()));
        assert_eq!(
            rules.admit(&order(0, "0.2")),
            Err(RejectReason::ZeroQuantity)
        );
        assert!(matches!(
            rules.admit(&order(101, "0.2")),
            Err(RejectReason::QuantityTooLarge { .. })
        ));
        assert!(matches!(
            rules.admit(&order(1, "0.079999")),
            Err(RejectReason::BelowFeedIn { .. })
        ));
        assert!(matches!(
            rules.admit(&order(1, "0.300001")),
            Err(RejectReason::AboveRetail { .. })
        ));
        assert!(Tariffs::new(p("0.3"), p("0.1")).is_err());
    }
}
