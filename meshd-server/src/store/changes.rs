//! The change log: every change a user can see gets the next sequence
//! number, in the transaction that makes the change. The change stream and
//! the feeds' cursors are both read from here.

use mesh_protocol::api::{AppId, Change, Event, ObjectId, UserId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::auth::Principal;
use crate::db::{from_ms, now_ms};

/// Who may see a change: the members of an object (and the apps in whose
/// scope it is), one user, or one app.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    Object(ObjectId),
    User(UserId),
    App(AppId),
}

impl Audience {
    /// The `(object_id, user_id, app_id)` columns that store this audience.
    fn columns(self) -> [Option<String>; 3] {
        match self {
            Audience::Object(o) => [Some(o.to_string()), None, None],
            Audience::User(u) => [None, Some(u.to_string()), None],
            Audience::App(a) => [None, None, Some(a.to_string())],
        }
    }
}

/// Appends a change and returns its sequence number. An object's change
/// also advances the object's own sequence (its feed's version), unless it
/// is awareness or news.
pub fn record(tx: &Transaction<'_>, audience: Audience, change: &Change) -> rusqlite::Result<u64> {
    let [object, user, app] = audience.columns();
    let body = serde_json::to_string(change).expect("a change always encodes");
    tx.prepare_cached(
        "INSERT INTO changes (at, object_id, user_id, app_id, change) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now_ms(), object, user, app, body])?;
    let seq = tx.last_insert_rowid();
    if let Some(object) = object.filter(|_| change.advances_object()) {
        tx.prepare_cached("UPDATE objects SET seq = ?1 WHERE id = ?2")?
            .execute(params![seq, object])?;
    }
    Ok(seq as u64)
}

/// The newest sequence number ever given out (0 for a new server).
pub fn head(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0) as u64)
}

/// Changes up to this sequence number have been pruned from the log.
pub fn pruned_through(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'changes_pruned_through'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0) as u64)
}

/// Drops changes older than `before_ms`, always keeping the newest one so
/// the head stays known. Returns how many were dropped.
pub fn prune(tx: &Transaction<'_>, before_ms: i64) -> rusqlite::Result<usize> {
    let last: Option<i64> = tx.query_row(
        "SELECT max(seq) FROM changes WHERE at < ?1 AND seq < (SELECT max(seq) FROM changes)",
        [before_ms],
        |r| r.get(0),
    )?;
    let Some(last) = last else { return Ok(0) };
    let n = tx.execute("DELETE FROM changes WHERE seq <= ?1", [last])?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('changes_pruned_through', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [last],
    )?;
    Ok(n)
}

/// A change as the log holds it: the event, and who may see it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub event: Event,
    pub audience: Audience,
}

const COLUMNS: &str = "seq, at, object_id, user_id, change, app_id";

/// Decodes rows of [`COLUMNS`]. One change this server cannot read
/// (written by a newer version, or damaged) must not stop everyone's
/// stream: it is logged and skipped.
fn decode(
    stmt: &mut rusqlite::CachedStatement<'_>,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Logged>> {
    let rows = stmt.query_map(args, |r| {
        let object: Option<String> = r.get(2)?;
        let user: Option<String> = r.get(3)?;
        let app: Option<String> = r.get(5)?;
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            [object, user, app],
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, at, columns, text) = row?;
        let audience = match columns {
            [Some(o), _, _] => o.parse().ok().map(Audience::Object),
            [None, Some(u), _] => u.parse().ok().map(Audience::User),
            [None, None, Some(a)] => a.parse().ok().map(Audience::App),
            [None, None, None] => None,
        };
        match (serde_json::from_str(&text), audience) {
            (Ok(change), Some(audience)) => out.push(Logged {
                event: Event {
                    seq: seq as u64,
                    at: from_ms(at),
                    change,
                },
                audience,
            }),
            (Err(e), _) => {
                tracing::error!(seq, error = %e, "skipping a change that cannot be read")
            }
            (_, None) => tracing::error!(seq, "skipping a change without a valid audience"),
        }
    }
    Ok(out)
}

/// Up to `limit` changes after `since`, whoever may see them, oldest first.
pub fn after(conn: &Connection, since: u64, limit: usize) -> rusqlite::Result<Vec<Logged>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    decode(&mut stmt, params![since as i64, limit as i64])
}

/// Up to `limit` changes after `since` that `who` may be shown now (a
/// user's device: the user's and their objects'; an app: its own and its
/// scope's), oldest first.
pub fn visible_since(
    conn: &Connection,
    who: Principal,
    since: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Logged>> {
    let (id, sql) = match who {
        Principal::Device(caller) => (
            caller.user.to_string(),
            "user_id = ?2 OR object_id IN (SELECT object_id FROM members WHERE user_id = ?2)",
        ),
        Principal::App(app) => (
            app.app.to_string(),
            "app_id = ?2 OR object_id IN (SELECT object_id FROM app_scope WHERE app_id = ?2)",
        ),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM changes WHERE seq > ?1 AND ({sql}) ORDER BY seq LIMIT ?3"
    ))?;
    decode(&mut stmt, params![since as i64, id, limit as i64])
}
