//! Where the market interval and tariffs come from: the neighborhood's `genesis.json`
//! (`node.genesis`), or the deprecated `[market]`/`[settlement]` tables (see the module docs of
//! [`super`], "# Genesis").

use std::path::Path;

use tracing::warn;
use voltmesh_engine::IntervalSpec;
use voltmesh_wire::delivery::DeliveryRules;
use voltmesh_wire::Genesis;

use super::{ConfigError, RawConfig, SettlementConfig};

impl RawConfig {
    /// The market interval, settlement values and delivery rules: genesis's if `node.genesis` is
    /// given (the deprecated tables must then agree with it), else the deprecated tables' or
    /// their defaults, with a warning (and the default delivery rules). Resolves `node.genesis`
    /// against `dir`.
    pub(super) fn market_and_settlement(
        &mut self,
        dir: &Path,
    ) -> Result<(IntervalSpec, SettlementConfig, DeliveryRules), ConfigError> {
        let Some(file) = &self.node.genesis else {
            let tables: Vec<&str> = [
                self.market.is_some().then_some("[market]"),
                self.settlement.is_some().then_some("[settlement]"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if tables.is_empty() {
                warn!(
                    "node.genesis is not set: using the default market interval and tariffs, \
                     which must match genesis; set node.genesis = \"genesis.json\""
                );
            } else {
                warn!(
                    tables = %tables.join(" and "),
                    "deprecated bridge config tables: set node.genesis = \"genesis.json\" \
                     and remove them (the bridge then reads them from genesis)"
                );
            }
            return Ok((
                self.market.unwrap_or(IntervalSpec::DEFAULT),
                self.settlement.unwrap_or_default(),
                DeliveryRules::default(),
            ));
        };
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Genesis {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let genesis = Genesis::from_json(&text).map_err(|e| ConfigError::Genesis {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if self.node.neighborhood != genesis.neighborhood {
            return Err(ConfigError::NeighborhoodDisagrees {
                path,
                config: self.node.neighborhood.clone(),
                genesis: genesis.neighborhood,
            });
        }
        let market = genesis.market.interval;
        let settlement = SettlementConfig::of(&genesis);
        let show_market = |m: IntervalSpec| {
            format!(
                "length_secs = {}, gate_closure_lead_secs = {}",
                m.length_secs(),
                m.gate_closure_lead_secs()
            )
        };
        let show_settlement = |s: SettlementConfig| {
            format!(
                "feed_in = {}, retail = {}, network_fee = {}",
                s.feed_in, s.retail, s.network_fee
            )
        };
        if let Some(own) = self.market.filter(|&m| m != market) {
            return Err(ConfigError::DisagreesWithGenesis {
                table: "market",
                path,
                config: show_market(own),
                genesis: show_market(market),
            });
        }
        if let Some(own) = self.settlement.filter(|&s| s != settlement) {
            return Err(ConfigError::DisagreesWithGenesis {
                table: "settlement",
                path,
                config: show_settlement(own),
                genesis: show_settlement(settlement),
            });
        }
        if self.market.is_some() || self.settlement.is_some() {
            warn!(
                genesis = %path.display(),
                "[market] and [settlement] are deprecated and repeat node.genesis; remove them"
            );
        }
        self.node.genesis = Some(path);
        Ok((market, settlement, genesis.deliveries))
    }
}
