//! The measurement schema: the one place that names every measurement, tag and field Voltmesh
//! writes.
//!
//! Each measurement is a typed struct (its tags are [`TagValue`] types, its fields numbers) and a
//! [`MeasurementSpec`] generated from the same declaration, so the names the writer sends and the
//! names the documentation and the dashboard checks read can never drift apart. [`MEASUREMENTS`]
//! lists every spec; [`Point`] is the sum of all measurement structs, which is what
//! [`crate::MetricsHandle::record`] takes.
//!
//! # Invariants
//! * Tags are low-cardinality by type (see [`crate::tag`]); no measurement has an order or trade id.
//! * Fields are integers (`i64`) or floats (`f64`). An `Option` field that is `None`, or a float that
//!   is not finite, is left out of the point; a point left with no field is invalid.
//! * Energy is in Wh, power in W or kW, prices in currency units per kWh, money in currency units
//!   (converted exactly from the engine's fixed-point values, then to `f64` for display).
//!
//! # Counters
//! Fields named `*_total` are cumulative counters since the writing process started; dashboards take
//! their `difference()` or `derivative()`. A counter resets to zero when its process restarts.

use chrono::{DateTime, Utc};
use influxdb2::models::{DataPoint, FieldValue};
use thiserror::Error;
use voltmesh_engine::{Bill, Money, Price};

use crate::tag::{
    DecodeErrorKind, HouseholdId, MechanismTag, Neighborhood, NodeId, RejectionReason, Side,
    TagValue,
};

/// The unit of a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Watt-hours.
    WattHours,
    /// Watts.
    Watts,
    /// Kilowatts.
    Kilowatts,
    /// Currency units per kWh.
    CurrencyPerKwh,
    /// Currency units.
    Currency,
    /// A ratio between 0 and 1.
    Ratio,
    /// Per unit of nominal voltage.
    PerUnit,
    /// Percent.
    Percent,
    /// Milliseconds.
    Milliseconds,
    /// A count of things.
    Count,
}

impl Unit {
    /// The unit as the README's schema table writes it.
    pub const fn symbol(self) -> &'static str {
        match self {
            Unit::WattHours => "Wh",
            Unit::Watts => "W",
            Unit::Kilowatts => "kW",
            Unit::CurrencyPerKwh => "currency/kWh",
            Unit::Currency => "currency",
            Unit::Ratio => "ratio 0..1",
            Unit::PerUnit => "p.u.",
            Unit::Percent => "%",
            Unit::Milliseconds => "ms",
            Unit::Count => "count",
        }
    }
}

/// How a field's values travel in line protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A 64-bit signed integer (`123i`).
    Integer,
    /// A 64-bit float.
    Float,
}

/// One field of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field key.
    pub name: &'static str,
    /// Integer or float.
    pub kind: FieldKind,
    /// The unit.
    pub unit: Unit,
    /// True if the field may be absent from a point.
    pub optional: bool,
    /// What the field means.
    pub doc: &'static str,
}

/// One tag of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSpec {
    /// The tag key.
    pub name: &'static str,
    /// What the tag names.
    pub doc: &'static str,
}

/// One measurement: its name, tags and fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasurementSpec {
    /// The measurement name.
    pub name: &'static str,
    /// What one point means and when it is written.
    pub doc: &'static str,
    /// Its tags.
    pub tags: &'static [TagSpec],
    /// Its fields.
    pub fields: &'static [FieldSpec],
}

impl MeasurementSpec {
    /// The field called `name`, if the measurement has one.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// True if the measurement has a tag called `name`.
    pub fn has_tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t.name == name)
    }
}

/// The measurement called `name`, if the schema defines one.
pub fn measurement(name: &str) -> Option<&'static MeasurementSpec> {
    MEASUREMENTS.iter().find(|m| m.name == name)
}

/// Why a point cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PointError {
    /// The timestamp does not fit in nanoseconds since the epoch (years 1677–2262).
    #[error("{measurement}: timestamp {time} is outside the range line protocol can carry")]
    TimestampOutOfRange {
        /// The measurement.
        measurement: &'static str,
        /// The offending time.
        time: DateTime<Utc>,
    },
    /// Every field was absent or not finite.
    #[error("{measurement}: no field has a value")]
    NoFields {
        /// The measurement.
        measurement: &'static str,
    },
}

mod sealed {
    pub trait Sealed {}
}

/// A type a field may have (sealed: `i64`, `f64` and their `Option`s).
pub trait FieldType: sealed::Sealed {
    /// How the values travel.
    const KIND: FieldKind;
    /// True for `Option`s.
    const OPTIONAL: bool;
    /// The value to write, or `None` to leave the field out (absent, or a float that is not finite).
    fn field_value(&self) -> Option<FieldValue>;
}

impl sealed::Sealed for i64 {}
impl FieldType for i64 {
    const KIND: FieldKind = FieldKind::Integer;
    const OPTIONAL: bool = false;
    fn field_value(&self) -> Option<FieldValue> {
        Some(FieldValue::I64(*self))
    }
}

impl sealed::Sealed for f64 {}
impl FieldType for f64 {
    const KIND: FieldKind = FieldKind::Float;
    const OPTIONAL: bool = false;
    fn field_value(&self) -> Option<FieldValue> {
        self.is_finite().then_some(FieldValue::F64(*self))
    }
}

impl<T: FieldType> sealed::Sealed for Option<T> {}
impl<T: FieldType> FieldType for Option<T> {
    const KIND: FieldKind = T::KIND;
    const OPTIONAL: bool = true;
    fn field_value(&self) -> Option<FieldValue> {
        self.as_ref().and_then(FieldType::field_value)
    }
}

/// A price per kWh in currency units, for display (exact to the micro-unit up to 2⁵³ micros).
#[allow(clippy::cast_precision_loss)]
pub fn price_value(price: Price) -> f64 {
    price.micros() as f64 / 1e6
}

/// An amount in currency units, for display (exact to the nano-unit up to 2⁵³ nanos).
#[allow(clippy::cast_precision_loss)]
pub fn money_value(money: Money) -> f64 {
    money.nanos() as f64 / 1e9
}

/// Watt-hours as a field value, saturating at `i64::MAX` (never reached by a meter).
pub fn wh_value(wh: u64) -> i64 {
    i64::try_from(wh).unwrap_or(i64::MAX)
}

macro_rules! tag_doc {
    (neighborhood) => {
        "neighborhood id"
    };
    (node) => {
        "node or bridge instance id"
    };
    (household) => {
        "household pseudonym (participant id)"
    };
    (side) => {
        "`buy` or `sell`"
    };
    (mechanism) => {
        "`uniform`, `pay-as-bid` or `cda`"
    };
    (reason) => {
        "rejection reason (closed list)"
    };
    (kind) => {
        "decode error kind (closed list)"
    };
}

macro_rules! measurements {
    ($(
        $(#[$attr:meta])*
        $name:ident = $mname:literal, $mdoc:literal {
            tags { $( $tag:ident : $tty:ty ),* $(,)? }
            fields { $( $field:ident : $fty:ty => $unit:ident, $fdoc:literal; )+ }
        }
    )+) => {
        $(
            #[doc = $mdoc]
            $(#[$attr])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $name {
                /// When it happened (the interval start for per-interval measurements).
                pub time: DateTime<Utc>,
                $(
                    #[doc = tag_doc!($tag)]
                    pub $tag: $tty,
                )*
                $(
                    #[doc = $fdoc]
                    pub $field: $fty,
                )+
            }

            impl $name {
                /// The measurement's schema.
                pub const SPEC: MeasurementSpec = MeasurementSpec {
                    name: $mname,
                    doc: $mdoc,
                    tags: &[$( TagSpec { name: stringify!($tag), doc: tag_doc!($tag) } ),*],
                    fields: &[$(
                        FieldSpec {
                            name: stringify!($field),
                            kind: <$fty as FieldType>::KIND,
                            unit: Unit::$unit,
                            optional: <$fty as FieldType>::OPTIONAL,
                            doc: $fdoc,
                        }
                    ),+],
                };

                /// The point in the InfluxDB client's form.
                ///
                /// # Errors
                /// [`PointError`] if the time is out of range or no field has a value.
                pub fn to_data_point(&self) -> Result<DataPoint, PointError> {
                    let time = self.time.timestamp_nanos_opt().ok_or(
                        PointError::TimestampOutOfRange { measurement: $mname, time: self.time },
                    )?;
                    #[allow(unused_mut)]
                    let mut builder = DataPoint::builder($mname).timestamp(time);
                    $( builder = builder.tag(stringify!($tag), TagValue::tag_str(&self.$tag)); )*
                    let mut any = false;
                    $(
                        if let Some(value) = FieldType::field_value(&self.$field) {
                            builder = builder.field(stringify!($field), value);
                            any = true;
                        }
                    )+
                    if !any {
                        return Err(PointError::NoFields { measurement: $mname });
                    }
                    builder.build().map_err(|_| PointError::NoFields { measurement: $mname })
                }
            }

            impl From<$name> for Point {
                fn from(point: $name) -> Self {
                    Point::$name(point)
                }
            }
        )+

        /// Any measurement's point: what the writer queues.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Point {
            $(
                #[doc = $mdoc]
                $name($name),
            )+
        }

        impl Point {
            /// The point's measurement schema.
            pub fn spec(&self) -> &'static MeasurementSpec {
                match self {
                    $( Point::$name(_) => &$name::SPEC, )+
                }
            }

            /// The point in the InfluxDB client's form.
            ///
            /// # Errors
            /// [`PointError`] if the time is out of range or no field has a value.
            pub fn to_data_point(&self) -> Result<DataPoint, PointError> {
                match self {
                    $( Point::$name(p) => p.to_data_point(), )+
                }
            }

            /// The point's tags as `(key, value)`, in schema order.
            pub fn tags(&self) -> Vec<(&'static str, &str)> {
                match self {
                    $( Point::$name(_p) => vec![$( (stringify!($tag), TagValue::tag_str(&_p.$tag)) ),*], )+
                }
            }
        }

        /// Every measurement Voltmesh writes.
        pub const MEASUREMENTS: &[MeasurementSpec] = &[$( $name::SPEC ),+];
    };
}

measurements! {
    MeterReading = "meter_reading",
        "A meter's cumulative registers as the bridge decoded them; one point per accepted reading." {
        tags { neighborhood: Neighborhood, household: HouseholdId }
        fields {
            import_wh: i64 => WattHours, "cumulative import register (energy taken from the grid)";
            export_wh: i64 => WattHours, "cumulative export register (energy fed into the grid)";
            power_w: Option<f64> => Watts, "instantaneous net power, import positive, if the meter reports it";
        }
    }

    OrderPoint = "order",
        "One order accepted into an interval's book; time = submission time." {
        tags { neighborhood: Neighborhood, household: HouseholdId, side: Side, mechanism: MechanismTag }
        fields {
            quantity_wh: i64 => WattHours, "energy offered or wanted";
            limit_price: f64 => CurrencyPerKwh, "limit price";
        }
    }

    Clearing = "clearing",
        "One cleared market interval; time = interval start." {
        tags { neighborhood: Neighborhood, mechanism: MechanismTag }
        fields {
            price: Option<f64> => CurrencyPerKwh, "uniform clearing price (absent without volume or for pay-as-bid/cda)";
            price_lo: Option<f64> => CurrencyPerKwh, "lower end of the clearing price range";
            price_hi: Option<f64> => CurrencyPerKwh, "upper end of the clearing price range";
            volume_wh: i64 => WattHours, "energy traded locally";
            bid_wh: i64 => WattHours, "energy wanted by all bids";
            ask_wh: i64 => WattHours, "energy offered by all asks";
            local_share: Option<f64> => Ratio, "volume_wh / bid_wh: share of the bid demand served locally (absent without bids)";
            orders: i64 => Count, "orders in the book";
            trades: i64 => Count, "trades";
            feed_in: f64 => CurrencyPerKwh, "utility feed-in tariff";
            retail: f64 => CurrencyPerKwh, "utility retail price";
        }
    }

    TradePoint = "trade",
        "A household's fills on one side in one interval (all its trades summed); time = interval start." {
        tags { neighborhood: Neighborhood, household: HouseholdId, side: Side, mechanism: MechanismTag }
        fields {
            quantity_wh: i64 => WattHours, "energy bought (side=buy) or sold (side=sell)";
            amount: f64 => Currency, "money paid (buy) or received (sell), before network fees";
            trades: i64 => Count, "number of fills";
        }
    }

    SettlementPoint = "settlement",
        "A household's bill for one interval (the engine's `Bill`); time = interval start." {
        tags { neighborhood: Neighborhood, household: HouseholdId }
        fields {
            bought_wh: i64 => WattHours, "energy bought locally";
            sold_wh: i64 => WattHours, "energy sold locally";
            metered_net_export_wh: i64 => WattHours, "metered export minus import";
            from_utility_wh: i64 => WattHours, "energy the utility supplied beyond the contracts";
            to_utility_wh: i64 => WattHours, "energy the utility took beyond the contracts";
            local_energy: f64 => Currency, "paid for local purchases minus received for local sales";
            network_fees: f64 => Currency, "network fees on local purchases";
            utility: f64 => Currency, "paid to the utility at retail minus received at feed-in";
            total: f64 => Currency, "what the household pays for the interval (negative: receives)";
        }
    }

    Balance = "balance",
        "A household's running totals since the ledger began; written after each settlement." {
        tags { neighborhood: Neighborhood, household: HouseholdId }
        fields {
            amount_total: f64 => Currency, "sum of settlement totals (positive: paid)";
            bought_wh_total: i64 => WattHours, "energy bought locally";
            sold_wh_total: i64 => WattHours, "energy sold locally";
        }
    }

    ConsensusHealth = "consensus",
        "A node's view of consensus, written periodically and on each commit." {
        tags { neighborhood: Neighborhood, node: NodeId }
        fields {
            height: i64 => Count, "committed block height";
            view: i64 => Count, "current view number";
            commit_latency_ms: Option<f64> => Milliseconds, "proposal to commit of the last committed block";
            peers: i64 => Count, "connected validator peers";
            pending_orders: i64 => Count, "orders waiting for a block";
        }
    }

    ConsensusRejection = "consensus_rejection",
        "A node's count of refused orders or blocks for one reason." {
        tags { neighborhood: Neighborhood, node: NodeId, reason: RejectionReason }
        fields {
            rejected_total: i64 => Count, "refusals for this reason (counter)";
        }
    }

    BridgeHealth = "bridge",
        "A meter bridge's health, written periodically." {
        tags { neighborhood: Neighborhood, node: NodeId }
        fields {
            readings_total: i64 => Count, "readings accepted (counter)";
            decode_errors_total: i64 => Count, "messages that did not decode (counter)";
            orders_total: i64 => Count, "orders the node took (counter)";
            orders_rejected_total: i64 => Count, "orders the node refused for good (counter)";
            dead_letters_total: i64 => Count, "messages sent to the dead-letter topic (counter)";
            queue_depth: i64 => Count, "messages received from the broker, not yet acknowledged";
        }
    }

    BridgeDecodeError = "bridge_decode_error",
        "A meter bridge's count of unusable messages of one kind." {
        tags { neighborhood: Neighborhood, node: NodeId, kind: DecodeErrorKind }
        fields {
            errors_total: i64 => Count, "messages of this kind (counter)";
        }
    }

    GridState = "grid",
        "One interval's power flow from the simulator; time = interval start." {
        tags { neighborhood: Neighborhood }
        fields {
            voltage_min_pu: f64 => PerUnit, "lowest bus voltage";
            voltage_max_pu: f64 => PerUnit, "highest bus voltage";
            line_loading_max_pct: f64 => Percent, "highest line loading";
            trafo_loading_max_pct: f64 => Percent, "highest transformer loading";
            ext_grid_kw: f64 => Kilowatts, "power drawn from the upstream grid (negative: export)";
            undervoltage_buses: i64 => Count, "buses below the voltage band";
            overvoltage_buses: i64 => Count, "buses above the voltage band";
            overloaded_lines: i64 => Count, "lines above their loading limit";
            overloaded_trafos: i64 => Count, "transformers above their loading limit";
        }
    }
}

/// The schema as Markdown tables, one per measurement (the README embeds this text verbatim and
/// a test keeps the two identical).
pub fn markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for m in MEASUREMENTS {
        let tags: Vec<String> = m.tags.iter().map(|t| format!("`{}`", t.name)).collect();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "### `{}`\n\n{}\n\nTags: {}.\n\n| field | type | unit | meaning |\n|---|---|---|---|\n",
            m.name,
            m.doc,
            tags.join(", ")
        );
        for f in m.fields {
            let kind = match f.kind {
                FieldKind::Integer => "integer",
                FieldKind::Float => "float",
            };
            let optional = if f.optional { ", optional" } else { "" };
            let _ = writeln!(
                out,
                "| `{}` | {kind}{optional} | {} | {} |",
                f.name,
                f.unit.symbol(),
                f.doc
            );
        }
        out.push('\n');
    }
    out
}

impl SettlementPoint {
    /// The point for one of the engine's bills.
    pub fn from_bill(
        time: DateTime<Utc>,
        neighborhood: Neighborhood,
        household: HouseholdId,
        bill: &Bill,
    ) -> Self {
        SettlementPoint {
            time,
            neighborhood,
            household,
            bought_wh: wh_value(bill.bought_wh),
            sold_wh: wh_value(bill.sold_wh),
            metered_net_export_wh: bill.metered_net_export_wh,
            from_utility_wh: wh_value(bill.from_utility_wh),
            to_utility_wh: wh_value(bill.to_utility_wh),
            local_energy: money_value(bill.local_energy),
            network_fees: money_value(bill.network_fees),
            utility: money_value(bill.utility),
            total: money_value(bill.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use influxdb2::models::WriteDataPoint;

    use super::*;

    fn line(point: &Point) -> String {
        let mut out = Vec::new();
        point
            .to_data_point()
            .expect("valid point")
            .write_data_point_to(&mut out)
            .expect("write to a Vec");
        String::from_utf8(out).expect("line protocol is UTF-8")
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("in range")
    }

    fn clearing(price: Option<f64>) -> Clearing {
        Clearing {
            time: t0(),
            neighborhood: Neighborhood::new("nb1").expect("id"),
            mechanism: MechanismTag::Uniform,
            price,
            price_lo: None,
            price_hi: None,
            volume_wh: 10,
            bid_wh: 20,
            ask_wh: 10,
            local_share: Some(0.5),
            orders: 3,
            trades: 1,
            feed_in: 0.08,
            retail: 0.3,
        }
    }

    #[test]
    fn names_are_unique_and_plain() {
        let mut names: Vec<&str> = MEASUREMENTS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MEASUREMENTS.len());
        for m in MEASUREMENTS {
            let mut keys: Vec<&str> = m.tags.iter().map(|t| t.name).collect();
            keys.extend(m.fields.iter().map(|f| f.name));
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), n, "{}: a tag and a field share a name", m.name);
            for key in keys.iter().chain([&m.name]) {
                assert!(
                    key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{key} is not snake_case"
                );
            }
        }
    }

    #[test]
    fn no_tag_names_an_order_or_trade_id() {
        let allowed = [
            "neighborhood",
            "node",
            "household",
            "side",
            "mechanism",
            "reason",
            "kind",
        ];
        for m in MEASUREMENTS {
            for t in m.tags {
                assert!(allowed.contains(&t.name), "{}: tag {}", m.name, t.name);
            }
        }
    }

    #[test]
    fn line_protocol_uses_the_spec_names_and_skips_absent_fields() {
        let text = line(&clearing(Some(0.25)).into());
        assert!(
            text.starts_with("clearing,mechanism=uniform,neighborhood=nb1 "),
            "{text}"
        );
        assert!(text.contains(",price=0.25,"), "{text}");
        assert!(text.contains("volume_wh=10i"), "{text}");
        assert!(!text.contains("price_lo"), "{text}");
        assert!(text.trim_end().ends_with(" 1800000000000000000"), "{text}");

        let no_price = line(&clearing(Some(f64::NAN)).into());
        assert!(
            !no_price.contains(" price=") && !no_price.contains(",price="),
            "{no_price}"
        );
    }

    #[test]
    fn non_finite_optional_fields_are_left_out_and_far_times_are_invalid() {
        let reading = MeterReading {
            time: t0(),
            neighborhood: Neighborhood::new("nb1").expect("id"),
            household: HouseholdId::new("h1").expect("id"),
            import_wh: 7,
            export_wh: 0,
            power_w: Some(f64::INFINITY),
        };
        let text = line(&reading.into());
        assert!(
            text.contains("import_wh=7i") && !text.contains("power_w"),
            "{text}"
        );

        let rejection = ConsensusRejection {
            time: DateTime::<Utc>::MAX_UTC,
            neighborhood: Neighborhood::new("nb1").expect("id"),
            node: NodeId::new("n1").expect("id"),
            reason: RejectionReason::BadSignature,
            rejected_total: 1,
        };
        assert!(matches!(
            Point::from(rejection).to_data_point(),
            Err(PointError::TimestampOutOfRange { .. })
        ));
    }

    #[test]
    fn settlement_from_bill_converts_exactly() {
        let bill = Bill {
            participant: "h1".into(),
            bought_wh: 1_500,
            sold_wh: 0,
            metered_net_export_wh: -1_700,
            from_utility_wh: 200,
            to_utility_wh: 0,
            local_energy: Money::of(1_500, "0.2".parse().expect("price")),
            network_fees: Money::ZERO,
            utility: Money::of(200, "0.3".parse().expect("price")),
            total: Money::of(1_500, "0.2".parse().expect("price"))
                + Money::of(200, "0.3".parse().expect("price")),
        };
        let p = SettlementPoint::from_bill(
            t0(),
            Neighborhood::new("nb1").expect("id"),
            HouseholdId::try_from(&bill.participant).expect("id"),
            &bill,
        );
        assert_eq!(p.local_energy, 0.3);
        assert_eq!(p.utility, 0.06);
        assert_eq!(p.total, 0.36);
        assert_eq!(p.metered_net_export_wh, -1_700);
        assert_eq!(
            Point::from(p).tags(),
            vec![("neighborhood", "nb1"), ("household", "h1")]
        );
    }
}
