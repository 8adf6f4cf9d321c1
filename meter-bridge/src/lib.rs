//! Voltmesh meter bridge: decodes smart-meter payloads that arrive over MQTT, forecasts each
//! household's next interval and turns it into signed orders.

pub use voltmesh_engine as engine;
