//! Property tests of FeedSync merging and of the two encodings.
//!
//! Merging: three endpoints (A, B, C) share one item and change it with
//! arbitrary updates, deletes, resolves and exchanges at arbitrary times
//! (often the same second); on every state this reaches, merging an item
//! with itself changes nothing, merging does not depend on which side is
//! local, merging again changes nothing, a resolve settles its conflicts for
//! good, endpoints that keep exchanging end up holding the same item,
//! with the same winner whatever the order of the exchanges, and an item
//! whose history is compacted merges like the full one.
//!
//! Encodings: arbitrary feeds of arbitrary items (any text, including
//! markup characters, quotes, non-ASCII and tab/newline/carriage return;
//! absent and present optional fields; JSON payloads; content references)
//! read back from Atom and from JSON exactly as they were written (the
//! strategies are in `common`, which `hostile_input.rs` shares).
//!
//! Each property runs proptest's default 256 cases (`PROPTEST_CASES`
//! changes that).

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::feed;
use mesh_protocol::atom::{read_feed, write_feed};
use mesh_protocol::feed::Feed;
use mesh_protocol::feedsync::{Body, Item, SyncId, Text, merge};
use mesh_protocol::json::{feed_from_json, feed_to_vec};
use proptest::collection::vec;
use proptest::prelude::*;

// --- Endpoints changing one item -------------------------------------------------

const ENDPOINTS: [&str; 3] = ["A", "B", "C"];

#[derive(Debug, Clone)]
enum Op {
    Update {
        at: usize,
        title: u8,
        deleted: bool,
    },
    Delete {
        at: usize,
    },
    /// Settle every conflict the endpoint holds.
    Resolve {
        at: usize,
        title: u8,
    },
    /// `to` merges the item `from` holds.
    Exchange {
        from: usize,
        to: usize,
    },
}

fn endpoint() -> impl Strategy<Value = usize> {
    0..ENDPOINTS.len()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (endpoint(), any::<u8>(), prop::bool::weighted(0.1))
            .prop_map(|(at, title, deleted)| Op::Update { at, title, deleted }),
        1 => endpoint().prop_map(|at| Op::Delete { at }),
        1 => (endpoint(), any::<u8>()).prop_map(|(at, title)| Op::Resolve { at, title }),
        4 => (endpoint(), endpoint()).prop_map(|(from, to)| Op::Exchange { from, to }),
    ]
}

/// A run of operations, each after a step of 0 to 2 seconds on a shared clock
/// that an endpoint may read up to 2 seconds wrong.
#[derive(Debug, Clone)]
struct Run {
    noconflicts: bool,
    ops: Vec<(Op, u32, u32)>,
}

fn run() -> impl Strategy<Value = Run> {
    (
        prop::bool::weighted(0.2),
        vec((op(), 0u32..3, 0u32..3), 0..40),
    )
        .prop_map(|(noconflicts, ops)| Run { noconflicts, ops })
}

fn titled(title: u8) -> Body {
    Body {
        title: Some(Text::plain(title.to_string())),
        ..Body::default()
    }
}

fn sim_time(seconds: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2008, 1, 1, 10, 0, 0).unwrap() + chrono::Duration::seconds(seconds.into())
}

/// Plays a run: A creates the item, then the operations happen. Checks on
/// the way that every resolve settles its conflicts everywhere.
fn play(run: &Run) -> [Option<Item>; 3] {
    let id = SyncId::parse("urn:uuid:simulated").unwrap();
    let mut held = [
        Some(Item::create(
            id,
            titled(0),
            run.noconflicts,
            sim_time(0),
            "A",
        )),
        None,
        None,
    ];
    let mut clock = 0;
    for (op, step, skew) in &run.ops {
        clock += step;
        let now = sim_time(clock + skew);
        match *op {
            Op::Update { at, title, deleted } => {
                if let Some(x) = &mut held[at] {
                    x.update(titled(title), deleted, now, ENDPOINTS[at]);
                }
            }
            Op::Delete { at } => {
                if let Some(x) = &mut held[at] {
                    x.delete(now, ENDPOINTS[at]);
                }
            }
            Op::Resolve { at, title } => {
                if let Some(x) = &mut held[at]
                    && !x.conflicts.is_empty()
                {
                    let before = x.clone();
                    x.resolve(|_| true, titled(title), false, now, ENDPOINTS[at]);
                    assert!(x.conflicts.is_empty());
                    for old in before.versions() {
                        let old = Item {
                            current: old.clone(),
                            conflicts: Vec::new(),
                        };
                        let m = merge(Some(x), &old).unwrap();
                        assert!(!m.changed, "an old version came back after a resolve");
                        let there = merge(Some(&old), x).unwrap().item;
                        assert_eq!(&there, x, "the resolve did not win where {old:?} is held");
                    }
                    let m = merge(Some(x), &before).unwrap();
                    assert!(!m.changed, "the unresolved item came back after a resolve");
                }
            }
            Op::Exchange { from, to } => {
                if let Some(sent) = held[from].clone() {
                    held[to] = Some(merge(held[to].as_ref(), &sent).unwrap().item);
                }
            }
        }
    }
    held
}

/// Every item some endpoint holds after a run.
fn held(run: &Run) -> Vec<Item> {
    play(run).into_iter().flatten().collect()
}

/// Exchanges in the given order, then in full rounds until nothing changes;
/// answers the item every endpoint then holds.
fn gossip(mut held: [Option<Item>; 3], order: &[(usize, usize)]) -> Item {
    let round: Vec<(usize, usize)> = (0..3)
        .flat_map(|from| {
            (0..3)
                .filter(move |&to| to != from)
                .map(move |to| (from, to))
        })
        .collect();
    let exchange = |held: &mut [Option<Item>; 3], from: usize, to: usize| {
        let Some(sent) = held[from].clone() else {
            return false;
        };
        let m = merge(held[to].as_ref(), &sent).unwrap();
        held[to] = Some(m.item);
        m.changed
    };
    for &(from, to) in order {
        exchange(&mut held, from, to);
    }
    for _ in 0..10 {
        let mut changed = false;
        for &(from, to) in &round {
            changed |= exchange(&mut held, from, to);
        }
        if !changed {
            let [a, b, c] = held.map(Option::unwrap);
            assert_eq!(a, b, "A and B hold different items after a quiet round");
            assert_eq!(b, c, "B and C hold different items after a quiet round");
            return a;
        }
    }
    panic!("ten full rounds of exchanges did not settle: {held:?}");
}

fn exchanges() -> impl Strategy<Value = Vec<(usize, usize)>> {
    vec((endpoint(), endpoint()), 0..12)
}

proptest! {
    #[test]
    fn merging_an_item_with_itself_changes_nothing(run in run()) {
        for x in held(&run) {
            let m = merge(Some(&x), &x).unwrap();
            prop_assert!(!m.changed);
            prop_assert_eq!(&m.item, &x);
            prop_assert_eq!(&merge(None, &x).unwrap().item, &x);
        }
    }

    #[test]
    fn merging_does_not_depend_on_which_side_is_local(run in run()) {
        let held = held(&run);
        for x in &held {
            for y in &held {
                let xy = merge(Some(x), y).unwrap().item;
                let yx = merge(Some(y), x).unwrap().item;
                prop_assert_eq!(xy, yx);
            }
        }
    }

    #[test]
    fn merging_again_changes_nothing(run in run()) {
        let held = held(&run);
        for x in &held {
            for y in &held {
                let r = merge(Some(x), y).unwrap().item;
                for again in [x, y, &r] {
                    let m = merge(Some(&r), again).unwrap();
                    prop_assert!(!m.changed, "merging {:?} into {:?} changed it", again, r);
                }
            }
        }
    }

    #[test]
    fn endpoints_that_keep_exchanging_converge(run in run(), order in exchanges()) {
        gossip(play(&run), &order);
    }

    /// meshd keeps an old tombstone with its history compacted (the newest
    /// record and each endpoint's highest): it must have seen what the full
    /// one saw, and merge with anything to the same winner.
    #[test]
    fn a_compacted_history_merges_like_the_full_one(run in run()) {
        let held = held(&run);
        let records: Vec<_> = held
            .iter()
            .flat_map(|x| x.versions())
            .flat_map(|v| v.sync.history.iter().cloned())
            .collect();
        for x in &held {
            let mut c = x.clone();
            c.current.sync.history = x.current.sync.history.compacted();
            prop_assert!(c.current.sync.history.len() <= ENDPOINTS.len());
            prop_assert_eq!(c.current.top(), x.current.top());
            for h in &records {
                prop_assert_eq!(
                    c.current.sync.history.subsumes(h),
                    x.current.sync.history.subsumes(h)
                );
            }
            for y in &held {
                let full = merge(Some(x), y).unwrap().item;
                let compact = merge(Some(&c), y).unwrap().item;
                prop_assert_eq!(&full.current.body, &compact.current.body);
                prop_assert_eq!(full.current.top(), compact.current.top());
                prop_assert_eq!(full.current.sync.deleted, compact.current.sync.deleted);
                prop_assert_eq!(full.conflicts.len(), compact.conflicts.len());
            }
        }
    }

    /// The winner is the strongest version any endpoint holds, whatever the
    /// order. The conflicts can differ in rare cases: see
    /// `feedsync::tests::the_exchange_order_can_decide_whether_a_version_only_a_stale_one_saw_stays_a_conflict`.
    #[test]
    fn the_converged_winner_does_not_depend_on_the_order_of_exchanges(
        run in run(),
        one in exchanges(),
        other in exchanges(),
    ) {
        let held = play(&run);
        prop_assert_eq!(gossip(held.clone(), &one).current, gossip(held, &other).current);
    }
}

// --- Arbitrary feeds (strategies in `common`) ---------------------------------

proptest! {
    #[test]
    fn atom_round_trips_are_lossless(feed in feed()) {
        let xml = write_feed(&feed);
        let read = read_feed(xml.as_bytes());
        prop_assert!(read.is_ok(), "{}\n{}", read.unwrap_err(), xml);
        prop_assert_eq!(read.unwrap(), feed, "{}", xml);
    }

    #[test]
    fn json_round_trips_are_lossless(feed in feed()) {
        let bytes = feed_to_vec(&feed);
        prop_assert_eq!(feed_from_json(&bytes).unwrap(), feed);
    }

    #[test]
    fn simulated_items_round_trip_in_both_encodings(run in run()) {
        let feed = Feed { items: held(&run), ..Feed::default() };
        prop_assert_eq!(&read_feed(write_feed(&feed).as_bytes()).unwrap(), &feed);
        let bytes = feed_to_vec(&feed);
        prop_assert_eq!(&feed_from_json(&bytes).unwrap(), &feed);
    }
}
