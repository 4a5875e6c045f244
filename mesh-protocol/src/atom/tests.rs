//! Unit tests of the Atom encoding: what is refused and where, what the
//! reading rules accept, and lossless round trips of everything a feed holds.

use super::*;
use crate::content::{ChunkRef, ContentRef, Hash};
use crate::feed::{Feed, Related, Sharing, Skipped};
use crate::feedsync::{
    Body, Category, Content, History, HistoryList, Item, Link, Person, SyncId, Text, TextKind,
    merge,
};
use crate::{ATOM_NS, FEEDSYNC_NS, MESH_NS};
use chrono::{DateTime, TimeZone, Utc};

const SYNC: &str = r#"<sx:sync id="urn:uuid:1" updates="1"><sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/></sx:sync>"#;

/// A feed around `entries`, the `entries` starting on line 3.
fn feed_xml(entries: &str) -> String {
    format!(
        "<feed xmlns=\"{ATOM_NS}\" xmlns:sx=\"{FEEDSYNC_NS}\" xmlns:mesh=\"{MESH_NS}\">\n\
         <title>t</title>\n{entries}\n</feed>"
    )
}

fn read(xml: &str) -> Feed {
    read_feed(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

fn only_item(xml: &str) -> Item {
    let mut feed = read(xml);
    assert_eq!(feed.items.len(), 1, "{feed:?}");
    feed.items.remove(0)
}

/// Reads `xml`, expecting an error whose text contains `needle`.
fn error(xml: &str, needle: &str) -> AtomError {
    let e = read_feed(xml.as_bytes()).expect_err("the document should be refused");
    assert!(
        e.to_string().contains(needle),
        "{e:?} does not mention {needle:?}"
    );
    e
}

fn t(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2008, 1, 1, 10, 0, s).unwrap()
}

fn round_trip(feed: &Feed) {
    let xml = write_feed(feed);
    assert_eq!(&read(&xml), feed, "{xml}");
}

#[test]
fn text_that_is_not_xml_is_refused() {
    let e = error("this is not XML", "not an XML document");
    assert_eq!(e.position.map(|p| (p.line, p.column)), Some((1, 1)));
    error("", "no root element");
    error("<feed", "not well-formed");
}

#[test]
fn deep_nesting_is_refused() {
    let deep = "<x>".repeat(100_000);
    error(&feed_xml(&deep), "elements nested more than 256 deep");
}

#[test]
fn a_truncated_document_is_refused() {
    let xml = feed_xml(&format!("<entry>{SYNC}</entry>"));
    for cut in [xml.len() - 3, xml.len() - 10, xml.len() / 2, 40] {
        let e = read_feed(&xml.as_bytes()[..cut]).expect_err("cut short");
        assert!(
            e.message.contains("cut short") || e.message.contains("not well-formed"),
            "{e}"
        );
        assert!(e.position.is_some());
    }
}

#[test]
fn a_root_other_than_an_atom_feed_is_refused() {
    error(
        r#"<rss version="2.0"><channel/></rss>"#,
        "root element is `rss`",
    );
    error("<feed><title>x</title></feed>", "not an Atom `feed`");
    error(
        r#"<feed xmlns="http://example.com/"/>"#,
        "not an Atom `feed`",
    );
    error(
        &format!(r#"<a:feed xmlns:a="{ATOM_NS}"/><a:feed xmlns:a="{ATOM_NS}"/>"#),
        "second root",
    );
}

#[test]
fn faults_name_their_line_and_column() {
    let e = error(
        &feed_xml(
            "<entry>\n    <sx:sync id=\"urn:uuid:1\" updates=\"1\">\n      <sx:history sequence=\"1\"/></sx:sync></entry>",
        ),
        "`sx:history` has neither `when` nor `by`",
    );
    assert!(
        e.to_string()
            .starts_with("line 5, column 7: `sx:history` has neither"),
        "{e}"
    );
}

#[test]
fn malformed_sync_metadata_is_refused() {
    let entry = |sync: &str| feed_xml(&format!("<entry><id>x</id>{sync}</entry>"));
    error(
        &entry(r#"<sx:sync updates="1"><sx:history sequence="1" by="A"/></sx:sync>"#),
        "`sx:sync` has no `id` attribute",
    );
    error(
        &entry(r#"<sx:sync id="a"><sx:history sequence="1" by="A"/></sx:sync>"#),
        "`sx:sync` has no `updates` attribute",
    );
    error(
        &entry(r#"<sx:sync id="a" updates="two"><sx:history sequence="1" by="A"/></sx:sync>"#),
        r#"`updates` of `sx:sync` is not a whole number: "two""#,
    );
    error(
        &entry(r#"<sx:sync id="a" updates="-1"><sx:history sequence="1" by="A"/></sx:sync>"#),
        "not a whole number",
    );
    error(
        &entry(
            r#"<sx:sync id="a" updates="1" deleted="yes"><sx:history sequence="1" by="A"/></sx:sync>"#,
        ),
        "`deleted` of `sx:sync` is not a boolean",
    );
    error(
        &entry(r#"<sx:sync id="a" updates="1"/>"#),
        "at least one sx:history",
    );
    error(
        &entry(r#"<sx:sync id="a" updates="1"><sx:history by="A"/></sx:sync>"#),
        "`sx:history` has no `sequence` attribute",
    );
    error(
        &entry(
            r#"<sx:sync id="a" updates="1"><sx:history sequence="1" when="yesterday"/></sx:sync>"#,
        ),
        "`when` of `sx:history` is not an RFC 3339 date",
    );
    error(
        &entry(r#"<sx:sync id="" updates="1"><sx:history sequence="1" by="A"/></sx:sync>"#),
        "invalid sync id",
    );
    error(&entry(&format!("{SYNC}{SYNC}")), "more than one `sx:sync`");
}

#[test]
fn malformed_conflicts_are_refused() {
    let with_conflicts = |conflicts: &str| {
        feed_xml(&format!(
            r#"<entry><sx:sync id="urn:uuid:1" updates="1"><sx:history sequence="1" by="A"/><sx:conflicts>{conflicts}</sx:conflicts></sx:sync></entry>"#
        ))
    };
    error(
        &with_conflicts("<entry><title>x</title></entry>"),
        "a conflict entry has no sx:sync",
    );
    error(
        &with_conflicts(&format!(
            r#"<entry><sx:sync id="urn:uuid:1" updates="1"><sx:history sequence="1" by="B"/><sx:conflicts><entry>{SYNC}</entry></sx:conflicts></sx:sync></entry>"#
        )),
        "a conflict cannot hold conflicts of its own",
    );
    error(
        &with_conflicts(
            r#"<entry><sx:sync id="urn:uuid:2" updates="1"><sx:history sequence="1" by="B"/></sx:sync></entry>"#,
        ),
        "a conflict has sync id urn:uuid:2 but its item has urn:uuid:1",
    );
}

#[test]
fn malformed_content_is_refused() {
    let entry = |body: &str| feed_xml(&format!("<entry>{body}{SYNC}</entry>"));
    let hash = Hash::of(b"x");
    error(
        &entry(&format!(
            r#"<link rel="enclosure" href="urn:blake3:{hash}" length="1"><mesh:chunk hash="xyz" size="1"/></link>"#
        )),
        r#"`hash` of `mesh:chunk` is not a BLAKE3 hash (64 hexadecimal digits): "xyz""#,
    );
    error(
        &entry(r#"<link rel="enclosure" href="urn:blake3:abc" length="1"/>"#),
        "`href` of `link` is not `urn:blake3:` and a BLAKE3 hash",
    );
    error(
        &entry(&format!(
            r#"<link rel="enclosure" href="urn:blake3:{hash}"/>"#
        )),
        "`link` has no `length` attribute",
    );
    error(
        &entry(r#"<mesh:data>{"a": 1,}</mesh:data>"#),
        "`mesh:data` does not hold valid JSON",
    );
    error(
        &entry("<updated>soon</updated>"),
        "`updated` is not an RFC 3339 date",
    );
    error(
        &entry("<title>a</title><title>b</title>"),
        "more than one `title`",
    );
    error(
        &entry("<author><email>a@b</email></author>"),
        "`author` has no `name`",
    );
    error(
        &entry("<link rel=\"self\"/>"),
        "`link` has no `href` attribute",
    );
    error(&entry("<category/>"), "`category` has no `term` attribute");
    error(&entry("<x:foo/>"), "undeclared prefix `x`");
    error(&entry("<title>&nbsp;</title>"), "unknown entity `&nbsp;`");
    error(
        &entry(r#"<link href="a" href="b"/>"#),
        "bad attribute in `<link>`",
    );
}

#[test]
fn an_entry_without_sync_is_skipped_and_reported() {
    let feed = read(&feed_xml(&format!(
        "<entry><id>urn:plain</id><title>not synced</title></entry>\n\
         <entry><id>x</id>{SYNC}</entry>\n\
         <entry><title>no id, bad date</title><updated>never</updated></entry>"
    )));
    assert_eq!(feed.items.len(), 1);
    assert_eq!(feed.items[0].id().as_str(), "urn:uuid:1");
    let reported: Vec<_> = feed
        .skipped
        .iter()
        .map(|s| (s.index, s.atom_id.as_deref()))
        .collect();
    assert_eq!(reported, [(0, Some("urn:plain")), (2, None)]);
    assert!(feed.skipped[0].reason.contains("sx:sync"));
    // The report travels in answers.
    round_trip(&feed);
}

#[test]
fn namespaces_are_resolved_not_prefixes() {
    let xml = format!(
        r#"<a:feed xmlns="urn:other" xmlns:a="{ATOM_NS}" xmlns:f="{FEEDSYNC_NS}">
                 <a:entry><a:title>hi</a:title><title>not atom</title>
                   <f:sync id="urn:uuid:1" updates="1"><f:history sequence="1" by="A"/></f:sync>
                 </a:entry>
                 <a:entry xmlns:sx="urn:not-feedsync"><a:id>y</a:id>
                   <sx:sync id="urn:uuid:2" updates="1"><sx:history sequence="1" by="A"/></sx:sync>
                 </a:entry>
               </a:feed>"#
    );
    let feed = read(&xml);
    assert_eq!(feed.items.len(), 1);
    assert_eq!(feed.items[0].current.body.title, Some(Text::plain("hi")));
    assert_eq!(feed.skipped.len(), 1);
    assert_eq!(feed.skipped[0].index, 1);
}

#[test]
fn readers_accept_what_the_rules_allow() {
    let item = only_item(&feed_xml(
        r#"<entry>
                 <sx:sync noconflicts="true" updates="3" id="urn:uuid:1">
                   <sx:history by="B" sequence="3"/>
                   <sx:history when="2008-01-01T12:00:05+02:00" sequence="2"/>
                   <sx:unknown><sx:history sequence="9" by="Z"/></sx:unknown>
                   <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
                 </sx:sync>
                 <title>first</title>
                 <contributor><name>C</name></contributor>
                 <ext:thing xmlns:ext="urn:ext"><ext:nested/>text</ext:thing>
                 <mesh:unknown/>
                 <!-- a comment --><?pi data?>
               </entry>"#,
    ));
    let sync = &item.current.sync;
    assert_eq!(
        (sync.updates, sync.deleted, sync.noconflicts),
        (3, false, true)
    );
    let records: Vec<_> = sync.history.iter().cloned().collect();
    assert_eq!(
        records,
        [
            History {
                sequence: 3,
                when: None,
                by: Some("B".into())
            },
            History {
                sequence: 2,
                when: Some(t(5)),
                by: None
            },
            History::new(1, t(0), "A"),
        ]
    );
    assert_eq!(
        item.current.body,
        Body {
            title: Some(Text::plain("first")),
            ..Body::default()
        }
    );
}

#[test]
fn text_constructs_keep_markup_and_unescape_text() {
    let xhtml = r#"<div xmlns="http://www.w3.org/1999/xhtml">a &amp; <b>b</b><br/></div>"#;
    let item = only_item(&feed_xml(&format!(
        r#"<entry>{SYNC}
                 <title type="html">&lt;b&gt;bold&lt;/b&gt; &#x263A;</title>
                 <summary><![CDATA[a < b]]> &amp; c</summary>
                 <content type="xhtml">{xhtml}</content>
               </entry>"#
    )));
    let body = &item.current.body;
    assert_eq!(
        body.title,
        Some(Text {
            kind: TextKind::Html,
            value: "<b>bold</b> \u{263A}".into()
        })
    );
    assert_eq!(body.summary, Some(Text::plain("a < b & c")));
    assert_eq!(
        body.content,
        Some(Content::Inline(Text {
            kind: TextKind::Xhtml,
            value: xhtml.into()
        }))
    );
    round_trip(&Feed {
        items: vec![item],
        ..Feed::default()
    });
}

fn sample_item() -> Item {
    let hash = Hash::of(b"hello");
    let body = Body {
        title: Some(Text::plain("a \"title\" <with> & 'quotes'\r\n\ttabs")),
        atom_id: Some("tag:example.com,2008:1".into()),
        updated: Some(t(7)),
        published: Some(t(1)),
        authors: vec![Person {
            name: "Ann <ann>".into(),
            email: Some("a&b@example.com".into()),
            uri: None,
        }],
        summary: Some(Text {
            kind: TextKind::Xhtml,
            value: "<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  x </div>".into(),
        }),
        content: Some(Content::OutOfLine {
            src: "http://example.com/?a=1&b=\"2\"".into(),
            media_type: Some("text/plain".into()),
        }),
        links: vec![
            Link {
                href: "http://example.com/movie.mp4".into(),
                rel: Some("enclosure".into()),
                media_type: None,
                hreflang: Some("en".into()),
                title: Some("line\nbreak\ttab\rreturn".into()),
                length: Some(12),
            },
            Link {
                href: "urn:blake3:looks-like-content-but-is-not-first".into(),
                rel: Some("enclosure".into()),
                media_type: None,
                hreflang: None,
                title: None,
                length: None,
            },
        ],
        categories: vec![Category {
            term: "t&c".into(),
            scheme: None,
            label: Some("<L>".into()),
        }],
        data: Some(serde_json::json!({"x": "</mesh:data>", "n": [1, 2.5, null]})),
        enclosure: Some(ContentRef {
            hash,
            length: 5,
            chunks: vec![ChunkRef { hash, size: 5 }],
        }),
    };
    let id = SyncId::parse("urn:uuid:1").unwrap();
    let mut item = Item::create(id, body, false, t(0), "A");
    item.delete(t(3), "dev\"ice<1>");
    item
}

#[test]
fn everything_in_a_body_round_trips() {
    let item = sample_item();
    round_trip(&Feed {
        title: Some("a & b".into()),
        id: Some("urn:feed".into()),
        updated: Some(t(9)),
        links: vec![Link {
            href: "http://example.com/feed".into(),
            rel: Some("self".into()),
            media_type: Some("application/atom+xml".into()),
            hreflang: None,
            title: None,
            length: None,
        }],
        sharing: Some(Sharing {
            since: Some("1".into()),
            until: None,
            expires: Some(t(30)),
            related: vec![Related {
                link: "http://example.com/all".into(),
                kind: "complete".into(),
                title: Some("All".into()),
            }],
        }),
        items: vec![item],
        skipped: vec![Skipped {
            index: 3,
            atom_id: None,
            reason: "no <sync>".into(),
        }],
    });
}

#[test]
fn the_content_reference_is_an_enclosure_link_with_chunks() {
    let xml = write_feed(&Feed {
        items: vec![sample_item()],
        ..Feed::default()
    });
    let hash = Hash::of(b"hello");
    assert!(xml.contains(&format!(
        r#"<link rel="enclosure" href="urn:blake3:{hash}" length="5" type="application/octet-stream">"#
    )));
    assert!(xml.contains(&format!(r#"<mesh:chunk hash="{hash}" size="5"/>"#)));
    assert!(xml.contains(r#"title="line&#10;break&#9;tab&#13;return""#));
}

#[test]
fn absent_title_and_updated_are_written_as_marked_stand_ins() {
    let id = SyncId::parse("urn:uuid:1").unwrap();
    let mut item = Item::create(id, Body::default(), false, t(4), "A");
    let feed = Feed {
        items: vec![item.clone()],
        ..Feed::default()
    };
    let xml = write_feed(&feed);
    assert!(
        xml.contains(r#"<title mesh:implied="true"></title>"#),
        "{xml}"
    );
    // The entry's stand-in is the newest `when`, the feed's the newest entry's.
    assert_eq!(
        xml.matches(r#"<updated mesh:implied="true">2008-01-01T10:00:04Z</updated>"#)
            .count(),
        2,
        "{xml}"
    );
    assert!(xml.contains("<id>urn:uuid:1</id>"));
    round_trip(&feed);

    // Without any `when`, the stand-in is the Unix epoch.
    item.current.sync.history = HistoryList::new(History {
        sequence: 1,
        when: None,
        by: Some("A".into()),
    });
    let xml = write_feed(&Feed {
        items: vec![item],
        ..Feed::default()
    });
    assert!(xml.contains(r#"<updated mesh:implied="true">1970-01-01T00:00:00Z</updated>"#));
}

#[test]
fn an_atom_id_equal_to_the_sync_id_reads_as_none() {
    let item = only_item(&feed_xml(&format!(
        "<entry><id>urn:uuid:1</id>{SYNC}</entry>"
    )));
    assert_eq!(item.current.body.atom_id, None);
    let item = only_item(&feed_xml(&format!("<entry><id>other</id>{SYNC}</entry>")));
    assert_eq!(item.current.body.atom_id.as_deref(), Some("other"));
}

#[test]
fn dates_are_read_in_any_offset_and_written_in_utc() {
    let item = only_item(&feed_xml(&format!(
        "<entry>{SYNC}<updated>2008-01-01T05:00:09.5-05:00</updated></entry>"
    )));
    let updated = t(9) + chrono::Duration::milliseconds(500);
    assert_eq!(item.current.body.updated, Some(updated));
    let xml = write_feed(&Feed {
        items: vec![item],
        ..Feed::default()
    });
    assert!(
        xml.contains("<updated>2008-01-01T10:00:09.500Z</updated>"),
        "{xml}"
    );
    assert!(xml.contains(r#"when="2008-01-01T10:00:00Z""#));
}

#[test]
fn markup_that_is_not_well_formed_is_written_as_text() {
    let mut item = sample_item();
    item.current.body.title = Some(Text {
        kind: TextKind::Xhtml,
        value: "<div>unclosed & bare".into(),
    });
    let xml = write_feed(&Feed {
        items: vec![item],
        ..Feed::default()
    });
    let read = read(&xml);
    assert_eq!(
        read.items[0].current.body.title,
        Some(Text {
            kind: TextKind::Xhtml,
            value: "&lt;div&gt;unclosed &amp; bare".into()
        })
    );
}

#[test]
fn the_written_feed_declares_the_namespaces() {
    let xml = write_feed(&Feed::default());
    assert!(xml.starts_with(&format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"{ATOM_NS}\" xmlns:sx=\"{FEEDSYNC_NS}\" xmlns:mesh=\"{MESH_NS}\">"
    )));
    round_trip(&Feed::default());
}

#[test]
fn conflicts_round_trip_inside_sync() {
    let id = SyncId::parse("urn:uuid:1").unwrap();
    let base = Item::create(id, Body::default(), false, t(0), "A");
    let mut a = base.clone();
    a.update(Body::default(), false, t(5), "A");
    let mut b = base;
    b.update(Body::default(), true, t(9), "B");
    let item = merge(Some(&a), &b).unwrap().item;
    assert_eq!(item.conflicts.len(), 1);
    round_trip(&Feed {
        items: vec![item],
        ..Feed::default()
    });
}

/// Whether every character of `xml` is one XML 1.0 allows, and every
/// character reference names one.
fn is_xml_1_0(xml: &str) -> bool {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    xml.chars().all(allowed)
        && xml.split("&#").skip(1).all(|reference| {
            let number = reference.split(';').next().unwrap_or_default();
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => number.parse(),
            };
            code.ok().and_then(char::from_u32).is_some_and(allowed)
        })
}

#[test]
fn characters_xml_cannot_hold_are_written_as_visible_escapes() {
    let name = "bell\u{7} esc\u{1b}[31m nul\0 line\nbreak del\u{7f} \u{fffe}";
    let id = SyncId::parse("urn:uuid:1").unwrap();
    let body = Body {
        title: Some(Text::plain(name)),
        authors: vec![Person {
            name: "Ann\u{1b}]0;x\u{7}".into(),
            email: None,
            uri: None,
        }],
        links: vec![Link {
            href: "http://example.com/".into(),
            rel: None,
            media_type: None,
            hreflang: None,
            title: Some("t\u{1}".into()),
            length: None,
        }],
        data: Some(serde_json::json!({"name": name, "type": "file"})),
        ..Body::default()
    };
    let item = Item::create(id, body, false, t(1), "A");
    let xml = write_feed(&Feed {
        title: Some("feed\u{1b}".into()),
        items: vec![item],
        ..Feed::default()
    });
    assert!(is_xml_1_0(&xml), "{xml}");
    assert!(!xml.contains("&#27;") && !xml.contains("&#7;"), "{xml}");
    assert!(
        xml.contains(r"bell\u{7} esc\u{1b}[31m nul\u{0} line"),
        "{xml}"
    );
    assert!(xml.contains(r#"title="t\u{1}""#), "{xml}");
    // Allowed controls stay character references.
    assert!(xml.contains("del&#127;"), "{xml}");

    let read = read(&xml);
    let body = &read.items[0].current.body;
    // The entry data is exact; texts read back as their visible escapes.
    assert_eq!(body.data.as_ref().unwrap()["name"], name);
    assert_eq!(
        body.title.as_ref().unwrap().value,
        "bell\\u{7} esc\\u{1b}[31m nul\\u{0} line\nbreak del\u{7f} \\u{fffe}"
    );
    assert_eq!(read.title.as_deref(), Some("feed\\u{1b}"));
}
