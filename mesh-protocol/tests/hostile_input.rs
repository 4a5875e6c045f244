//! What a peer can send, at its worst: a short proptest pass (it runs in CI,
//! in a few seconds) of the properties the cargo-fuzz targets in `fuzz/`
//! check at length, and the limits that keep hostile documents cheap.
//!
//! - The Atom and JSON readers, the SSE parser, entry data and content
//!   references never panic, on arbitrary bytes and on valid documents with
//!   bytes flipped, inserted and deleted: a refusal is an `Err`, and what is
//!   accepted round-trips (`common/checks.rs` says exactly what holds).
//! - A batch of chunks (`chunk_batch`) is refused or carries exactly the
//!   bytes it was decoded from.
//! - Merging arbitrary items — not only ones conforming endpoints make — in
//!   either order gives one item, merging again changes nothing, and an
//!   update on the result wins.
//! - Documents nested 100,000 deep are refused without overflowing the
//!   stack, and huge declared sizes are refused (or kept as numbers) without
//!   allocating them: a counting allocator checks the largest allocation.
//!
//! `PROPTEST_CASES` raises the number of cases for a longer run.

#[path = "common/checks.rs"]
mod checks;
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use chrono::{TimeZone, Utc};
use common::{feed, item_with, sync_id};
use mesh_protocol::atom::{read_feed, write_feed};
use mesh_protocol::chunk_batch;
use mesh_protocol::content::{ContentRef, Hash};
use mesh_protocol::feedsync::{Body, History, HistoryList, Item, Sync, SyncId, Version, merge};
use mesh_protocol::json::{feed_from_json, feed_to_vec};
use mesh_protocol::{ATOM_NS, FEEDSYNC_NS, MESH_NS};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};

/// Cases per property: enough to shake out the easy faults in a few seconds
/// of a debug build; the fuzz targets do the long search.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64),
        ..ProptestConfig::default()
    }
}

// --- Mutations of valid documents ----------------------------------------------------

/// Byte strings that take a parser somewhere interesting when dropped into
/// a document: markup, references, quotes, JSON punctuation, broken UTF-8,
/// numbers too large for their fields.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"</entry>",
    b"<entry>",
    b"<sx:sync id=\"x\" updates=\"1\">",
    b"<sx:conflicts>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x1b;",
    b"&#xD800;",
    b"&#x10FFFF;",
    b"&#99999999999;",
    b"&nope;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<!DOCTYPE feed [<!ENTITY e \"x\">]>",
    b"xmlns:sx=\"urn:other\"",
    b"xmlns=\"\"",
    b" mesh:implied=\"true\"",
    b"\"",
    b"'",
    b"=",
    b"\r",
    b"\n",
    b"\t",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"\"sync\":",
    b"\\u0000",
    b"\\ud800",
    b"\\",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-1",
    b"1e999",
    b"9999-12-31T23:59:60Z",
    b"+275760-09-13T00:00:00Z",
    b"urn:blake3:",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Flips one bit of the byte at the index.
    Flip(Index, u8),
    Insert(Index, &'static [u8]),
    /// Inserts one arbitrary byte.
    InsertByte(Index, u8),
    /// Deletes up to this many bytes.
    Delete(Index, usize),
    /// Copies a stretch of the document elsewhere (duplicated elements,
    /// attributes, members).
    Copy(Index, usize, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        3 => (any::<Index>(), select(TOKENS)).prop_map(|(at, t)| Mutation::Insert(at, t)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::InsertByte(at, b)),
        2 => (any::<Index>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<Index>(), 1usize..200, any::<Index>())
            .prop_map(|(from, n, to)| Mutation::Copy(from, n, to)),
    ]
}

fn mutate(mut doc: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = doc.len();
        match m {
            Mutation::Flip(at, bit) if len > 0 => doc[at.index(len)] ^= 1 << bit,
            Mutation::Flip(..) => {}
            Mutation::Insert(at, token) => {
                let at = at.index(len + 1);
                doc.splice(at..at, token.iter().copied());
            }
            Mutation::InsertByte(at, byte) => doc.insert(at.index(len + 1), *byte),
            Mutation::Delete(at, n) if len > 0 => {
                let at = at.index(len);
                doc.drain(at..(at + n).min(len));
            }
            Mutation::Delete(..) => {}
            Mutation::Copy(from, n, to) if len > 0 => {
                let from = from.index(len);
                let piece = doc[from..(from + n).min(len)].to_vec();
                let to = to.index(len + 1);
                doc.splice(to..to, piece);
            }
            Mutation::Copy(..) => {}
        }
    }
    doc
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    vec(mutation(), 1..8)
}

/// Bytes that look like markup or JSON often enough to get past the first
/// character, and arbitrary bytes.
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        vec(select(TOKENS), 0..64).prop_map(|tokens| tokens.concat()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_refused_or_read_consistently(bytes in arbitrary_bytes()) {
        checks::atom_document(&bytes);
        checks::json_document(&bytes);
    }

    #[test]
    fn mutated_atom_feeds_are_refused_or_read_consistently(
        feed in feed(),
        mutations in mutations(),
    ) {
        let doc = mutate(write_feed(&feed).into_bytes(), &mutations);
        checks::atom_document(&doc);
    }

    #[test]
    fn mutated_json_feeds_are_refused_or_read_consistently(
        feed in feed(),
        mutations in mutations(),
    ) {
        let valid = feed_to_vec(&feed);
        checks::json_document(&mutate(valid, &mutations));
    }

    #[test]
    fn chunk_batches_are_refused_or_carry_exactly_their_bytes(
        chunks in vec(vec(any::<u8>(), 1..64), 1..6),
        mutations in vec(mutation(), 0..4),
        raw in vec(any::<u8>(), 0..256),
    ) {
        let hashes: Vec<Hash> = chunks.iter().map(|c| Hash::of(c)).collect();
        let valid = chunk_batch::encode(hashes.iter().zip(chunks.iter().map(|c| &c[..])));
        for body in [mutate(valid, &mutations), raw] {
            let body = bytes::Bytes::from(body);
            if let Ok(decoded) = chunk_batch::decode(&body) {
                let again = chunk_batch::encode(decoded.iter().map(|(h, d)| (h, &d[..])));
                prop_assert_eq!(&again[..], &body[..]);
            }
        }
    }

    #[test]
    fn the_change_stream_reads_the_same_however_it_is_cut(
        stream in sse_stream(),
        cuts in vec(any::<usize>(), 0..8),
    ) {
        checks::sse_stream(&stream, &cuts);
    }

    #[test]
    fn entry_data_of_any_shape_is_refused_or_kept_whole(
        data in entry_data(),
        file in any::<bool>(),
    ) {
        let body = Body {
            data: Some(data),
            enclosure: file.then(ContentRef::empty),
            ..Body::default()
        };
        checks::entry_data(&body);
    }

    #[test]
    fn content_references_of_any_shape_are_refused_or_cover_their_bytes(
        reference in content_reference(),
        offset in any::<u64>(),
        len in any::<u64>(),
    ) {
        if let Ok(content) = serde_json::from_value::<ContentRef>(reference) {
            let within = content.length.checked_add(1).map_or(offset, |n| offset % n);
            checks::content_ref(&content, within, len);
            checks::content_ref(&content, offset, len);
        }
    }

    #[test]
    fn arbitrary_items_merge_the_same_in_either_order(
        (a, b) in sync_id().prop_flat_map(|id| (item_with(id.clone()), item_with(id))),
    ) {
        // After every `when` the strategies make (1970 to 2099).
        let later = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
        checks::merge_pair(&a, &b, later);
    }
}

const LINE_ENDS: &[&[u8]] = &[b"\n", b"\r\n", b"\r", b""];

/// Streams of SSE lines: fields, comments, blank lines, every line ending,
/// and UTF-8 that may be broken.
fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"data: {\"a\":1}".to_vec()),
        Just(b"data".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"id: 7".to_vec()),
        Just(b"event: resync".to_vec()),
        Just(b": heartbeat".to_vec()),
        Just(b"retry: 10".to_vec()),
        Just("data: é😀".as_bytes().to_vec()),
        Just(b"data: \xff\xfe".to_vec()),
        Just(b"id: \xe2\x82".to_vec()),
        Just(Vec::new()),
        vec(any::<u8>(), 0..12),
    ];
    let end = select(LINE_ENDS);
    vec((line, end), 0..16).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(line, end)| line.into_iter().chain(end.iter().copied()))
            .collect()
    })
}

/// A value from a list of interesting ones for each entry data member.
fn member(values: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.8, select(values))
}

/// JSON objects shaped like entry data, each member absent, valid or not.
fn entry_data() -> impl Strategy<Value = Value> {
    (
        (
            member(vec![
                json!("a.txt"),
                json!(""),
                json!("."),
                json!(".."),
                json!("a/b"),
                json!("a\u{0}b"),
                json!("x".repeat(256)),
                json!("é".repeat(127)),
                json!("bell\u{7}"),
                json!(7),
            ]),
            member(vec![json!("urn:uuid:p"), json!(null), json!(""), json!([])]),
            member(vec![
                json!("file"),
                json!("dir"),
                json!("symlink"),
                json!("fifo"),
                json!("char"),
                json!("File"),
                json!(null),
            ]),
            member(vec![
                json!(0o644),
                json!(0o7777),
                json!(0o10000),
                json!(-1),
                json!(4_294_967_296u64),
                json!(1.5),
                json!("644"),
            ]),
            member(vec![
                json!("2026-11-27T10:00:00.123456789Z"),
                json!("2026-11-27T10:00:00+14:00"),
                json!("1969-12-31T23:59:59Z"),
                json!("9999-12-31T23:59:59Z"),
                json!("2026-02-30T00:00:00Z"),
                json!("yesterday"),
                json!(0),
            ]),
        ),
        (
            member(vec![
                json!("/etc/passwd"),
                json!(""),
                json!("t".repeat(4097)),
                json!("a\u{0}"),
            ]),
            member(vec![json!(0), json!(u64::MAX), json!(-1)]),
            member(vec![
                json!({}),
                json!({"user.a": "00ff"}),
                json!({"user.a": "0"}),
                json!({"user.a": "zz"}),
                json!({"trusted.a": "00"}),
                json!({"user.a": 0}),
                json!({ format!("user.{}", "x".repeat(255)): "00" }),
            ]),
            member(vec![json!("urn:uuid:c"), json!(null), json!(false)]),
            member(vec![json!("unknown member"), json!(null)]),
        ),
    )
        .prop_map(
            |((name, parent, kind, mode, mtime), (target, rdev, xattrs, conflict_of, extra))| {
                let members = [
                    ("name", name),
                    ("parent", parent),
                    ("type", kind),
                    ("mode", mode),
                    ("mtime", mtime),
                    ("target", target),
                    ("rdev", rdev),
                    ("xattrs", xattrs),
                    ("conflict_of", conflict_of),
                    ("extra", extra),
                ];
                Value::Object(
                    members
                        .into_iter()
                        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                        .collect(),
                )
            },
        )
}

/// JSON content references with sizes and lengths at and beyond their
/// limits.
fn content_reference() -> impl Strategy<Value = Value> {
    let hash = "[0-9a-f]{64}|[0-9A-F]{64}|[0-9a-g]{63,65}";
    let size = prop_oneof![
        Just(json!(0)),
        Just(json!(4 * 1024 * 1024)),
        Just(json!(4 * 1024 * 1024 + 1)),
        Just(json!(u32::MAX)),
        Just(json!(u64::from(u32::MAX) + 1)),
        (1u32..10).prop_map(|n| json!(n)),
    ];
    let chunks = vec(
        (hash, size).prop_map(|(hash, size)| json!({"hash": hash, "size": size})),
        0..6,
    );
    let length = prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(0)),
        (0u64..40).prop_map(|n| json!(n)),
        Just(json!(-1)),
        Just(json!(1e30)),
    ];
    (hash, length, chunks).prop_map(|(hash, length, chunks)| {
        let sum: u64 = chunks
            .iter()
            .filter_map(|c| c["size"].as_u64())
            .fold(0, u64::saturating_add);
        // Often a length that adds up, so that valid references are common.
        let length = if length == json!(0) {
            json!(sum)
        } else {
            length
        };
        json!({"hash": hash, "length": length, "chunks": chunks})
    })
}

// --- Deep nesting ----------------------------------------------------------------

const DEEP: usize = 100_000;

fn atom_feed_around(entries: &str) -> String {
    format!(
        "<feed xmlns=\"{ATOM_NS}\" xmlns:sx=\"{FEEDSYNC_NS}\" xmlns:mesh=\"{MESH_NS}\"><title>t</title>{entries}</feed>"
    )
}

fn atom_entry(inside: &str) -> String {
    format!(
        "<entry><sx:sync id=\"urn:uuid:1\" updates=\"1\"><sx:history sequence=\"1\" by=\"A\"/></sx:sync>{inside}</entry>"
    )
}

/// Runs `check` on a thread with a small stack (256 KiB), so that recursion
/// proportional to the nesting would overflow it.
fn on_a_small_stack(check: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(check)
        .unwrap()
        .join()
        .expect("the check panicked or overflowed its stack");
}

#[test]
fn deeply_nested_xml_is_refused_wherever_it_is() {
    on_a_small_stack(|| {
        let closed = format!("{}{}", "<x>".repeat(DEEP), "</x>".repeat(DEEP));
        let xhtml = format!(
            "<content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">{closed}</div></content>"
        );
        for doc in [
            closed.clone(),
            atom_feed_around(&closed),
            atom_feed_around(&atom_entry(&xhtml)),
            atom_feed_around(&atom_entry(&format!(
                "<sx:conflicts>{}</sx:conflicts>",
                "<entry>".repeat(DEEP)
            ))),
        ] {
            let e = read_feed(doc.as_bytes()).expect_err("a document nested 100,000 deep");
            assert!(e.message.contains("nested more than"), "{e}");
        }
    });
}

#[test]
fn deeply_nested_json_is_refused_wherever_it_is() {
    on_a_small_stack(|| {
        let arrays = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
        let objects = format!("{}{}", "{\"a\":".repeat(DEEP), "}".repeat(DEEP));
        for deep in [&arrays, &objects] {
            let data = atom_feed_around(&atom_entry(&format!("<mesh:data>{deep}</mesh:data>")));
            let e = read_feed(data.as_bytes()).expect_err("mesh:data nested 100,000 deep");
            assert!(e.message.contains("recursion limit"), "{e}");
            let item = |inside: &str| {
                format!(
                    "{{\"items\": [{{\"sync\": {{\"id\": \"urn:uuid:1\", \"updates\": 1, \"history\": [{{\"sequence\": 1, \"by\": \"A\"}}]}}{inside}}}]}}"
                )
            };
            // Where any JSON value may be, the parser's depth limit refuses
            // it, or the syntax error at the bottom of the unclosed objects
            // (each item is first scanned whole, without recursion);
            // elsewhere the limit or the first member of the wrong shape.
            for (doc, limit) in [
                (format!("{{\"items\": [{deep}]}}"), true),
                (item(&format!(", \"data\": {deep}")), true),
                (item(&format!(", \"links\": {deep}")), false),
                (deep.clone(), false),
            ] {
                let e = feed_from_json(doc.as_bytes()).expect_err("JSON nested 100,000 deep");
                let e = e.to_string();
                assert!(
                    !limit || e.contains("recursion limit") || e.contains("expected value"),
                    "{e}"
                );
            }
        }
    });
}

// --- Huge declared sizes ----------------------------------------------------------

/// The system allocator, noting the largest single allocation each thread
/// asks for, so a test can tell that a declared size was not allocated.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call goes to `System` unchanged; the thread-local is a
// `Cell<usize>` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and answers the largest single allocation it made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// Each document is a few hundred bytes: nothing reading it needs more
/// than this in one piece.
const SMALL: usize = 64 * 1024;

#[test]
fn huge_declared_sizes_are_refused_without_being_allocated() {
    let hash = "0".repeat(64);
    let enclosure = |length: &str, size: &str| {
        atom_feed_around(&atom_entry(&format!(
            "<link rel=\"enclosure\" href=\"urn:blake3:{hash}\" length=\"{length}\"><mesh:chunk hash=\"{hash}\" size=\"{size}\"/></link>"
        )))
    };
    // Read (the numbers fit their fields), then refused by validation.
    for (length, size) in [("18446744073709551615", "1"), ("4294967295", "4294967295")] {
        let doc = enclosure(length, size);
        let (feed, largest) = largest_allocation(|| read_feed(doc.as_bytes()));
        let feed = feed.unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert!(
            largest < SMALL,
            "reading {doc} allocated {largest} bytes at once"
        );
        let content = feed.items[0].current.body.enclosure.as_ref().unwrap();
        assert!(content.validate().is_err(), "{content:?}");
        assert_eq!(content.chunks_covering(0, u64::MAX).count(), 1);
    }
    // Numbers beyond their fields are refused as they are read.
    for (length, size) in [
        ("18446744073709551616", "1"),
        ("1", "4294967296"),
        ("1", "-1"),
    ] {
        let doc = enclosure(length, size);
        let (read, largest) = largest_allocation(|| read_feed(doc.as_bytes()));
        assert!(read.is_err(), "{doc}");
        assert!(
            largest < SMALL,
            "reading {doc} allocated {largest} bytes at once"
        );
    }
    let json_enclosure = |length: &str, size: &str| {
        format!(
            "{{\"items\": [{{\"sync\": {{\"id\": \"urn:uuid:1\", \"updates\": 4294967295, \"history\": [{{\"sequence\": 4294967295, \"by\": \"A\"}}]}}, \"enclosure\": {{\"hash\": \"{hash}\", \"length\": {length}, \"chunks\": [{{\"hash\": \"{hash}\", \"size\": {size}}}]}}}}]}}"
        )
    };
    for (length, size, accepted) in [
        ("18446744073709551615", "4294967295", true),
        ("18446744073709551616", "1", false),
        ("1e300", "1", false),
        ("1", "4294967296", false),
    ] {
        let doc = json_enclosure(length, size);
        let (read, largest) = largest_allocation(|| feed_from_json(doc.as_bytes()));
        assert!(
            largest < SMALL,
            "reading {doc} allocated {largest} bytes at once"
        );
        match read {
            Ok(feed) => {
                assert!(accepted, "{doc}");
                let content = feed.items[0].current.body.enclosure.as_ref().unwrap();
                assert!(content.validate().is_err(), "{content:?}");
            }
            Err(e) => assert!(!accepted, "{doc}: {e}"),
        }
    }
    // Other declared numbers (a link's length, a skipped entry's index) are
    // only numbers.
    let claims = format!(
        "{{\"items\": [], \"links\": [{}], \"skipped\": [{{\"index\": 18446744073709551615, \"reason\": \"r\"}}]}}",
        "{\"href\": \"h\", \"length\": 18446744073709551615}"
    );
    let (read, largest) = largest_allocation(|| feed_from_json(claims.as_bytes()));
    assert!(
        largest < SMALL,
        "reading {claims} allocated {largest} bytes at once"
    );
    assert_eq!(read.unwrap().links[0].length, Some(u64::MAX));
}

/// Regression: merging an item checked each version against every version
/// kept before it, so an item of 20,000 conflicts (about 9 MB of Atom, well
/// under meshd's body limit) took 6 s of a release build — inside the
/// server's write transaction, and again on every device. Each check is
/// constant time now; this test is where a quadratic merge would show.
#[test]
fn an_item_of_twenty_thousand_conflicts_merges_whole() {
    let id = SyncId::parse("urn:uuid:1").unwrap();
    let t = Utc.with_ymd_and_hms(2008, 1, 1, 10, 0, 0).unwrap();
    let version = |device: usize| Version {
        sync: Sync {
            id: id.clone(),
            updates: 2,
            deleted: false,
            noconflicts: false,
            history: HistoryList::try_from(vec![
                History::new(2, t, &format!("device-{device:05}")),
                History::new(1, t, "A"),
            ])
            .unwrap(),
        },
        body: Body::default(),
    };
    let item = Item {
        current: version(0),
        conflicts: (1..20_000).map(version).collect(),
    };
    let merged = merge(None, &item).unwrap().item;
    assert_eq!(merged.current, version(19_999), "the greatest `by` wins");
    assert_eq!(merged.conflicts.len(), 19_999);
    assert!(!merge(Some(&merged), &item).unwrap().changed);
}

/// Regression: a peer's `updates="4294967295"` made the next update of the
/// item overflow (see `feedsync::tests`); the update must still win.
#[test]
fn an_item_at_the_largest_update_count_can_still_be_updated() {
    let doc = atom_feed_around(
        "<entry><sx:sync id=\"urn:uuid:1\" updates=\"4294967295\"><sx:history sequence=\"4294967295\" when=\"2099-01-01T00:00:00Z\" by=\"Z\"/></sx:sync></entry>",
    );
    let feed = read_feed(doc.as_bytes()).unwrap();
    let theirs = &feed.items[0];
    let later = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    checks::merge_pair(theirs, theirs, later);
}
