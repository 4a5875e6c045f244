//! The JSON encoding of FeedSync items and feeds.
//!
//! An item is `{"sync": {...}, ...body}`: the `sync` object carries `id`,
//! `updates`, `deleted`, `noconflicts`, `history` (newest first) and
//! `conflicts` (whole versions, each with its own `sync` and no nested
//! conflicts); the other members are the [`Body`] fields. Unknown members
//! are refused rather than dropped, so nothing a client sends is lost
//! silently.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
struct HistoryWire {
    sequence: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    when: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncWire {
    id: String,
    updates: u32,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    noconflicts: bool,
    history: Vec<HistoryWire>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    conflicts: Vec<Value>,
}

fn sync_to_wire(sync: &Sync, conflicts: Vec<Value>) -> SyncWire {
    SyncWire {
        id: sync.id.as_str().to_owned(),
        updates: sync.updates,
        deleted: sync.deleted,
        noconflicts: sync.noconflicts,
        history: sync
            .history
            .iter()
            .map(|h| HistoryWire {
                sequence: h.sequence,
                when: h.when,
                by: h.by.clone(),
            })
            .collect(),
        conflicts,
    }
}

fn sync_from_wire(w: SyncWire) -> Result<(Sync, Vec<Value>), String> {
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
                    by: h.by,
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

fn with_sync(body: &Body, sync: SyncWire) -> Value {
    let mut map = match serde_json::to_value(body).expect("a body always encodes") {
        Value::Object(m) => m,
        _ => unreachable!("a body encodes as an object"),
    };
    let mut out = Map::new();
    out.insert(
        "sync".into(),
        serde_json::to_value(sync).expect("sync metadata always encodes"),
    );
    out.append(&mut map);
    Value::Object(out)
}

/// One version as JSON (its `sync` has no `conflicts`).
pub fn version_to_json(v: &Version) -> Value {
    with_sync(&v.body, sync_to_wire(&v.sync, Vec::new()))
}

/// An item as JSON.
pub fn item_to_json(item: &Item) -> Value {
    let conflicts = item.conflicts.iter().map(version_to_json).collect();
    with_sync(
        &item.current.body,
        sync_to_wire(&item.current.sync, conflicts),
    )
}

fn split(value: Value) -> Result<(SyncWire, Body), String> {
    let Value::Object(mut map) = value else {
        return Err("an item must be a JSON object".into());
    };
    let sync = map.remove("sync").ok_or("the item has no `sync` member")?;
    let sync: SyncWire = serde_json::from_value(sync).map_err(|e| format!("sync: {e}"))?;
    let body: Body = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    Ok((sync, body))
}

/// Parses one version (an element of `sync.conflicts`).
pub fn version_from_json(value: Value) -> Result<Version, String> {
    let (wire, body) = split(value)?;
    let (sync, conflicts) = sync_from_wire(wire)?;
    if !conflicts.is_empty() {
        return Err("a conflict version cannot hold conflicts of its own".into());
    }
    Ok(Version { sync, body })
}

/// Parses an item.
pub fn item_from_json(value: Value) -> Result<Item, String> {
    let (wire, body) = split(value)?;
    let (sync, conflicts) = sync_from_wire(wire)?;
    let conflicts = conflicts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let v = version_from_json(c).map_err(|e| format!("conflict {i}: {e}"))?;
            if v.sync.id != sync.id {
                return Err(format!("conflict {i}: its sync id differs from the item's"));
            }
            Ok(v)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Item {
        current: Version { sync, body },
        conflicts,
    })
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedWire {
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
    #[serde(default)]
    items: Vec<Value>,
    /// Entries of a posted feed that were not synced (answers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<Skipped>,
}

/// A feed as JSON: `{"title", "id", "updated", "links", "sharing", "items"}`.
pub fn feed_to_json(feed: &Feed) -> Value {
    serde_json::to_value(FeedWire {
        title: feed.title.clone(),
        id: feed.id.clone(),
        updated: feed.updated,
        links: feed.links.clone(),
        sharing: feed.sharing.clone(),
        items: feed.items.iter().map(item_to_json).collect(),
        skipped: feed.skipped.clone(),
    })
    .expect("a feed always encodes")
}

/// Parses a JSON feed. An item without a `sync` member is skipped and
/// reported in [`Feed::skipped`]; any other fault refuses the whole feed.
pub fn feed_from_json(bytes: &[u8]) -> Result<Feed, JsonError> {
    let wire: FeedWire = serde_json::from_slice(bytes)?;
    let mut items = Vec::new();
    let mut skipped = wire.skipped;
    for (index, value) in wire.items.into_iter().enumerate() {
        if value.get("sync").is_none() && value.is_object() {
            skipped.push(Skipped {
                index,
                atom_id: value
                    .get("atom_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                reason: "the item has no sync metadata".into(),
            });
            continue;
        }
        items.push(item_from_json(value).map_err(|message| JsonError::Item { index, message })?);
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
