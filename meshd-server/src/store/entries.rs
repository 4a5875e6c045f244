//! The entries of an object's data feed: each stored as its merged FeedSync
//! item (winner and conflicts) with the sequence number of its last change,
//! plus the chunk references of every live version it holds.

use mesh_protocol::api::{Change, ObjectId};
use mesh_protocol::feedsync::{Item, SyncId};
use mesh_protocol::json;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::changes::{self, Audience};

fn decode(text: &str) -> rusqlite::Result<Item> {
    let value = serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    json::item_from_json(value).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// A page of a feed: entries changed after the cursor, oldest change first.
pub struct Page {
    pub items: Vec<(u64, Item)>,
    /// Whether more entries follow the last one.
    pub more: bool,
}

pub fn page(
    conn: &Connection,
    object: ObjectId,
    since: u64,
    limit: usize,
) -> rusqlite::Result<Page> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, item FROM entries WHERE object_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
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
    Ok(Page { items, more })
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
    let text = json::item_to_json(item).to_string();
    let key = object.to_string();
    // Prepared once per connection: a post of thousands of entries runs
    // these once for each.
    tx.prepare_cached(
        "INSERT INTO entries (object_id, sync_id, seq, item) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (object_id, sync_id) DO UPDATE SET seq = excluded.seq, item = excluded.item",
    )?
    .execute(params![key, item.id().as_str(), seq as i64, text])?;
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
