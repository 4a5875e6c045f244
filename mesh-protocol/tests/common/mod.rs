//! Strategies both property-test files share: arbitrary feeds of arbitrary
//! items (any text, including markup characters, quotes, non-ASCII and
//! tab/newline/carriage return; absent and present optional fields; JSON
//! payloads; content references).

use chrono::{DateTime, TimeZone, Utc};
use mesh_protocol::content::{ChunkRef, ContentRef, Hash};
use mesh_protocol::feed::{Feed, Related, Sharing, Skipped};
use mesh_protocol::feedsync::{
    Body, Category, Content, History, HistoryList, Item, Link, Person, Sync, SyncId, Text,
    TextKind, Version,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::Value;

/// Text of any characters but controls, or of the characters that need care
/// in XML (including tab, newline and carriage return).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        "[<>&\"' a-z\\t\\n\\r\u{e9}\u{263a}\u{1F600}]{0,12}",
        "(\\]\\]>|<!\\[CDATA\\[|&amp;|&#13;|\\r\\n| )*",
    ]
}

fn optional<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn date() -> impl Strategy<Value = DateTime<Utc>> {
    // From 1970 to 2099, with nanoseconds.
    (0i64..4_102_444_800, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).unwrap())
}

fn escaped(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Well-formed XML content, as markup values hold.
fn markup() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_map(|t| escaped(&t)),
        (text(), text()).prop_map(|(a, b)| format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">{}<b class=\"{}\">x</b><br/></div>",
            escaped(&a),
            escaped(&b)
        )),
        text().prop_map(|t| format!(
            "\n  <svg xmlns=\"http://www.w3.org/2000/svg\"><![CDATA[{}]]></svg>\n",
            t.replace("]]>", "")
        )),
    ]
}

fn text_construct() -> impl Strategy<Value = Text> {
    prop_oneof![
        Just(TextKind::Text),
        Just(TextKind::Html),
        Just(TextKind::Xhtml),
        Just(TextKind::Media("text/plain".into())),
        Just(TextKind::Media("application/xml".into())),
        Just(TextKind::Media("image/svg+xml; charset=utf-8".into())),
    ]
    .prop_flat_map(|kind| {
        let value = if kind.is_markup() {
            markup().boxed()
        } else {
            text().boxed()
        };
        value.prop_map(move |value| Text {
            kind: kind.clone(),
            value,
        })
    })
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn link() -> impl Strategy<Value = Link> {
    (
        text(),
        optional(prop_oneof![Just("enclosure".to_owned()), text()]),
        optional(text()),
        optional(text()),
        optional(text()),
        optional(any::<u64>()),
    )
        .prop_map(|(href, rel, media_type, hreflang, title, length)| Link {
            href,
            rel,
            media_type,
            hreflang,
            title,
            length,
        })
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 8]>().prop_map(|b| Hash::of(&b))
}

fn content_ref() -> impl Strategy<Value = ContentRef> {
    (hash(), any::<u64>(), vec((hash(), any::<u32>()), 0..3)).prop_map(|(hash, length, chunks)| {
        ContentRef {
            hash,
            length,
            chunks: chunks
                .into_iter()
                .map(|(hash, size)| ChunkRef { hash, size })
                .collect(),
        }
    })
}

fn body() -> impl Strategy<Value = Body> {
    let person = (text(), optional(text()), optional(text()))
        .prop_map(|(name, email, uri)| Person { name, email, uri });
    let content = prop_oneof![
        text_construct().prop_map(Content::Inline),
        (text(), optional(text()))
            .prop_map(|(src, media_type)| Content::OutOfLine { src, media_type }),
    ];
    let category =
        (text(), optional(text()), optional(text())).prop_map(|(term, scheme, label)| Category {
            term,
            scheme,
            label,
        });
    (
        (
            optional(text_construct()),
            optional(text()),
            optional(date()),
            optional(date()),
            vec(person, 0..3),
            optional(text_construct()),
        ),
        (
            optional(content),
            vec(link(), 0..3),
            vec(category, 0..3),
            optional(json()),
            optional(content_ref()),
        ),
    )
        .prop_map(
            |(
                (title, atom_id, updated, published, authors, summary),
                (content, links, categories, data, enclosure),
            )| Body {
                title,
                atom_id,
                updated,
                published,
                authors,
                summary,
                content,
                links,
                categories,
                data,
                enclosure,
            },
        )
}

fn history() -> impl Strategy<Value = History> {
    (any::<u32>(), optional(date()), optional(text()))
        .prop_filter("a record has `when` or `by`", |(_, when, by)| {
            when.is_some() || by.is_some()
        })
        .prop_map(|(sequence, when, by)| History { sequence, when, by })
}

fn version(id: SyncId) -> impl Strategy<Value = Version> {
    (
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        vec(history(), 1..4),
        body(),
    )
        .prop_map(move |(updates, deleted, noconflicts, history, mut body)| {
            // A body keeps the Atom id only when it differs from the sync id.
            body.atom_id = body.atom_id.filter(|a| a != id.as_str());
            Version {
                sync: Sync {
                    id: id.clone(),
                    updates,
                    deleted,
                    noconflicts,
                    history: HistoryList::try_from(history).unwrap(),
                },
                body,
            }
        })
}

/// An arbitrary sync id.
pub fn sync_id() -> impl Strategy<Value = SyncId> {
    "\\PC{1,24}".prop_map(|id| SyncId::parse(&id).unwrap())
}

/// An arbitrary item with this sync id: versions of arbitrary bodies and
/// histories, not necessarily ones a conforming endpoint would make.
pub fn item_with(id: SyncId) -> impl Strategy<Value = Item> {
    (version(id.clone()), vec(version(id), 0..3))
        .prop_map(|(current, conflicts)| Item { current, conflicts })
}

fn item() -> impl Strategy<Value = Item> {
    sync_id().prop_flat_map(item_with)
}

/// An arbitrary feed of arbitrary items.
pub fn feed() -> impl Strategy<Value = Feed> {
    let related = (text(), text(), optional(text())).prop_map(|(link, kind, title)| Related {
        link,
        kind,
        title,
    });
    let sharing = (
        optional(text()),
        optional(text()),
        optional(date()),
        vec(related, 0..3),
    )
        .prop_map(|(since, until, expires, related)| Sharing {
            since,
            until,
            expires,
            related,
        });
    let skipped =
        (any::<usize>(), optional(text()), text()).prop_map(|(index, atom_id, reason)| Skipped {
            index,
            atom_id,
            reason,
        });
    (
        optional(text()),
        optional(text()),
        optional(date()),
        vec(link(), 0..3),
        optional(sharing),
        vec(item(), 0..3),
        vec(skipped, 0..3),
    )
        .prop_map(
            |(title, id, updated, links, sharing, items, skipped)| Feed {
                title,
                id,
                updated,
                links,
                sharing,
                items,
                skipped,
            },
        )
}
