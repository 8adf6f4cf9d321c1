//! Households: who they are, what their meters measured, and what they trade.
//!
//! All pure and deterministic (ordered maps, integer arithmetic, `now` passed in):
//! * [`registry`]: meters → participants, their limit prices and on/off;
//! * [`registers`]: validated cumulative registers and metered energy per interval;
//! * [`forecast`]: the next interval's net energy from the registers;
//! * [`plan`]: one deterministic, idempotent order per household and interval;
//! * [`own_order`] and [`preferences`]: households' own messages (their orders replace the
//!   forecast's; preferences replace the file's limits);
//! * [`topic`]: the whole MQTT topic tree between the bridge and households, inbound
//!   (`orders/set`, `preferences`) and outbound (`fills`, `settlement`, `market/clearing`), and
//!   the MQTT topic and filter syntax checks;
//! * [`home_assistant`]: Home Assistant discovery configs, the states they read and the
//!   commands of the household's controls.

pub mod forecast;
pub mod home_assistant;
pub mod own_order;
pub mod plan;
pub mod preferences;
pub mod price_signal;
pub mod registers;
pub mod registry;
pub mod topic;
