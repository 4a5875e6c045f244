//! The entries of an object's data feed: each stored as its merged FeedSync
//! item (winner and conflicts) with the sequence number of its last change,
//! plus the chunk references of every live version it holds.
//!
//! Tombstones do not pile up in the feed: one without conflicts, older than
//! the retention, is compacted ([`compact`]): kept with its history cut to
//! what merging reads, so that a stale copy posted later still loses to it,
//! but no longer served. The object's horizon is then the highest sequence
//! of a compacted entry; a cursor below it gets the complete feed
//! ([`page`]), since a delta would miss the deletions.

use mesh_protocol::api::{Change, ObjectId};
use mesh_protocol::feedsync::{Item, SyncId};
use mesh_protocol::json;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::changes::{self, Audience};
use crate::db::now_ms;

fn decode(text: &str) -> rusqlite::Result<Item> {
    json::item_from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// A page of a feed: entries changed after the cursor, oldest change first.
pub struct Page {
    /// The cursor the page starts from: the one asked for, or 0 when
    /// compaction has passed it (the page then starts the complete feed).
    pub since: u64,
    pub items: Vec<(u64, Item)>,
    /// Whether more entries follow the last one.
    pub more: bool,
}

/// The entries changed after `since` that are still served. A cursor
/// below the object's horizon may not have seen a tombstone that is
/// compacted now, so it gets the feed from its start instead.
pub fn page(
    conn: &Connection,
    object: ObjectId,
    since: u64,
    limit: usize,
) -> rusqlite::Result<Page> {
    let since = if since < horizon(conn, object)? {
        0
    } else {
        since
    };
    let mut stmt = conn.prepare_cached(
        "SELECT seq, item FROM entries WHERE object_id = ?1 AND seq > ?2 AND compacted = 0
         ORDER BY seq LIMIT ?3",
    )?;
    let mut items = stmt
        .query_map(
            params![object.to_string(), since as i64, limit as i64 + 1],
            |r| {
                let seq: i64 = r.get(0)?;
                let text: String = r.get(1)?;
                Ok((seq as u64, text))
            },
        )?
        .map(|r| r.and_then(|(seq, text)| Ok((seq, decode(&text)?))))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    Ok(Page { since, items, more })
}

/// The highest sequence of a compacted entry of the object (0: none).
pub fn horizon(conn: &Connection, object: ObjectId) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT horizon FROM objects WHERE id = ?1")?
        .query_row([object.to_string()], |r| r.get::<_, i64>(0))
        .optional()
        .map(|h| h.unwrap_or(0) as u64)
}

/// Compacts up to `limit` tombstones that have had no conflicts since
/// before `before_ms`: each keeps its sync id, counts and winner but only
/// the history records merging reads (`HistoryList::compacted`), is no
/// longer served, and raises its object's horizon to its sequence (which
/// it keeps: nothing changed for an endpoint that saw the tombstone).
/// Returns how many were compacted.
pub fn compact(tx: &Transaction<'_>, before_ms: i64, limit: usize) -> rusqlite::Result<usize> {
    let doomed = tx
        .prepare_cached(
            "SELECT object_id, sync_id, seq, item FROM entries
             WHERE deleted_at IS NOT NULL AND deleted_at < ?1 LIMIT ?2",
        )?
        .query_map(params![before_ms, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (object, sync_id, seq, text) in &doomed {
        let mut item = decode(text)?;
        item.current.sync.history = item.current.sync.history.compacted();
        tx.prepare_cached(
            "UPDATE entries SET item = ?3, deleted_at = NULL, compacted = 1
             WHERE object_id = ?1 AND sync_id = ?2",
        )?
        .execute(params![object, sync_id, json::item_to_string(&item)])?;
        tx.prepare_cached("UPDATE objects SET horizon = max(horizon, ?2) WHERE id = ?1")?
            .execute(params![object, seq])?;
    }
    Ok(doomed.len())
}

/// The sequence number of the object's latest entry change (0: none).
pub fn latest(conn: &Connection, object: ObjectId) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM entries WHERE object_id = ?1")?
        .query_row([object.to_string()], |r| r.get::<_, i64>(0))
        .map(|seq| seq as u64)
}

pub fn get(conn: &Connection, object: ObjectId, id: &SyncId) -> rusqlite::Result<Option<Item>> {
    conn.prepare_cached("SELECT item FROM entries WHERE object_id = ?1 AND sync_id = ?2")?
        .query_row(params![object.to_string(), id.as_str()], |r| {
            r.get::<_, String>(0)
        })
        .optional()?
        .map(|text| decode(&text))
        .transpose()
}

/// Stores the merged item, records its change, and replaces its chunk
/// references with those of its live versions. Returns the change's
/// sequence number.
pub fn put(tx: &Transaction<'_>, object: ObjectId, item: &Item) -> rusqlite::Result<u64> {
    let seq = changes::record(
        tx,
        Audience::Object(object),
        &Change::EntryChanged {
            object,
            entry: item.id().as_str().to_owned(),
        },
    )?;
    let text = json::item_to_string(item);
    let key = object.to_string();
    // Prepared once per connection: a post of thousands of entries runs
    // these once for each.
    // A tombstone without conflicts starts its retention; anything else,
    // a compacted entry brought back included, is served again.
    let deleted_at = (item.current.sync.deleted && item.conflicts.is_empty()).then(now_ms);
    tx.prepare_cached(
        "INSERT INTO entries (object_id, sync_id, seq, item, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (object_id, sync_id) DO UPDATE SET seq = excluded.seq, item = excluded.item,
             deleted_at = excluded.deleted_at, compacted = 0",
    )?
    .execute(params![key, item.id().as_str(), seq as i64, text, deleted_at])?;
    tx.prepare_cached("DELETE FROM chunk_refs WHERE object_id = ?1 AND sync_id = ?2")?
        .execute(params![key, item.id().as_str()])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO chunk_refs (object_id, sync_id, hash) VALUES (?1, ?2, ?3)",
    )?;
    for version in item.versions().filter(|v| !v.sync.deleted) {
        for chunk in version.body.enclosure.iter().flat_map(|c| &c.chunks) {
            insert.execute(params![key, item.id().as_str(), chunk.hash.to_hex()])?;
        }
    }
    Ok(seq)
}
