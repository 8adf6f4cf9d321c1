//! Households that publish their own orders (`voltmesh sim --via-network`): each shown interval's
//! orders go to the bridge's household-orders topic
//! ([`orders_topic`]) as a
//! [`HouseholdOrder`], one message per household, while the interval is open.
//!
//! A household without an order in an interval turns its trading off for that interval (retained
//! `{"enabled": false}` on its preferences topic, [`PreferencesMessage`]), so the bridge does not
//! plan a forecast order for it; it turns trading back on (`{"enabled": true}`) for the next
//! interval it has an order in. Only changes are published; every household starts enabled (as
//! `bridge.toml` says).
//!
//! # Timing
//! Interval `i`'s orders are published one second after the previous interval starts: after the
//! previous interval's gate has closed (so the bridge plans them for interval `i`, its first open
//! interval) and well before the bridge plans interval `i` a little before its gate closure.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, QoS};
use voltmesh_engine::ParticipantId;
use voltmesh_meter_bridge::household::own_order::HouseholdOrder;
use voltmesh_meter_bridge::household::preferences::PreferencesMessage;
use voltmesh_meter_bridge::household::topic::{orders_topic, preferences_topic};

use crate::via_network::PlannedOrder;

/// What to publish and when.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Start of the first shown interval, Unix seconds.
    pub first_start: i64,
    /// Interval length, seconds.
    pub len_secs: i64,
    /// Gate-closure lead, seconds.
    pub lead_secs: i64,
    /// The orders of each shown interval, in order.
    pub intervals: Vec<Vec<PlannedOrder>>,
    /// The bridge's `topics.households_prefix`.
    pub prefix: String,
    /// Every household the bridge serves.
    pub households: Vec<ParticipantId>,
}

/// The retained preferences message that turns a household's trading on or off.
pub fn enabled_payload(enabled: bool) -> String {
    let message = PreferencesMessage {
        enabled: Some(enabled),
        ..PreferencesMessage::default()
    };
    serde_json::to_string(&message).unwrap_or_default()
}

/// The message a household publishes for one order of the interval starting at `start` (Unix
/// seconds); `None` if `start` is not a time.
pub fn payload(order: &PlannedOrder, start: i64) -> Option<String> {
    let message = HouseholdOrder {
        interval_start: DateTime::from_timestamp(start, 0)?,
        side: order.side,
        quantity_wh: order.quantity_wh,
        limit_price: order.limit_price,
    };
    serde_json::to_string(&message).ok()
}

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// Publishes `schedule` with `client`; returns the messages handed to the client. An interval
/// whose gate has closed before its turn is skipped with a warning (the check then reports it).
pub async fn publish(client: &AsyncClient, schedule: &Schedule) -> usize {
    let mut sent = 0;
    let mut enabled: BTreeMap<&ParticipantId, bool> =
        schedule.households.iter().map(|p| (p, true)).collect();
    for (i, orders) in schedule.intervals.iter().enumerate() {
        let start = schedule.first_start + schedule.len_secs * i as i64;
        let at_ms = (start - schedule.len_secs + 1) * 1000;
        let wait_ms = at_ms - now().timestamp_millis();
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms.unsigned_abs())).await;
        }
        if now().timestamp() >= start - schedule.lead_secs {
            tracing::warn!(
                interval = start,
                "gate closed before the households' orders were published"
            );
            continue;
        }
        for (participant, on) in &mut enabled {
            let wanted = orders.iter().any(|o| &o.participant == *participant);
            if *on == wanted {
                continue;
            }
            let topic = preferences_topic(&schedule.prefix, participant);
            match client
                .publish(topic, QoS::AtLeastOnce, true, enabled_payload(wanted))
                .await
            {
                Ok(()) => {
                    *on = wanted;
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(cause = %e, interval = start, participant = %participant, "household preferences not published")
                }
            }
        }
        for order in orders {
            let Some(message) = payload(order, start) else {
                tracing::warn!(interval = start, "not a time");
                continue;
            };
            match client
                .publish(
                    orders_topic(&schedule.prefix, &order.participant),
                    QoS::AtLeastOnce,
                    false,
                    message,
                )
                .await
            {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(cause = %e, interval = start, participant = %order.participant, "household order not published")
                }
            }
        }
        tracing::debug!(
            interval = start,
            orders = orders.len(),
            "households published their orders"
        );
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::Side;

    #[test]
    fn payload_names_the_interval_side_quantity_and_price() {
        let order = PlannedOrder {
            participant: "hh-03".into(),
            side: Side::Buy,
            quantity_wh: 420,
            limit_price: "0.2".parse().unwrap(),
        };
        let text = payload(&order, 1_800_000_010).unwrap();
        let back: HouseholdOrder = serde_json::from_str(&text).unwrap();
        assert_eq!(back.interval_start.timestamp(), 1_800_000_010);
        assert_eq!(back.side, Side::Buy);
        assert_eq!(back.quantity_wh, 420);
        assert_eq!(back.limit_price, order.limit_price);
        let off = PreferencesMessage::parse(enabled_payload(false).as_bytes()).unwrap();
        assert_eq!(off.enabled, Some(false));
        assert_eq!((off.buy_limit, off.sell_limit), (None, None));
    }
}
