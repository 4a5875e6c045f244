//! What must hold for any input a peer can send, checked on one input at a
//! time: `tests/hostile_input.rs` runs these on proptest's inputs and the
//! cargo-fuzz targets in `fuzz/` on libFuzzer's (they include this file by
//! path), so both check the same properties. Every check panics, with what
//! broke, when a property fails; a refused input is simply an `Err`.

use chrono::{DateTime, Utc};
use mesh_protocol::atom::{read_feed, write_feed};
use mesh_protocol::content::ContentRef;
use mesh_protocol::feed::Feed;
use mesh_protocol::feedsync::{Body, Item, Version, merge};
use mesh_protocol::folder::{EntryData, validate_name};
use mesh_protocol::json::{feed_from_json, feed_to_vec};
use mesh_protocol::sse::{SseEvent, SseParser};

/// Reads `doc` as an Atom feed. Whatever reads is written back as a document
/// that reads again, and from then on the round trip is exact (the first
/// one may normalise what the writer cannot keep: characters XML cannot
/// hold, markup that relied on the sender's namespace prefixes).
pub fn atom_document(doc: &[u8]) {
    let Ok(feed) = read_feed(doc) else {
        return;
    };
    atom_round_trip(&feed);
    json_round_trip(&feed);
    what_the_server_checks_next(&feed);
}

/// Reads `doc` as a JSON feed. Whatever reads is written back and reads
/// again exactly; its Atom form is stable in the same way as a read one.
pub fn json_document(doc: &[u8]) {
    let Ok(feed) = feed_from_json(doc) else {
        return;
    };
    json_round_trip(&feed);
    atom_round_trip(&feed);
    what_the_server_checks_next(&feed);
}

fn atom_round_trip(feed: &Feed) {
    let written = write_feed(feed);
    let again = read_feed(written.as_bytes())
        .unwrap_or_else(|e| panic!("the writer's document does not read back: {e}\n{written}"));
    let rewritten = write_feed(&again);
    assert_eq!(written, rewritten, "writing what was read back differs");
    let exact = read_feed(rewritten.as_bytes()).expect("the document read a moment ago");
    assert_eq!(exact, again, "a written feed does not round-trip exactly");
}

fn json_round_trip(feed: &Feed) {
    let bytes = feed_to_vec(feed);
    let again = feed_from_json(&bytes).unwrap_or_else(|e| {
        panic!(
            "the JSON writer's document does not read back: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(&again, feed, "a JSON feed does not round-trip exactly");
}

/// What meshd does with a posted feed after reading it: validate every
/// version's enclosure and entry data, and merge each item with what it
/// holds (here: with itself, which must change nothing).
fn what_the_server_checks_next(feed: &Feed) {
    for item in &feed.items {
        for version in item.versions() {
            if let Some(content) = &version.body.enclosure {
                content_ref(content, 0, u64::MAX);
            }
            entry_data(&version.body);
        }
        let held = merge(None, item).expect("an item merges into nothing").item;
        let again = merge(Some(&held), item).expect("same sync id");
        assert!(!again.changed, "merging an item again changed it");
    }
}

/// Reads the entry data of a body. What is accepted keeps the rules, and
/// reads the same from its own JSON.
pub fn entry_data(body: &Body) {
    let Ok(entry) = EntryData::from_body(body) else {
        return;
    };
    assert_eq!(validate_name(&entry.name), Ok(()), "{entry:?}");
    assert_eq!(entry.mode & !0o7777, 0, "{entry:?}");
    assert_eq!(
        entry.xattr_values().len(),
        entry.xattrs.len(),
        "an accepted extended attribute has no value: {entry:?}"
    );
    let written = Body {
        data: Some(serde_json::to_value(&entry).expect("entry data always encodes")),
        ..body.clone()
    };
    assert_eq!(EntryData::from_body(&written).as_ref(), Ok(&entry));
}

/// Validates a content reference; when it is valid, the chunks covering
/// `offset..offset + len` are exactly the ones that overlap it, in order.
pub fn content_ref(content: &ContentRef, offset: u64, len: u64) {
    if content.validate().is_err() {
        return;
    }
    let end = offset.saturating_add(len);
    let mut expected = Vec::new();
    let mut at = 0u64;
    for chunk in &content.chunks {
        let next = at + u64::from(chunk.size);
        if at < end && next > offset {
            expected.push((at, *chunk));
        }
        at = next;
    }
    assert_eq!(at, content.length, "a valid reference's chunks add up");
    let covering: Vec<_> = content.chunks_covering(offset, len).collect();
    assert_eq!(covering, expected, "chunks covering {offset}+{len}");
}

/// Feeds `stream` to an SSE parser at once and cut at `cuts`: the events
/// are the same, each field is one line, and whatever came before, an
/// event that follows a blank line still arrives.
pub fn sse_stream(stream: &[u8], cuts: &[usize]) {
    let whole = SseParser::default().push(stream);
    let mut parser = SseParser::default();
    let mut pieces = Vec::new();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([stream.len()]) {
        pieces.extend(parser.push(&stream[from..cut]));
        from = cut;
    }
    assert_eq!(pieces, whole, "the events depend on how the stream was cut");
    let after = parser.push(b"\n\ndata: end\n\n");
    assert_eq!(
        after.last().map(|e| e.data.as_str()),
        Some("end"),
        "the stream stopped: {after:?}"
    );
    for SseEvent { id, event, .. } in &whole {
        for field in [id, event].into_iter().flatten() {
            assert!(
                !field.contains(['\n', '\r']),
                "a field spans lines: {field:?}"
            );
        }
    }
}

/// Merges two items with one sync id in both orders and checks the FeedSync
/// properties: the result does not depend on which side is local, no
/// version beats its winner, merging again (either input, or the result)
/// changes nothing, and an update made on the result at `later` (after
/// every change either item holds) by an endpoint neither has seen wins
/// over both.
pub fn merge_pair(a: &Item, b: &Item, later: DateTime<Utc>) {
    let ab = merge(Some(a), b).expect("same sync id").item;
    let ba = merge(Some(b), a).expect("same sync id").item;
    assert_eq!(ab, ba, "the merge depends on which side is local");
    let all: Vec<&Version> = a.versions().chain(b.versions()).collect();
    for v in &all {
        assert!(!v.beats(&ab.current), "{v:?} beats the winner {ab:?}");
    }
    // The rule itself, pairwise: every version of either item is kept or
    // seen by a kept one (unless the winner keeps no conflicts), and no
    // kept version was seen by one kept before it.
    let kept: Vec<&Version> = ab.versions().collect();
    for v in &all {
        assert!(
            ab.current.sync.noconflicts || kept.contains(v) || kept.iter().any(|k| k.subsumes(v)),
            "{v:?} is neither kept nor seen in {ab:?}"
        );
    }
    for (i, later) in kept.iter().enumerate() {
        assert!(
            !kept[..i].iter().any(|k| k.subsumes(later)),
            "{later:?} is kept although a stronger kept version has seen it: {ab:?}"
        );
    }
    for again in [a, b, &ab] {
        let m = merge(Some(&ab), again).expect("same sync id");
        assert!(!m.changed, "merging {again:?} into {ab:?} changed it");
    }
    let by: String = all
        .iter()
        .flat_map(|v| v.sync.history.iter())
        .filter_map(|h| h.by.as_deref())
        .max()
        .map_or_else(|| "new".to_owned(), |newest| format!("{newest}+"));
    let mut updated = ab.clone();
    updated.update(Body::default(), false, later, &by);
    for incoming in [a, b] {
        let m = merge(Some(&updated), incoming).expect("same sync id");
        assert_eq!(
            m.item.current, updated.current,
            "an update on the merged item lost to {incoming:?}"
        );
        assert!(!m.changed, "merging {incoming:?} into an update changed it");
    }
}
