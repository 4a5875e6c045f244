//! Unit tests of the FeedSync model against `shared/FEEDSYNC.md`: every
//! vector of its table, the Update, Delete and Resolve rules, subsumption,
//! winner picking, the merge consequences it lists, and its wire sample.

use super::*;
use crate::atom::{read_feed, write_feed};
use chrono::TimeZone;

/// `tNN` of FEEDSYNC.md: `2008-01-01T10:00:NNZ`.
fn t(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2008, 1, 1, 10, 0, s).unwrap()
}

fn id() -> SyncId {
    SyncId::parse("urn:uuid:item-1").unwrap()
}

/// A body that tells versions apart.
fn body(title: &str) -> Body {
    Body {
        title: Some(Text::plain(title)),
        ..Body::default()
    }
}

/// A version as the table writes it: a history newest first as
/// `(sequence, by, tNN)`, with `updates` the top sequence.
fn v(history: &[(u32, &str, u32)]) -> Version {
    let records: Vec<History> = history
        .iter()
        .map(|&(sequence, by, when)| History::new(sequence, t(when), by))
        .collect();
    Version {
        sync: Sync {
            id: id(),
            updates: history[0].0,
            deleted: false,
            noconflicts: false,
            history: HistoryList::try_from(records).unwrap(),
        },
        body: body(&format!("{history:?}")),
    }
}

fn deleted(mut v: Version) -> Version {
    v.sync.deleted = true;
    v
}

fn noconflicts(mut v: Version) -> Version {
    v.sync.noconflicts = true;
    v
}

fn item(current: Version, conflicts: Vec<Version>) -> Item {
    Item { current, conflicts }
}

fn alone(current: Version) -> Item {
    item(current, Vec::new())
}

fn merged(local: Option<&Item>, incoming: &Item) -> Merged {
    merge(local, incoming).unwrap()
}

/// Merges both ways and checks that both give `expected`.
fn assert_merges_to(l: &Item, i: &Item, expected: &Item) {
    assert_eq!(&merged(Some(l), i).item, expected, "incoming into local");
    assert_eq!(&merged(Some(i), l).item, expected, "local into incoming");
}

// --- The table of FEEDSYNC.md ------------------------------------------------

#[test]
fn vector_new_item() {
    let i = alone(v(&[(1, "A", 0)]));
    let m = merged(None, &i);
    assert_eq!(m.item, i);
    assert!(m.changed);
}

#[test]
fn vector_identical() {
    let l = alone(v(&[(2, "B", 5), (1, "A", 0)]));
    let m = merged(Some(&l), &l.clone());
    assert_eq!(m.item, l);
    assert!(!m.changed);
}

#[test]
fn vector_fast_forward() {
    let l = alone(v(&[(1, "A", 0)]));
    let i = alone(v(&[(2, "B", 5), (1, "A", 0)]));
    let m = merged(Some(&l), &i);
    assert_eq!(m.item, i);
    assert!(m.changed);
}

#[test]
fn vector_stale_incoming() {
    let l = alone(v(&[(2, "B", 5), (1, "A", 0)]));
    let i = alone(v(&[(1, "A", 0)]));
    let m = merged(Some(&l), &i);
    assert_eq!(m.item, l);
    assert!(!m.changed);
}

#[test]
fn vector_concurrent_later_when_wins() {
    let l = v(&[(2, "A", 5), (1, "A", 0)]);
    let i = v(&[(2, "B", 9), (1, "A", 0)]);
    let m = merged(Some(&alone(l.clone())), &alone(i.clone()));
    assert_eq!(m.item, item(i.clone(), vec![l.clone()]));
    assert!(m.changed);
    // The same with L and I swapped: the later one still wins.
    let m = merged(Some(&alone(i.clone())), &alone(l.clone()));
    assert_eq!(m.item, item(i, vec![l]));
    assert!(m.changed);
}

#[test]
fn vector_concurrent_equal_when_greater_by() {
    let l = v(&[(2, "EP1", 9), (1, "EP2", 0)]);
    let i = v(&[(2, "EP2", 9), (1, "EP2", 0)]);
    assert_merges_to(&alone(l.clone()), &alone(i.clone()), &item(i, vec![l]));
}

#[test]
fn vector_more_updates_beats_later_when() {
    let l = v(&[(3, "A", 3), (2, "A", 2), (1, "A", 0)]);
    let i = v(&[(2, "B", 9), (1, "A", 0)]);
    assert_merges_to(&alone(l.clone()), &alone(i.clone()), &item(l, vec![i]));
}

#[test]
fn vector_delete_vs_later_update() {
    let l = deleted(v(&[(2, "A", 5), (1, "A", 0)]));
    let i = v(&[(2, "B", 9), (1, "A", 0)]);
    let expected = item(i.clone(), vec![l.clone()]);
    assert!(!expected.current.sync.deleted);
    assert_merges_to(&alone(l), &alone(i), &expected);
}

#[test]
fn vector_delete_later_than_update() {
    let l = deleted(v(&[(2, "A", 9), (1, "A", 0)]));
    let i = v(&[(2, "B", 5), (1, "A", 0)]);
    let expected = item(l.clone(), vec![i.clone()]);
    assert!(expected.current.sync.deleted);
    assert_merges_to(&alone(l), &alone(i), &expected);
}

#[test]
fn vector_noconflicts() {
    let l = noconflicts(v(&[(2, "A", 5), (1, "A", 0)]));
    let i = noconflicts(v(&[(2, "B", 9), (1, "A", 0)]));
    assert_merges_to(&alone(l), &alone(i.clone()), &alone(i));
}

// --- Create, Update, Delete ----------------------------------------------------

#[test]
fn create_starts_a_history_in_whole_seconds() {
    let now = t(0) + chrono::Duration::milliseconds(750);
    let created = Item::create(id(), body("x"), true, now, "A");
    assert_eq!(
        created,
        item(
            Version {
                sync: Sync {
                    id: id(),
                    updates: 1,
                    deleted: false,
                    noconflicts: true,
                    history: HistoryList::new(History::new(1, t(0), "A")),
                },
                body: body("x"),
            },
            Vec::new()
        )
    );
    assert_eq!(created.current.top().when, Some(t(0)));
}

#[test]
fn update_counts_prepends_and_replaces_the_content() {
    let mut x = Item::create(id(), body("one"), false, t(0), "A");
    x.update(body("two"), false, t(4), "B");
    assert_eq!(
        x.current,
        v(&[(2, "B", 4), (1, "A", 0)]).with_body(body("two"))
    );
}

#[test]
fn update_drops_the_conflicts_its_endpoint_made() {
    let mut x = item(
        v(&[(2, "C", 9), (1, "A", 0)]),
        vec![
            v(&[(2, "B", 7), (1, "A", 0)]),
            v(&[(2, "A", 5), (1, "A", 0)]),
        ],
    );
    x.update(body("after"), false, t(10), "A");
    assert_eq!(x.conflicts, vec![v(&[(2, "B", 7), (1, "A", 0)])]);
    assert_eq!(x.current.sync.updates, 3);
}

/// Regression (found by `tests/hostile_input.rs`): a peer may send
/// `updates="4294967295"`; updating such an item overflowed (a panic in a
/// debug build, and in a release build a count of 0, so the update lost to
/// the version it was made on and became a conflict).
#[test]
fn an_update_at_the_largest_count_still_wins_over_what_it_replaces() {
    let theirs = alone(v(&[(u32::MAX, "Z", 5)]));
    let mut mine = theirs.clone();
    mine.update(body("mine"), false, t(6), "A");
    assert_eq!(mine.current.sync.updates, u32::MAX);
    assert!(mine.current.beats(&theirs.current));
    assert!(mine.current.subsumes(&theirs.current));
    let m = merged(Some(&mine), &theirs);
    assert!(!m.changed);
    assert_eq!(merged(Some(&theirs), &mine).item, mine);
}

#[test]
fn delete_keeps_the_content_and_an_update_revives_the_tombstone() {
    let mut x = Item::create(id(), body("x"), false, t(0), "A");
    x.delete(t(1), "B");
    assert!(x.current.sync.deleted);
    assert_eq!(x.current.body, body("x"));
    assert_eq!(x.current.sync.updates, 2);
    assert_eq!(x.current.top(), &History::new(2, t(1), "B"));
    x.update(body("back"), false, t(2), "C");
    assert!(!x.current.sync.deleted);
    assert_eq!(x.current.body, body("back"));
    assert_eq!(x.current.sync.updates, 3);
}

#[test]
fn a_delete_competes_like_any_other_version() {
    let base = Item::create(id(), body("x"), false, t(0), "A");
    let mut a = base.clone();
    a.delete(t(9), "A");
    let mut b = base;
    b.update(body("y"), false, t(5), "B");
    let m = merged(Some(&b), &a);
    assert!(m.item.current.sync.deleted);
    assert_eq!(m.item.conflicts, vec![b.current]);
}

#[test]
fn an_atom_id_equal_to_the_sync_id_is_not_stored() {
    let with_own_id = Body {
        atom_id: Some(id().as_str().to_owned()),
        ..body("x")
    };
    let mut x = Item::create(id(), with_own_id.clone(), false, t(0), "A");
    assert_eq!(x.current.body.atom_id, None);
    x.update(with_own_id, false, t(1), "A");
    assert_eq!(x.current.body.atom_id, None);
    let other = Body {
        atom_id: Some("tag:x".into()),
        ..body("x")
    };
    x.update(other.clone(), false, t(2), "A");
    assert_eq!(x.current.body, other);
}

// --- Resolve -------------------------------------------------------------------

/// A and B changed the same item concurrently; B's change wins.
fn concurrent() -> (Item, Item, Item) {
    let base = Item::create(id(), body("milk"), false, t(0), "A");
    let mut a = base.clone();
    a.update(body("milk and eggs"), false, t(5), "A");
    let mut b = base;
    b.update(body("oat milk"), false, t(9), "B");
    let both = merged(Some(&a), &b).item;
    assert_eq!(both, item(b.current.clone(), vec![a.current.clone()]));
    (a, b, both)
}

#[test]
fn resolve_settles_the_conflict_on_every_endpoint() {
    let (a, b, both) = concurrent();
    let mut resolved = both.clone();
    resolved.resolve(|_| true, body("oat milk and eggs"), false, t(12), "C");
    assert!(resolved.conflicts.is_empty());
    let records: Vec<_> = resolved.current.sync.history.iter().cloned().collect();
    assert_eq!(
        records,
        [
            History::new(3, t(12), "C"),
            History::new(2, t(9), "B"),
            History::new(2, t(5), "A"),
            History::new(1, t(0), "A"),
        ],
        "the conflict's records go right after the top one, stopping at the first one already seen"
    );
    // Every endpoint holds one of these; wherever the resolved item goes,
    // and whichever old version comes back to it, the conflict is gone.
    let old_ones = [
        a.clone(),
        b.clone(),
        both.clone(),
        merged(Some(&b), &a).item,
        alone(a.current.clone()),
    ];
    for old in &old_ones {
        let back = merged(Some(&resolved), old);
        assert!(!back.changed, "{old:?} changed the resolved item");
        assert_eq!(back.item, resolved);
        let there = merged(Some(old), &resolved);
        assert_eq!(there.item, resolved);
        assert!(there.item.conflicts.is_empty());
    }
}

#[test]
fn resolve_keeps_what_the_settled_conflict_had_seen() {
    // B saw C's change, then changed the item twice; A changed it alone.
    let mut at_b = alone(v(&[(2, "C", 1), (1, "A", 0)]));
    at_b.update(body("b1"), false, t(2), "B");
    at_b.update(body("b2"), false, t(3), "B");
    let mut at_a = alone(v(&[(1, "A", 0)]));
    for s in 4..7 {
        at_a.update(body("a"), false, t(s), "A");
    }
    let mut both = merged(Some(&at_a), &at_b).item;
    assert_eq!(both.conflicts, vec![at_b.current.clone()]);
    both.resolve(|_| true, body("settled"), false, t(9), "A");
    let records: Vec<_> = both.current.sync.history.iter().cloned().collect();
    assert_eq!(
        records,
        [
            History::new(5, t(9), "A"),
            History::new(4, t(6), "A"),
            History::new(4, t(3), "B"),
            History::new(3, t(2), "B"),
            History::new(2, t(1), "C"),
            History::new(3, t(5), "A"),
            History::new(2, t(4), "A"),
            History::new(1, t(0), "A"),
        ]
    );
    // C's change, which the settled conflict had seen, stays seen.
    let m = merged(Some(&both), &alone(v(&[(2, "C", 1), (1, "A", 0)])));
    assert!(!m.changed);
}

#[test]
fn resolve_keeps_the_conflicts_it_does_not_settle() {
    let base = Item::create(id(), body("x"), false, t(0), "A");
    let mut versions = Vec::new();
    for (by, when) in [("A", 3), ("B", 5), ("C", 7)] {
        let mut x = base.clone();
        x.update(body(by), false, t(when), by);
        versions.push(x);
    }
    let all = versions
        .iter()
        .fold(None, |acc: Option<Item>, x| {
            Some(merged(acc.as_ref(), x).item)
        })
        .unwrap();
    assert_eq!(all.conflicts.len(), 2);
    let mut resolved = all.clone();
    resolved.resolve(
        |c| c.top().by.as_deref() == Some("B"),
        body("C and B"),
        false,
        t(10),
        "D",
    );
    assert_eq!(resolved.conflicts, vec![versions[0].current.clone()]);
    // B's version is settled, A's still competes.
    let m = merged(Some(&resolved), &versions[1]);
    assert!(!m.changed);
    let m = merged(Some(&resolved), &versions[0]);
    assert!(!m.changed);
    assert_eq!(m.item.conflicts.len(), 1);
}

#[test]
fn a_plain_update_keeps_the_conflicts_of_other_endpoints() {
    let (a, _, both) = concurrent();
    let mut updated = both;
    updated.update(body("something else"), false, t(20), "C");
    assert_eq!(updated.conflicts, vec![a.current.clone()]);
    let m = merged(Some(&updated), &a);
    assert!(!m.changed);
    assert_eq!(m.item.conflicts, vec![a.current]);
}

// --- Subsumption and winner picking --------------------------------------------

fn record(sequence: u32, when: Option<u32>, by: Option<&str>) -> History {
    History {
        sequence,
        when: when.map(t),
        by: by.map(str::to_owned),
    }
}

#[test]
fn a_record_with_by_is_subsumed_by_a_later_one_of_the_same_endpoint() {
    let h = record(2, Some(5), Some("A"));
    assert!(h.is_subsumed_by(&h));
    assert!(
        h.is_subsumed_by(&record(3, Some(1), Some("A"))),
        "`when` does not matter"
    );
    assert!(h.is_subsumed_by(&record(2, None, Some("A"))));
    assert!(!h.is_subsumed_by(&record(1, Some(5), Some("A"))));
    assert!(!h.is_subsumed_by(&record(9, Some(5), Some("B"))));
    assert!(!h.is_subsumed_by(&record(2, Some(5), None)));
}

#[test]
fn a_record_without_by_is_subsumed_only_by_an_equal_one_without_by() {
    let h = record(2, Some(5), None);
    assert!(h.is_subsumed_by(&record(2, Some(5), None)));
    assert!(!h.is_subsumed_by(&record(3, Some(5), None)));
    assert!(!h.is_subsumed_by(&record(2, Some(6), None)));
    assert!(!h.is_subsumed_by(&record(2, None, None)));
    assert!(!h.is_subsumed_by(&record(2, Some(5), Some("A"))));
}

#[test]
fn a_version_subsumes_what_any_record_of_its_history_has_seen() {
    let old = v(&[(2, "A", 5), (1, "A", 0)]);
    let newer = v(&[(4, "C", 9), (3, "B", 7), (2, "A", 5), (1, "A", 0)]);
    let later_by_a = v(&[(3, "A", 6), (2, "B", 1), (1, "A", 0)]);
    assert!(newer.subsumes(&old));
    assert!(!old.subsumes(&newer));
    assert!(
        later_by_a.subsumes(&old),
        "A's later change has seen A's earlier one"
    );
    assert!(old.subsumes(&v(&[(1, "A", 0)])));
    assert!(!v(&[(2, "B", 5), (1, "A", 0)]).subsumes(&old));
}

fn top_only(updates: u32, when: Option<u32>, by: Option<&str>) -> Version {
    let mut x = v(&[(updates, "unused", 0)]);
    x.sync.history = HistoryList::new(record(updates, when, by));
    x
}

#[test]
fn beats_compares_updates_then_when_then_by() {
    let beats = |x: &Version, y: &Version| {
        assert!(!(x.beats(y) && y.beats(x)));
        x.beats(y)
    };
    let more = top_only(3, Some(0), Some("A"));
    let later = top_only(2, Some(9), Some("A"));
    assert!(beats(&more, &later));
    assert!(beats(&later, &top_only(2, Some(5), Some("Z"))));
    assert!(
        beats(&later, &top_only(2, None, Some("Z"))),
        "a present `when` beats an absent one"
    );
    assert!(
        beats(&top_only(2, None, Some("A")), &top_only(2, None, None)),
        "a present `by` beats an absent one"
    );
    assert!(beats(&top_only(2, Some(9), Some("B")), &later));
    let same = top_only(2, Some(9), Some("A"));
    assert!(
        !beats(&same, &later) && !beats(&later, &same),
        "a tie: W stays"
    );
}

#[test]
fn beats_compares_by_by_code_point_not_length() {
    let by = |s: &str| top_only(2, Some(9), Some(s));
    assert!(by("B").beats(&by("AA")));
    assert!(by("a").beats(&by("Z")));
    assert!(by("\u{e9}").beats(&by("zzzz")), "U+00E9 comes after U+007A");
    assert!(
        by("\u{1F600}").beats(&by("\u{FFFD}")),
        "astral code points come last"
    );
    assert!(!by("AA").beats(&by("B")));
}

// --- Merge ---------------------------------------------------------------------

#[test]
fn merge_refuses_items_with_different_sync_ids() {
    let l = alone(v(&[(1, "A", 0)]));
    let mut i = l.clone();
    i.current.sync.id = SyncId::parse("urn:uuid:item-2").unwrap();
    assert_eq!(
        merge(Some(&l), &i),
        Err(IdMismatch {
            local: id(),
            incoming: i.id().clone(),
        })
    );
}

#[test]
fn two_concurrent_versions_conflict_whatever_their_content() {
    let mut l = v(&[(2, "A", 5), (1, "A", 0)]);
    let mut i = v(&[(2, "B", 9), (1, "A", 0)]);
    l.body = body("same");
    i.body = body("same");
    assert_merges_to(&alone(l.clone()), &alone(i.clone()), &item(i, vec![l]));
}

#[test]
fn stored_conflicts_from_either_side_reenter_the_contest() {
    let a = v(&[(2, "A", 5), (1, "A", 0)]);
    let b = v(&[(2, "B", 7), (1, "A", 0)]);
    let c = v(&[(2, "C", 9), (1, "A", 0)]);
    let ab = item(b.clone(), vec![a.clone()]);
    let expected = item(c.clone(), vec![b.clone(), a.clone()]);
    assert_merges_to(&ab, &alone(c.clone()), &expected);
    // A conflict on each side.
    let ca = item(c, vec![a]);
    assert_merges_to(&ab, &ca, &expected);
}

#[test]
fn stale_stored_conflicts_vanish() {
    let (a, _, both) = concurrent();
    // A sees the merge and changes the item again: it has now seen its own
    // losing version, so that version is stale everywhere.
    let mut later = both.clone();
    later.update(body("eggs too"), false, t(11), "A");
    assert!(later.conflicts.is_empty());
    assert_merges_to(&both, &later, &later);
    assert_merges_to(&a, &later, &later);
}

#[test]
fn conflict_lists_travel_between_endpoints() {
    let (_, _, both) = concurrent();
    let m = merged(None, &both);
    assert_eq!(m.item, both);
    let m = merged(Some(&both), &both);
    assert!(!m.changed);
    assert_eq!(m.item, both);
}

#[test]
fn merge_is_idempotent() {
    let (a, b, both) = concurrent();
    let again = merged(Some(&both), &b);
    assert!(!again.changed);
    let again = merged(Some(&both), &a);
    assert!(!again.changed);
}

#[test]
fn merge_does_not_depend_on_the_side_when_subsumption_is_not_transitive() {
    // C changes the item (x); B sees x and changes it (z); A's concurrent
    // chain (w) beats z at B, which then changes it again (y): y has seen z
    // (B's own earlier change) but y's history does not name x.
    let x = v(&[(2, "C", 3), (1, "A", 0)]);
    let z = v(&[(3, "B", 4), (2, "C", 3), (1, "A", 0)]);
    let y = v(&[
        (5, "B", 8),
        (4, "A", 6),
        (3, "A", 5),
        (2, "A", 2),
        (1, "A", 0),
    ]);
    assert!(y.subsumes(&z) && z.subsumes(&x) && !y.subsumes(&x));
    // C holds x and receives y; another endpoint still holds z.
    let at_c = merged(Some(&alone(x.clone())), &alone(y.clone())).item;
    assert_eq!(at_c, item(y.clone(), vec![x.clone()]));
    // x is dropped only by a version that is kept; z is not, so both ways
    // give the same item.
    assert_merges_to(&at_c, &alone(z), &at_c);
}

/// The known limit of merging on history alone: Update drops an endpoint's
/// own losing version without keeping what that version had seen, so a
/// version that only it had seen may meet the stale version (and vanish) or
/// meet only the newer one (and stay a conflict), depending on the order of
/// the exchanges. Both orders settle, with the same winner.
#[test]
fn the_exchange_order_can_decide_whether_a_version_only_a_stale_one_saw_stays_a_conflict() {
    let base = Item::create(id(), body("base"), false, t(0), "A");
    let mut at_c = base.clone();
    at_c.update(body("x"), false, t(1), "C");
    let x = at_c.current.clone();
    let mut at_b = merged(Some(&base), &at_c).item;
    at_b.update(body("z"), false, t(2), "B");
    let mut at_a = base;
    for s in 3..6 {
        at_a.update(body("w"), false, t(s), "A");
    }
    at_a = merged(Some(&at_a), &at_b).item;
    at_b = merged(Some(&at_b), &at_a).item;
    at_b.update(body("y"), false, t(7), "B");
    assert_eq!(at_a.conflicts.len(), 1, "A keeps B's z, which saw x");
    assert!(at_b.conflicts.is_empty(), "B's update dropped its own z");

    // C hears from B first: x meets only y, which has not seen it.
    let c1 = merged(Some(&at_c), &at_b).item;
    assert_eq!(c1.conflicts, vec![x]);
    for held in [&at_a, &at_b] {
        assert_eq!(merged(Some(held), &c1).item, c1);
    }
    // C hears from A first: x meets z, which has seen it.
    let c2 = merged(Some(&at_c), &at_a).item;
    let c2 = merged(Some(&c2), &at_b).item;
    assert!(c2.conflicts.is_empty());
    for held in [&at_a, &at_b] {
        assert_eq!(merged(Some(held), &c2).item, c2);
    }
    assert_eq!(c1.current, c2.current);
}

#[test]
fn conflicts_are_in_canonical_order_whatever_the_input_order() {
    let a = v(&[(2, "A", 5), (1, "A", 0)]);
    let b = v(&[(2, "B", 7), (1, "A", 0)]);
    let c = v(&[(2, "C", 9), (1, "A", 0)]);
    let one = merged(None, &item(c.clone(), vec![a.clone(), b.clone()])).item;
    let other = merged(
        None,
        &item(c.clone(), vec![b.clone(), a.clone(), b.clone()]),
    )
    .item;
    assert_eq!(one, other);
    assert_eq!(one.conflicts, vec![b, a]);
    let mut canonical = item(c, vec![one.conflicts[1].clone(), one.conflicts[0].clone()]);
    canonicalize(&mut canonical);
    assert_eq!(canonical, one);
}

// --- The wire sample of FEEDSYNC.md --------------------------------------------

const WIRE_SAMPLE: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom"
      xmlns:sx="http://feedsync.org/2007/feedsync">
  <title>Todo</title>
  <id>urn:uuid:5d1c0e36-8c5e-4c4b-9d55-0f8b1a7c2f10</id>
  <updated>2008-01-01T10:00:09Z</updated>
  <entry>
    <title>buy milk</title>
    <id>urn:uuid:item-1</id>
    <updated>2008-01-01T10:00:09Z</updated>
    <author><name>B</name></author>
    <content type="text">buy oat milk</content>
    <sx:sync id="urn:uuid:item-1" updates="2" deleted="false" noconflicts="false">
      <sx:history sequence="2" when="2008-01-01T10:00:09Z" by="B"/>
      <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
      <sx:conflicts>
        <entry>
          <title>buy milk</title>
          <id>urn:uuid:item-1</id>
          <updated>2008-01-01T10:00:05Z</updated>
          <author><name>A</name></author>
          <content type="text">buy milk and eggs</content>
          <sx:sync id="urn:uuid:item-1" updates="2" deleted="false" noconflicts="false">
            <sx:history sequence="2" when="2008-01-01T10:00:05Z" by="A"/>
            <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
          </sx:sync>
        </entry>
      </sx:conflicts>
    </sx:sync>
  </entry>
</feed>"#;

impl Version {
    fn with_body(mut self, body: Body) -> Version {
        self.body = body;
        self
    }
}

#[test]
fn the_wire_sample_is_the_merge_of_the_concurrent_case() {
    let feed = read_feed(WIRE_SAMPLE.as_bytes()).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Todo"));
    assert_eq!(
        feed.id.as_deref(),
        Some("urn:uuid:5d1c0e36-8c5e-4c4b-9d55-0f8b1a7c2f10")
    );
    assert_eq!(feed.updated, Some(t(9)));
    assert!(feed.skipped.is_empty());
    assert_eq!(feed.items.len(), 1);
    let item = &feed.items[0];

    let winner = &item.current;
    assert_eq!(winner.sync.id, id());
    assert_eq!((winner.sync.updates, winner.sync.deleted), (2, false));
    assert_eq!(winner.top(), &History::new(2, t(9), "B"));
    assert_eq!(winner.body.atom_id, None, "the atom:id is the sync id");
    assert_eq!(
        winner.body.content,
        Some(Content::Inline(Text::plain("buy oat milk")))
    );
    assert_eq!(winner.body.authors[0].name, "B");
    assert_eq!(item.conflicts.len(), 1);
    let conflict = &item.conflicts[0];
    assert_eq!(conflict.top(), &History::new(2, t(5), "A"));
    assert_eq!(
        conflict.body.content,
        Some(Content::Inline(Text::plain("buy milk and eggs")))
    );

    // It is exactly what merging the concurrent vector with these bodies gives.
    let sample_body = |by: &str, updated: u32, content: &str| Body {
        title: Some(Text::plain("buy milk")),
        updated: Some(t(updated)),
        authors: vec![Person {
            name: by.into(),
            email: None,
            uri: None,
        }],
        content: Some(Content::Inline(Text::plain(content))),
        ..Body::default()
    };
    let l = v(&[(2, "A", 5), (1, "A", 0)]).with_body(sample_body("A", 5, "buy milk and eggs"));
    let i = v(&[(2, "B", 9), (1, "A", 0)]).with_body(sample_body("B", 9, "buy oat milk"));
    assert_eq!(item, &merged(Some(&alone(l)), &alone(i)).item);

    assert_eq!(read_feed(write_feed(&feed).as_bytes()).unwrap(), feed);
}
