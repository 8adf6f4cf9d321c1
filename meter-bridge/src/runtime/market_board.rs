//! The market board: the latest payload of every market result topic
//! (`<prefix>/market/...`: the clearing summary and the price signal in its three formats), as
//! the bridge published it retained over MQTT, for the HTTP server ([`super::http`]).
//!
//! # Invariant
//! It holds one payload per market topic the bridge publishes (a fixed, small set), the one
//! published last; households' topics never enter it.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The board (module docs). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct MarketBoard(Arc<RwLock<BTreeMap<String, Arc<[u8]>>>>);

impl MarketBoard {
    /// Records `payload` as the latest of `topic` if `topic` is a market topic under `prefix`
    /// (`<prefix>/market/...`), keyed by what follows `<prefix>/`.
    pub fn post(&self, prefix: &str, topic: &str, payload: &[u8]) {
        let Some(key) = topic
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|key| key.starts_with("market/"))
        else {
            return;
        };
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), Arc::from(payload));
    }

    /// The latest payload of `key` (`market/...`), if one was published.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_market_topics_under_the_prefix_are_kept_the_latest_each() {
        let board = MarketBoard::default();
        board.post("vm", "vm/market/clearing", b"1");
        board.post("vm", "vm/market/clearing", b"2");
        board.post("vm", "vm/households/h1/fills", b"x");
        board.post("vm", "other/market/clearing", b"y");
        board.post("vm", "vmx/market/clearing", b"z");
        assert_eq!(board.get("market/clearing").as_deref(), Some(&b"2"[..]));
        assert_eq!(board.get("households/h1/fills"), None);
        assert_eq!(board.0.read().unwrap().len(), 1);
    }
}
