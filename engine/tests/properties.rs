//! Property tests: random books against the naive reference clearers in `reference/`.

mod reference;

use std::collections::BTreeMap;

use proptest::prelude::*;
use reference::{
    arb_auction_ops, arb_orders, max_volume, price_range, unit_fills, AuctionOp, NaiveCda,
};
use voltmesh_engine::settlement::settle;
use voltmesh_engine::{
    pay_as_bid, uniform, CallAuction, ClearingOutcome, ContinuousBook, MarketRules, Mechanism,
    Money, Order, OrderId, PayAsBidPricing, Price, RejectReason, Side, Tariffs, Trade, K,
};

/// Checks what every mechanism must satisfy: rational trades, no overfill, bought = sold, unfilled
/// remainders consistent with the trades.
fn check_common(orders: &[Order], out: &ClearingOutcome) -> BTreeMap<String, u64> {
    let by_id: BTreeMap<&str, &Order> = orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut filled: BTreeMap<String, u64> = orders.iter().map(|o| (o.id.to_string(), 0)).collect();
    let (mut bought, mut sold) = (0, 0);
    for t in &out.trades {
        let (b, a) = (by_id[t.buy_id.as_str()], by_id[t.sell_id.as_str()]);
        assert_eq!((b.side, a.side), (Side::Buy, Side::Sell));
        assert!(t.quantity_wh > 0);
        assert!(
            b.limit_price >= t.price,
            "buyer pays above its limit: {t:?}"
        );
        assert!(
            a.limit_price <= t.price,
            "seller gets below its limit: {t:?}"
        );
        assert_eq!((&t.buyer, &t.seller), (&b.participant, &a.participant));
        *filled.get_mut(b.id.as_str()).unwrap() += t.quantity_wh;
        *filled.get_mut(a.id.as_str()).unwrap() += t.quantity_wh;
        bought += t.quantity_wh;
        sold += t.quantity_wh;
    }
    assert_eq!(bought, sold);
    assert_eq!(out.volume_wh, bought);
    for o in orders {
        assert!(
            filled[o.id.as_str()] <= o.quantity_wh,
            "order {} overfilled",
            o.id
        );
    }
    let unfilled: BTreeMap<&str, u64> = out
        .unfilled
        .iter()
        .map(|u| (u.id.as_str(), u.remaining_wh))
        .collect();
    assert_eq!(
        unfilled.len(),
        out.unfilled.len(),
        "an order listed twice as unfilled"
    );
    for o in orders {
        let left = o.quantity_wh - filled[o.id.as_str()];
        assert_eq!(
            unfilled.get(o.id.as_str()).copied().unwrap_or(0),
            left,
            "remainder of {}",
            o.id
        );
    }
    filled
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn uniform_matches_the_reference(orders in arb_orders(40), k_ppm in 0u32..=1_000_000) {
        let k = K::from_ppm(k_ppm).unwrap();
        let out = uniform::clear(&orders, k);
        let filled = check_common(&orders, &out);
        prop_assert_eq!(out.volume_wh, max_volume(&orders));
        prop_assert_eq!(&filled, &unit_fills(&orders));
        let range = price_range(&orders, &filled);
        prop_assert_eq!(out.price_range.map(|r| (r.lo, r.hi)), range);
        if let Some((lo, hi)) = range {
            prop_assert!(lo <= hi);
            let price = out.clearing_price.unwrap();
            prop_assert!(lo <= price && price <= hi);
            prop_assert!(out.trades.iter().all(|t| t.price == price));
        } else {
            prop_assert!(out.clearing_price.is_none() && out.trades.is_empty());
        }
    }

    #[test]
    fn uniform_ignores_input_order(orders in arb_orders(30), rotate in 0usize..30) {
        let mut shuffled = orders.clone();
        if !shuffled.is_empty() {
            let n = rotate % shuffled.len();
            shuffled.rotate_left(n);
            shuffled.reverse();
        }
        prop_assert_eq!(uniform::clear(&orders, K::HALF), uniform::clear(&shuffled, K::HALF));
    }

    #[test]
    fn pay_as_bid_reaches_the_same_volume(orders in arb_orders(40), bid_pricing in any::<bool>()) {
        let pricing = if bid_pricing { PayAsBidPricing::Bid } else { PayAsBidPricing::Midpoint };
        let out = pay_as_bid::clear(&orders, pricing);
        let filled = check_common(&orders, &out);
        prop_assert_eq!(out.volume_wh, max_volume(&orders));
        prop_assert_eq!(&filled, &unit_fills(&orders));
    }

    #[test]
    fn settlement_conserves_money(
        orders in arb_orders(30),
        meters in prop::collection::vec(-200i64..200, 7),
        fee_ticks in 0i64..4,
    ) {
        let out = uniform::clear(&orders, K::HALF);
        let metered: BTreeMap<_, _> =
            meters.iter().enumerate().map(|(i, &m)| (format!("p{i}").into(), m)).collect();
        let tariffs = Tariffs::new(Price::from_micros(1_000_000).unwrap(), Price::from_micros(6_000_000).unwrap()).unwrap();
        let fee = Price::from_micros(fee_ticks * 10_000).unwrap();
        let s = settle(&out.trades, &metered, tariffs, fee).unwrap();
        prop_assert_eq!(s.imbalance(), Money::ZERO);
        // Each bill, recomputed from scratch.
        for bill in &s.bills {
            let mine = |pick: fn(&Trade) -> &voltmesh_engine::ParticipantId| {
                out.trades.iter().filter(move |t| pick(t) == &bill.participant)
            };
            let paid: Money = mine(|t| &t.buyer).map(|t| Money::of(t.quantity_wh, t.price)).sum();
            let got: Money = mine(|t| &t.seller).map(|t| Money::of(t.quantity_wh, t.price)).sum();
            let bought: u64 = mine(|t| &t.buyer).map(|t| t.quantity_wh).sum();
            let sold: u64 = mine(|t| &t.seller).map(|t| t.quantity_wh).sum();
            let gap = metered[&bill.participant] - (sold as i64 - bought as i64);
            let utility = if gap < 0 {
                Money::of(gap.unsigned_abs(), tariffs.retail)
            } else {
                -Money::of(gap as u64, tariffs.feed_in)
            };
            prop_assert_eq!(bill.total, paid - got + Money::of(bought, fee) + utility);
        }
    }
}

/// One command against a continuous book.
#[derive(Debug, Clone)]
enum Op {
    Submit { side: Side, qty: u64, tick: i64 },
    Cancel(usize),
    Replace { target: usize, qty: u64, tick: i64 },
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (any::<bool>(), 1u64..30, 0i64..20).prop_map(|(b, qty, tick)| Op::Submit {
            side: if b { Side::Buy } else { Side::Sell }, qty, tick
        }),
        2 => (0usize..64).prop_map(Op::Cancel),
        2 => (0usize..64, 1u64..30, 0i64..20).prop_map(|(target, qty, tick)| Op::Replace { target, qty, tick }),
    ];
    prop::collection::vec(op, 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cda_matches_the_reference_and_never_crosses(ops in arb_ops()) {
        let mut book = ContinuousBook::new(MarketRules::PERMISSIVE);
        let mut naive = NaiveCda::default();
        let mut ids: Vec<String> = Vec::new();
        let price = |tick: i64| Price::from_micros(tick * 100_000).unwrap();
        for op in ops {
            match op {
                Op::Submit { side, qty, tick } => {
                    let id = format!("o{}", ids.len());
                    let order = Order {
                        id: id.as_str().into(),
                        participant: format!("p{}", ids.len() % 5).into(),
                        side,
                        quantity_wh: qty,
                        limit_price: price(tick),
                        seq: ids.len() as u64,
                    };
                    ids.push(id);
                    book.submit(order.clone()).unwrap();
                    naive.submit(order);
                }
                Op::Cancel(i) => {
                    let Some(id) = ids.get(i) else { continue };
                    let got = book.cancel(&id.as_str().into());
                    let want = naive.cancel(id);
                    match (got, want) {
                        (Ok(a), Some(b)) => prop_assert_eq!(a, b),
                        (Err(RejectReason::UnknownOrder(_)), None) => {}
                        (a, b) => prop_assert!(false, "cancel {}: engine {:?}, reference {:?}", id, a, b),
                    }
                }
                Op::Replace { target, qty, tick } => {
                    let Some(id) = ids.get(target) else { continue };
                    let got = book.replace(&id.as_str().into(), qty, price(tick)).is_ok();
                    prop_assert_eq!(got, naive.replace(id, qty, price(tick)));
                }
            }
            book.check_integrity().map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let trades: Vec<(String, String, u64, Price)> = book
            .take_trades()
            .into_iter()
            .map(|t| (t.buy_id.to_string(), t.sell_id.to_string(), t.quantity_wh, t.price))
            .collect();
        prop_assert_eq!(&trades, &naive.trades);
        // What rests at close is what the reference holds, bids then asks, each in priority order.
        let mut resting: BTreeMap<String, u64> = BTreeMap::new();
        for u in book.close() {
            resting.insert(u.id.to_string(), u.remaining_wh);
        }
        let want: BTreeMap<String, u64> =
            naive.resting.iter().map(|o| (o.id.to_string(), o.quantity_wh)).collect();
        prop_assert_eq!(resting, want);
    }
}

/// Replays `ops` into a book that admits any price and quantity. With `in_order`, sequences
/// follow arrival (the book's radix path).
fn auction_from(ops: &[AuctionOp], in_order: bool) -> CallAuction {
    let rules = MarketRules {
        tariffs: Tariffs::UNBOUNDED,
        max_order_wh: u64::MAX,
    };
    let mut auction = CallAuction::new(rules);
    let mut submitted = 0usize;
    for op in ops {
        match *op {
            AuctionOp::Submit {
                buy,
                quantity_wh,
                micros,
                seq,
            } => {
                let order = Order {
                    id: format!("o{submitted:04}").into(),
                    participant: format!("p{}", submitted % 11).into(),
                    side: if buy { Side::Buy } else { Side::Sell },
                    quantity_wh,
                    limit_price: Price::from_micros(micros).unwrap(),
                    seq: if in_order { submitted as u64 } else { seq },
                };
                auction.submit(order).unwrap();
                submitted += 1;
            }
            AuctionOp::Cancel(back) => {
                let Some(n) = submitted.checked_sub(back + 1) else {
                    continue;
                };
                let id = format!("o{n:04}").into();
                let live = auction.orders().iter().any(|o| o.id == id);
                assert_eq!(
                    auction.cancel(&id).is_ok(),
                    live,
                    "cancel works iff the order is live"
                );
            }
        }
    }
    auction
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The book's incremental keys (radix path in arrival order, comparison sort otherwise, with
    /// cancels in between) clear exactly as the plain reference does, and as the slice API does.
    #[test]
    fn call_auction_clears_as_the_reference(
        (ops, in_order) in arb_auction_ops(2_500),
        k_ppm in 0u32..=1_000_000,
    ) {
        let k = K::from_ppm(k_ppm).unwrap();
        let auction = auction_from(&ops, in_order);
        let live = auction.orders().to_vec();
        let want = reference::uniform_outcome(&live, k);
        let got = auction.clear(Mechanism::Uniform { k });
        prop_assert_eq!(&got, &want);
        check_common(&live, &got);
        // The slice API, fed in sequence order (its radix path when sequences are distinct).
        let mut by_seq = live.clone();
        by_seq.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        prop_assert_eq!(&uniform::clear(&by_seq, k), &want);
        // Pay-as-bid pairs the same orders in the same order.
        let pab = auction.clear(Mechanism::PayAsBid { pricing: PayAsBidPricing::Bid });
        prop_assert_eq!(&pab, &pay_as_bid::clear(&live, PayAsBidPricing::Bid));
        let pairs = |o: &ClearingOutcome| -> Vec<(OrderId, OrderId, u64)> {
            o.trades.iter().map(|t| (t.buy_id.clone(), t.sell_id.clone(), t.quantity_wh)).collect()
        };
        prop_assert_eq!(pairs(&pab), pairs(&want));
    }
}
