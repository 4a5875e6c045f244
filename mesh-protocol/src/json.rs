//! The JSON encoding of FeedSync items and feeds.
//!
//! An item is `{"sync": {...}, ...body}`: the `sync` object carries `id`,
//! `updates`, `deleted`, `noconflicts`, `history` (newest first) and
//! `conflicts` (whole versions, each with its own `sync` and no nested
//! conflicts); the other members are the [`Body`] fields. Unknown members
//! are refused rather than dropped, so nothing a client sends is lost
//! silently.

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

use crate::feed::{Feed, Skipped};
use crate::feedsync::{Body, History, HistoryList, Item, Sync, SyncId, Version};

/// A JSON item or feed that does not follow the encoding.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("malformed JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("item {index}: {message}")]
    Item { index: usize, message: String },
    #[error("{0}")]
    Shape(String),
}

#[derive(Serialize, Deserialize)]
struct HistoryWire<'a> {
    sequence: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    when: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncWire {
    id: String,
    updates: u32,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    noconflicts: bool,
    history: Vec<HistoryWire<'static>>,
    #[serde(default)]
    conflicts: Vec<VersionIn>,
}

/// What [`SyncWire`] reads, written from the item itself.
#[derive(Serialize)]
struct SyncOut<'a> {
    id: &'a str,
    updates: u32,
    deleted: bool,
    noconflicts: bool,
    #[serde(serialize_with = "history_out")]
    history: &'a HistoryList,
    #[serde(skip_serializing_if = "<[Version]>::is_empty")]
    #[serde(serialize_with = "conflicts_out")]
    conflicts: &'a [Version],
}

fn history_out<S: Serializer>(history: &&HistoryList, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(history.iter().map(|h| HistoryWire {
        sequence: h.sequence,
        when: h.when,
        by: h.by.as_deref().map(Cow::Borrowed),
    }))
}

fn conflicts_out<S: Serializer>(conflicts: &&[Version], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(conflicts.iter().map(|v| VersionOut {
        version: v,
        conflicts: &[],
    }))
}

/// A version as JSON: `sync` first (holding the item's `conflicts`, for
/// an item's current version), then the members of its body.
struct VersionOut<'a> {
    version: &'a Version,
    conflicts: &'a [Version],
}

impl Serialize for VersionOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Members<'a> {
            sync: SyncOut<'a>,
            #[serde(flatten)]
            body: &'a Body,
        }
        let sync = &self.version.sync;
        Members {
            sync: SyncOut {
                id: sync.id.as_str(),
                updates: sync.updates,
                deleted: sync.deleted,
                noconflicts: sync.noconflicts,
                history: &sync.history,
                conflicts: self.conflicts,
            },
            body: &self.version.body,
        }
        .serialize(s)
    }
}

fn sync_from_wire(w: SyncWire) -> Result<(Sync, Vec<VersionIn>), String> {
    let id = SyncId::parse(&w.id).map_err(|e| e.to_string())?;
    let history = w
        .history
        .into_iter()
        .map(|h| {
            if h.when.is_none() && h.by.is_none() {
                Err("a history record needs `when` or `by`".to_owned())
            } else {
                Ok(History {
                    sequence: h.sequence,
                    when: h.when,
                    by: h.by.map(Cow::into_owned),
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let history = HistoryList::try_from(history).map_err(|e| e.to_string())?;
    Ok((
        Sync {
            id,
            updates: w.updates,
            deleted: w.deleted,
            noconflicts: w.noconflicts,
            history,
        },
        w.conflicts,
    ))
}

/// One version as JSON (its `sync` has no `conflicts`), with its members
/// in sorted order: the text [`crate::feedsync::canonical_order`] breaks
/// ties by.
pub fn version_to_json(v: &Version) -> Value {
    serde_json::to_value(VersionOut {
        version: v,
        conflicts: &[],
    })
    .expect("a version always encodes")
}

/// An item, written as JSON by `serde` (`serde_json::to_string(&ItemJson(&item))`)
/// without building a [`Value`] first.
pub struct ItemJson<'a>(pub &'a Item);

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        VersionOut {
            version: &self.0.current,
            conflicts: &self.0.conflicts,
        }
        .serialize(s)
    }
}

/// An item as JSON text.
pub fn item_to_string(item: &Item) -> String {
    serde_json::to_string(&ItemJson(item)).expect("an item always encodes")
}

/// Parses an item from JSON text.
pub fn item_from_str(text: &str) -> Result<Item, String> {
    item_from(serde_json::from_str(text).map_err(|e| e.to_string())?)
}

/// One version's JSON object read straight into its parts, without a
/// [`Value`] in between: the `sync` member aside, every other member into
/// the body (which refuses members it does not know).
struct VersionIn {
    sync: Option<SyncWire>,
    body: Body,
}

impl<'de> Deserialize<'de> for VersionIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut sync = None;
        let body = Body::deserialize(BodyMembers {
            object: d,
            sync: &mut sync,
        })?;
        Ok(VersionIn { sync, body })
    }
}

/// A version's object, deserialized as its body: the `sync` member goes
/// to `sync` instead.
struct BodyMembers<'s, D> {
    object: D,
    sync: &'s mut Option<SyncWire>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for BodyMembers<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.object.deserialize_map(SyncAside {
            visitor,
            sync: self.sync,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SyncAside<'s, V> {
    visitor: V,
    sync: &'s mut Option<SyncWire>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for SyncAside<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(WithoutSync {
            members,
            sync: self.sync,
        })
    }
}

/// The members of a version's object but `sync`, which is read aside.
struct WithoutSync<'s, A> {
    members: A,
    sync: &'s mut Option<SyncWire>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutSync<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(MemberName(name)) = self.members.next_key()? {
            if name != "sync" {
                return seed.deserialize(name.into_deserializer()).map(Some);
            }
            if self.sync.is_some() {
                return Err(de::Error::duplicate_field("sync"));
            }
            let sync = self
                .members
                .next_value()
                .map_err(|e| de::Error::custom(format_args!("sync: {e}")))?;
            *self.sync = Some(sync);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.members.next_value_seed(seed)
    }
}

/// A member's name, borrowed from the input where it can be.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Name)
    }
}

/// A version whose `sync` was there, checked.
fn version_from(v: VersionIn) -> Result<(Sync, Vec<VersionIn>, Body), String> {
    let sync = v.sync.ok_or("the item has no `sync` member")?;
    let (sync, conflicts) = sync_from_wire(sync)?;
    Ok((sync, conflicts, v.body))
}

/// An item from its parsed parts: each conflict one version of the same
/// entry, without conflicts of its own.
fn item_from(v: VersionIn) -> Result<Item, String> {
    let (sync, conflicts, body) = version_from(v)?;
    let conflicts = conflicts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let conflict = |e| format!("conflict {i}: {e}");
            let (csync, nested, cbody) = version_from(c).map_err(conflict)?;
            if !nested.is_empty() {
                return Err(conflict(
                    "a conflict version cannot hold conflicts of its own".into(),
                ));
            }
            if csync.id != sync.id {
                return Err(conflict("its sync id differs from the item's".into()));
            }
            Ok(Version {
                sync: csync,
                body: cbody,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Item {
        current: Version { sync, body },
        conflicts,
    })
}

/// A feed's members; its items are [`ItemJson`] when written and each
/// item's text when read (then parsed alone, see [`feed_from_json`]).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedWire<I> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<crate::feedsync::Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sharing: Option<crate::feed::Sharing>,
    #[serde(default = "Vec::new")]
    items: Vec<I>,
    /// Entries of a posted feed that were not synced (answers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<Skipped>,
}

/// A feed as JSON text: `{"title", "id", "updated", "links", "sharing",
/// "items"}`.
pub fn feed_to_vec(feed: &Feed) -> Vec<u8> {
    serde_json::to_vec(&FeedWire {
        title: feed.title.clone(),
        id: feed.id.clone(),
        updated: feed.updated,
        links: feed.links.clone(),
        sharing: feed.sharing.clone(),
        items: feed.items.iter().map(ItemJson).collect(),
        skipped: feed.skipped.clone(),
    })
    .expect("a feed always encodes")
}

/// Parses a JSON feed. An item without a `sync` member is skipped and
/// reported in [`Feed::skipped`]; any other fault refuses the whole feed.
pub fn feed_from_json(bytes: &[u8]) -> Result<Feed, JsonError> {
    let wire: FeedWire<&RawValue> = serde_json::from_slice(bytes)?;
    let mut items = Vec::new();
    let mut skipped = wire.skipped;
    for (index, text) in wire.items.into_iter().enumerate() {
        let fault = |message| JsonError::Item { index, message };
        let unsynced = match serde_json::from_str::<VersionIn>(text.get()) {
            Ok(v) if v.sync.is_none() => v.body.atom_id,
            Ok(v) => {
                items.push(item_from(v).map_err(fault)?);
                continue;
            }
            // An object without `sync` is skipped whatever else it holds;
            // what is not JSON at all (nested too deep) is told as such.
            Err(e) => match serde_json::from_str::<Value>(text.get()) {
                Ok(Value::Object(members)) if !members.contains_key("sync") => members
                    .get("atom_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                Ok(_) => return Err(fault(e.to_string())),
                Err(syntax) => return Err(fault(syntax.to_string())),
            },
        };
        skipped.push(Skipped {
            index,
            atom_id: unsynced,
            reason: "the item has no sync metadata".into(),
        });
    }
    Ok(Feed {
        title: wire.title,
        id: wire.id,
        updated: wire.updated,
        links: wire.links,
        sharing: wire.sharing,
        items,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYNC: &str =
        r#""sync": {"id": "urn:uuid:1", "updates": 1, "history": [{"sequence": 1, "by": "A"}]}"#;

    fn feed_of(item: &str) -> Vec<u8> {
        format!(r#"{{"items": [{item}]}}"#).into_bytes()
    }

    #[test]
    fn an_item_reads_back_as_written_with_its_members_in_any_order() {
        let text = format!(r#"{{"title": {{"type": "text", "value": "a"}}, {SYNC}}}"#);
        let item = item_from_str(&text).unwrap();
        assert_eq!(item.current.sync.id.as_str(), "urn:uuid:1");
        assert_eq!(item_from_str(&item_to_string(&item)).unwrap(), item);
        let feed = feed_from_json(&feed_of(&text)).unwrap();
        assert_eq!(feed.items, vec![item]);
    }

    #[test]
    fn a_second_sync_or_an_unknown_member_refuses_the_item() {
        for bad in [
            format!(r#"{{{SYNC}, {SYNC}}}"#),
            format!(r#"{{{SYNC}, "colour": "red"}}"#),
            r#"{"sync": {"id": "urn:uuid:1", "updates": 1, "history": [], "extra": 1}}"#.to_owned(),
            format!(
                r#"{{"sync": {{"id": "urn:uuid:1", "updates": 1, "history": [{{"sequence": 1, "by": "A"}}], "conflicts": [{{{SYNC}, "sync": 1}}]}}}}"#
            ),
        ] {
            assert!(item_from_str(&bad).is_err(), "{bad}");
            assert!(
                matches!(
                    feed_from_json(&feed_of(&bad)),
                    Err(JsonError::Item { index: 0, .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_object_without_sync_is_skipped_whatever_it_holds() {
        for unsynced in [
            r#"{"atom_id": "tag:x", "title": {"type": "text", "value": "a"}}"#,
            r#"{"atom_id": "tag:x", "colour": "red"}"#,
        ] {
            let feed = feed_from_json(&feed_of(unsynced)).unwrap();
            assert!(feed.items.is_empty());
            assert_eq!(feed.skipped[0].atom_id.as_deref(), Some("tag:x"));
        }
        assert!(item_from_str(r#"{"atom_id": "tag:x"}"#).is_err());
    }

    #[test]
    fn a_conflict_of_a_conflict_is_refused() {
        let inner = format!(
            r#"{{"sync": {{"id": "urn:uuid:1", "updates": 1, "history": [{{"sequence": 1, "by": "B"}}], "conflicts": [{{{SYNC}}}]}}}}"#
        );
        let text = format!(
            r#"{{"sync": {{"id": "urn:uuid:1", "updates": 2, "history": [{{"sequence": 2, "by": "A"}}], "conflicts": [{inner}]}}}}"#
        );
        let e = item_from_str(&text).unwrap_err();
        assert!(e.contains("cannot hold conflicts"), "{e}");
    }

    #[test]
    fn the_canonical_text_of_a_version_has_its_members_sorted() {
        let text = format!(r#"{{"title": {{"type": "text", "value": "a"}}, {SYNC}}}"#);
        let item = item_from_str(&text).unwrap();
        let canonical = version_to_json(&item.current).to_string();
        assert!(
            canonical.starts_with(r#"{"sync":{"deleted":false,"history""#),
            "{canonical}"
        );
        assert!(item_to_string(&item).starts_with(r#"{"sync":{"id""#));
    }
}
