//! What the ledger says about the community, as the bridge needs it: the market rules of each
//! interval (tariffs, quantity bound, network fee) and who may trade with which key.
//!
//! The node serves the community at `GET /v1/governance`
//! ([`voltmesh_wire::api::CommunityView`]); [`Community::from_view`] keeps the part the bridge
//! uses. Before the first answer the bridge knows only genesis's rules
//! ([`Community::genesis`]) and no member list: every configured household is then planned, as
//! before governance existed. Pure: no I/O, no clock (the planner fetches, see
//! [`crate::runtime::planner`]).
//!
//! # Rules of an interval
//! The rules of the interval starting at `s` are those of the last schedule entry whose
//! `from_interval <= s`, else the genesis entry, with the tariffs a supplier published for `s`
//! if any ([`Community::rules_for`]): the ledger's own choice (`consensus/src/ledger/community.rs`,
//! `rules_for`).
//!
//! # Standing of a household
//! A household may trade in the interval starting at `s` ([`Standing::Allowed`]) if the ledger
//! lists its participant, the participant's `removed_from` is unset or later than `s`, and the
//! bridge's key is among its keys: the ledger's own check (`check_signer`), so the bridge never
//! sends an order the ledger refuses as `unknown_participant`, `participant_removed` or
//! `key_not_allowed`. [`Standings`] remembers each household's last standing so that a change
//! is logged once, not once per interval.

use std::collections::BTreeMap;
use std::fmt;

use voltmesh_engine::{Mechanism, Order, ParticipantId, Price, Tariffs, Wh};
use voltmesh_wire::api::CommunityView;
use voltmesh_wire::governance::{Member, Rules};
use voltmesh_wire::PublicKey;

/// The market rules of one interval, as the bridge uses them.
///
/// # Invariant
/// `tariffs.feed_in <= tariffs.retail` and `max_order_wh > 0` (as [`voltmesh_engine::MarketRules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalRules {
    /// Limit prices must lie in `[feed_in, retail]`; unmatched energy settles at them.
    pub tariffs: Tariffs,
    /// Fee per locally traded kWh, paid by the buyer.
    pub network_fee: Price,
    /// The largest quantity one order may carry.
    pub max_order_wh: Wh,
    /// How the interval clears (for the indicative prices of
    /// [`crate::household::price_signal`]).
    pub mechanism: Mechanism,
}

impl IntervalRules {
    /// The part of the ledger's [`Rules`] the bridge uses.
    pub fn of(rules: &Rules) -> IntervalRules {
        IntervalRules {
            tariffs: rules.rules.tariffs,
            network_fee: rules.network_fee,
            max_order_wh: rules.rules.max_order_wh,
            mechanism: rules.mechanism,
        }
    }

    /// `order` within these rules: its limit price clamped into the tariffs (a seller never gets
    /// less than the feed-in tariff nor a buyer pays more than retail on the grid, so the clamped
    /// limit is no worse for the household), its quantity capped at `max_order_wh`.
    #[must_use]
    pub fn bound(&self, mut order: Order) -> Order {
        let Tariffs { feed_in, retail } = self.tariffs;
        order.limit_price = order.limit_price.clamp(feed_in, retail.max(feed_in));
        order.quantity_wh = order.quantity_wh.min(self.max_order_wh.max(1));
        order
    }

    /// Whether `order` already lies within these rules.
    pub fn admits(&self, order: &Order) -> bool {
        self.bound(order.clone()) == *order
    }
}

/// Why a [`CommunityView`] was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// The node serves another neighborhood.
    #[error("the node serves neighborhood {got:?}, not {expected:?}")]
    OtherNeighborhood {
        /// `node.neighborhood`.
        expected: String,
        /// The node's.
        got: String,
    },
    /// No rules at all.
    #[error("the node's community lists no market rules")]
    NoRules,
}

/// Whether a household may trade in an interval (module docs, "Standing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Its orders go to the node.
    Allowed,
    /// The ledger does not list the participant (not admitted yet, or never).
    NotAMember,
    /// The participant left the community from this interval (Unix seconds) on.
    Removed {
        /// Its `removed_from`.
        from_interval: i64,
    },
    /// The bridge's key may not sign for the participant.
    KeyNotAllowed,
}

impl Standing {
    /// A stable name for logs (the ledger's refusal kind it avoids; `allowed` if none).
    pub fn kind(self) -> &'static str {
        match self {
            Standing::Allowed => "allowed",
            Standing::NotAMember => "unknown_participant",
            Standing::Removed { .. } => "participant_removed",
            Standing::KeyNotAllowed => "key_not_allowed",
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Standing::Allowed => f.write_str("may trade"),
            Standing::NotAMember => f.write_str("is not a member of the community (yet)"),
            Standing::Removed { from_interval } => {
                write!(f, "left the community from interval {from_interval} on")
            }
            Standing::KeyNotAllowed => f.write_str("does not allow the bridge's key"),
        }
    }
}

/// The community as the bridge last knew it (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    /// Rules since genesis.
    base: IntervalRules,
    /// `from_interval` → rules from then on.
    schedule: BTreeMap<i64, IntervalRules>,
    /// Per-interval tariffs the community's supplier published (they replace the schedule's
    /// tariffs for their interval).
    prices: BTreeMap<i64, voltmesh_engine::Tariffs>,
    /// Every participant the ledger lists, removed ones included; `None` until a node answered.
    members: Option<BTreeMap<ParticipantId, Member>>,
    /// The committed height the view was at (`None`: genesis only).
    height: Option<u64>,
}

impl Community {
    /// Only genesis's rules (`node.genesis`, or the deprecated `[settlement]`), no member list.
    pub fn genesis(rules: IntervalRules) -> Community {
        Community {
            base: rules,
            schedule: BTreeMap::new(),
            prices: BTreeMap::new(),
            members: None,
            height: None,
        }
    }

    /// The community a node answered, for `neighborhood`. A schedule without a genesis entry
    /// (`from_interval: None`) applies its earliest entry before it as well.
    ///
    /// # Errors
    /// [`CommunityError`] if the view is another neighborhood's or lists no rules.
    pub fn from_view(
        view: &CommunityView,
        neighborhood: &str,
    ) -> Result<Community, CommunityError> {
        if view.neighborhood != neighborhood {
            return Err(CommunityError::OtherNeighborhood {
                expected: neighborhood.to_owned(),
                got: view.neighborhood.clone(),
            });
        }
        let mut base = None;
        let mut schedule = BTreeMap::new();
        for entry in &view.rules {
            let rules = IntervalRules::of(&entry.rules);
            match entry.from_interval {
                None => base = Some(rules),
                Some(from) => {
                    schedule.insert(from, rules);
                }
            }
        }
        let base = base
            .or_else(|| schedule.values().next().copied())
            .ok_or(CommunityError::NoRules)?;
        Ok(Community {
            base,
            schedule,
            prices: view.prices.clone(),
            members: Some(view.participants.clone()),
            height: Some(view.height),
        })
    }

    /// The rules of the interval starting at `interval_start` (module docs), with the
    /// interval's published tariffs if any.
    pub fn rules_for(&self, interval_start: i64) -> IntervalRules {
        let mut rules = self
            .schedule
            .range(..=interval_start)
            .next_back()
            .map_or(self.base, |(_, rules)| *rules);
        if let Some(&tariffs) = self.prices.get(&interval_start) {
            rules.tariffs = tariffs;
        }
        rules
    }

    /// Whether `participant` may trade in the interval starting at `interval_start` with orders
    /// signed by `key` (module docs); [`Standing::Allowed`] while no member list is known.
    pub fn standing(
        &self,
        participant: &ParticipantId,
        key: &PublicKey,
        interval_start: i64,
    ) -> Standing {
        let Some(members) = &self.members else {
            return Standing::Allowed;
        };
        let Some(member) = members.get(participant) else {
            return Standing::NotAMember;
        };
        if let Some(from_interval) = member.removed_from.filter(|&f| interval_start >= f) {
            return Standing::Removed { from_interval };
        }
        if !member.keys.contains(key) {
            return Standing::KeyNotAllowed;
        }
        Standing::Allowed
    }

    /// The committed height of the node's answer, `None` for genesis only.
    pub fn height(&self) -> Option<u64> {
        self.height
    }

    /// Whether a node's member list is known.
    pub fn knows_members(&self) -> bool {
        self.members.is_some()
    }
}

/// A household's standing changed (what [`Standings::note`] reports, to be logged once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingChange {
    /// The household.
    pub participant: ParticipantId,
    /// Its standing before (`None`: first seen).
    pub before: Option<Standing>,
    /// Its standing now.
    pub now: Standing,
}

/// Each household's last standing, so that changes are reported once.
///
/// # Invariant
/// Holds only households passed to the last [`Standings::retain`] (or noted since).
#[derive(Debug, Clone, Default)]
pub struct Standings {
    last: BTreeMap<ParticipantId, Standing>,
}

impl Standings {
    /// Records `participant`'s standing; the change if it differs from the last one recorded. A
    /// household first seen [`Standing::Allowed`] is no change (nothing to report).
    pub fn note(&mut self, participant: &ParticipantId, now: Standing) -> Option<StandingChange> {
        let before = self.last.insert(participant.clone(), now);
        match before {
            Some(b) if b == now => None,
            None if now == Standing::Allowed => None,
            _ => Some(StandingChange {
                participant: participant.clone(),
                before,
                now,
            }),
        }
    }

    /// Forgets households for which `keep` is false (no longer configured): configured again,
    /// they are reported afresh.
    pub fn retain(&mut self, mut keep: impl FnMut(&ParticipantId) -> bool) {
        self.last.retain(|p, _| keep(p));
    }
}

/// The orders of `orders` that may go to the node for the interval starting at
/// `interval_start`, each bound by its rules ([`IntervalRules::bound`]), and the standings that
/// changed. `households` are every configured household (so a change is noticed whether or not
/// the household has an order this interval); orders of households not allowed are left out.
pub fn admit(
    orders: Vec<Order>,
    households: impl IntoIterator<Item = ParticipantId>,
    community: &Community,
    key: &PublicKey,
    interval_start: i64,
    standings: &mut Standings,
) -> (Vec<Order>, Vec<StandingChange>) {
    let mut allowed = BTreeMap::new();
    let mut changes = Vec::new();
    for participant in households {
        let standing = community.standing(&participant, key, interval_start);
        changes.extend(standings.note(&participant, standing));
        allowed.insert(participant, standing == Standing::Allowed);
    }
    standings.retain(|p| allowed.contains_key(p));
    let rules = community.rules_for(interval_start);
    let orders = orders
        .into_iter()
        .filter(|o| allowed.get(&o.participant).copied().unwrap_or(false))
        .map(|o| rules.bound(o))
        .collect();
    (orders, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltmesh_engine::Side;
    use voltmesh_engine::{AdmissionLimits, MarketRules, Mechanism, K};
    use voltmesh_wire::api::ScheduledRules;
    use voltmesh_wire::governance::{Policies, Policy};

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    fn rules(feed_in: &str, retail: &str, fee: &str) -> Rules {
        Rules {
            mechanism: Mechanism::Uniform { k: K::HALF },
            rules: MarketRules {
                tariffs: Tariffs::new(p(feed_in), p(retail)).unwrap(),
                max_order_wh: 500,
            },
            network_fee: p(fee),
            admission: AdmissionLimits::default(),
        }
    }

    fn key(n: u8) -> PublicKey {
        PublicKey(
            ed25519_dalek::SigningKey::from_bytes(&[n; 32])
                .verifying_key()
                .to_bytes(),
        )
    }

    fn view(
        schedule: Vec<(Option<i64>, Rules)>,
        members: &[(&str, Vec<PublicKey>, Option<i64>)],
    ) -> CommunityView {
        let policy = Policy::quorum_of(vec![key(90)]);
        CommunityView {
            neighborhood: "nb".into(),
            currency: voltmesh_wire::Currency::EUR,
            height: 7,
            epoch: 0,
            validators: Vec::new(),
            policies: Policies {
                members: policy.clone(),
                rules: policy,
                prices: None,
            },
            prices: BTreeMap::new(),
            rules: schedule
                .into_iter()
                .map(|(from_interval, rules)| ScheduledRules {
                    from_interval,
                    rules,
                })
                .collect(),
            participants: members
                .iter()
                .map(|(id, keys, removed_from)| {
                    (
                        ParticipantId::from(*id),
                        Member {
                            keys: keys.clone(),
                            removed_from: *removed_from,
                        },
                    )
                })
                .collect(),
            pending: Vec::new(),
            actions_applied: 0,
            held: Vec::new(),
        }
    }

    #[test]
    fn an_interval_gets_the_last_entry_starting_at_or_before_it() {
        let v = view(
            vec![
                (None, rules("0.08", "0.30", "0.01")),
                (Some(1_800), rules("0.10", "0.28", "0.02")),
                (Some(3_600), rules("0.12", "0.25", "0.00")),
            ],
            &[],
        );
        let c = Community::from_view(&v, "nb").unwrap();
        let fee = |s| c.rules_for(s).network_fee.to_string();
        assert_eq!(fee(0), "0.010000", "genesis before the first change");
        assert_eq!(fee(900), "0.010000");
        assert_eq!(fee(1_800), "0.020000", "from its own interval on");
        assert_eq!(fee(2_700), "0.020000");
        assert_eq!(fee(3_600), "0.000000");
        assert_eq!(fee(99_000), "0.000000", "until a later change");
        assert_eq!(c.rules_for(1_800).tariffs.feed_in, p("0.10"));
        assert_eq!(c.height(), Some(7));

        // A supplier's published tariffs replace the schedule's for their interval only.
        let mut priced = v;
        priced.prices.insert(
            2_700,
            voltmesh_engine::Tariffs::new(p("0.15"), p("0.20")).unwrap(),
        );
        let c = Community::from_view(&priced, "nb").unwrap();
        assert_eq!(c.rules_for(2_700).tariffs.retail, p("0.20"));
        assert_eq!(c.rules_for(2_700).network_fee, p("0.02"));
        assert_eq!(c.rules_for(1_800).tariffs.retail, p("0.28"));

        let genesis = Community::genesis(IntervalRules::of(&rules("0.08", "0.30", "0.01")));
        assert_eq!(genesis.rules_for(99_000).network_fee, p("0.01"));
        assert!(!genesis.knows_members());
    }

    #[test]
    fn a_schedule_without_a_genesis_entry_or_of_another_neighborhood_or_empty() {
        let v = view(vec![(Some(1_800), rules("0.10", "0.28", "0.02"))], &[]);
        let c = Community::from_view(&v, "nb").unwrap();
        assert_eq!(c.rules_for(0).network_fee, p("0.02"));
        assert!(matches!(
            Community::from_view(&v, "other"),
            Err(CommunityError::OtherNeighborhood { .. })
        ));
        assert_eq!(
            Community::from_view(&view(Vec::new(), &[]), "nb"),
            Err(CommunityError::NoRules)
        );
    }

    fn order(participant: &str, side: Side, wh: Wh, price: &str) -> Order {
        Order {
            id: format!("{participant}-{side}").into(),
            participant: participant.into(),
            side,
            quantity_wh: wh,
            limit_price: p(price),
            seq: 0,
        }
    }

    #[test]
    fn limits_are_clamped_into_the_tariffs_and_quantities_capped() {
        let r = IntervalRules::of(&rules("0.12", "0.28", "0.01"));
        let sell = r.bound(order("a", Side::Sell, 900, "0.10"));
        assert_eq!((sell.limit_price, sell.quantity_wh), (p("0.12"), 500));
        let buy = r.bound(order("b", Side::Buy, 100, "0.30"));
        assert_eq!((buy.limit_price, buy.quantity_wh), (p("0.28"), 100));
        let inside = order("c", Side::Buy, 100, "0.20");
        assert!(r.admits(&inside));
        assert_eq!(r.bound(inside.clone()), inside, "inside: unchanged");
        assert!(MarketRules {
            tariffs: r.tariffs,
            max_order_wh: r.max_order_wh
        }
        .admit(&sell)
        .is_ok());
    }

    #[test]
    fn members_removed_members_and_keys() {
        let bridge = key(1);
        let v = view(
            vec![(None, rules("0.08", "0.30", "0.01"))],
            &[
                ("h1", vec![key(5), bridge], None),
                ("h2", vec![bridge], Some(1_800)),
                ("h3", vec![key(6)], None),
            ],
        );
        let c = Community::from_view(&v, "nb").unwrap();
        let s = |who: &str, at| c.standing(&who.into(), &bridge, at);
        assert_eq!(s("h1", 900), Standing::Allowed);
        assert_eq!(s("h2", 900), Standing::Allowed, "before it leaves");
        assert_eq!(
            s("h2", 1_800),
            Standing::Removed {
                from_interval: 1_800
            }
        );
        assert_eq!(s("h3", 900), Standing::KeyNotAllowed);
        assert_eq!(s("h9", 900), Standing::NotAMember);
        let genesis = Community::genesis(IntervalRules::of(&rules("0.08", "0.30", "0.01")));
        assert_eq!(
            genesis.standing(&"h9".into(), &bridge, 900),
            Standing::Allowed,
            "no member list yet: everyone is planned"
        );
    }

    #[test]
    fn the_filter_drops_refused_households_and_reports_each_change_once() {
        let bridge = key(1);
        let households = || ["h1", "h9"].map(ParticipantId::from);
        let before = Community::from_view(
            &view(
                vec![(None, rules("0.10", "0.30", "0.01"))],
                &[("h1", vec![bridge], None)],
            ),
            "nb",
        )
        .unwrap();
        let orders = || {
            vec![
                order("h1", Side::Sell, 100, "0.05"),
                order("h9", Side::Buy, 100, "0.20"),
            ]
        };
        let mut standings = Standings::default();
        let (sent, changes) = admit(
            orders(),
            households(),
            &before,
            &bridge,
            900,
            &mut standings,
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].participant.as_str(), sent[0].limit_price),
            ("h1", p("0.10")),
            "h1's limit clamped up to the feed-in tariff"
        );
        assert_eq!(
            changes,
            [StandingChange {
                participant: "h9".into(),
                before: None,
                now: Standing::NotAMember
            }],
            "h9 reported, h1 (allowed from the start) not"
        );
        let (_, again) = admit(
            orders(),
            households(),
            &before,
            &bridge,
            1_800,
            &mut standings,
        );
        assert!(again.is_empty(), "one report per change, not per interval");

        let after = Community::from_view(
            &view(
                vec![(None, rules("0.10", "0.30", "0.01"))],
                &[("h1", vec![bridge], None), ("h9", vec![bridge], None)],
            ),
            "nb",
        )
        .unwrap();
        let (sent, changes) = admit(
            orders(),
            households(),
            &after,
            &bridge,
            2_700,
            &mut standings,
        );
        assert_eq!(sent.len(), 2, "h9 trades once admitted");
        assert_eq!(
            changes,
            [StandingChange {
                participant: "h9".into(),
                before: Some(Standing::NotAMember),
                now: Standing::Allowed
            }]
        );
        // h9 leaves the bridge's list, then comes back: reported afresh.
        let (_, gone) = admit(
            Vec::new(),
            ["h1".into()],
            &before,
            &bridge,
            3_600,
            &mut standings,
        );
        assert!(gone.is_empty());
        let (_, back) = admit(
            Vec::new(),
            households(),
            &before,
            &bridge,
            4_500,
            &mut standings,
        );
        assert_eq!(back[0].before, None);
    }
}
