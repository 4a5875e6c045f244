//! Which chunks exist and who may read them. A user's *scope* is every chunk
//! referenced by a live entry of an object they are a member of, plus what
//! they uploaded themselves within the grace period; an app's is every
//! chunk referenced by a live entry of an object in its scope (apps do not
//! upload). Outside their scope a chunk does not exist for them, whether or
//! not the server holds it.

use mesh_protocol::api::UserId;
use mesh_protocol::content::Hash;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::auth::Principal;
use crate::db::now_ms;

/// The size of `hash` if it is stored and within `user`'s scope.
pub fn size_in_scope(
    conn: &Connection,
    user: UserId,
    hash: &Hash,
) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached(
        "SELECT c.size FROM chunks c WHERE c.hash = ?1 AND (
             EXISTS (SELECT 1 FROM chunk_uploads u WHERE u.hash = c.hash AND u.user_id = ?2)
          OR EXISTS (SELECT 1 FROM chunk_refs r JOIN members m ON m.object_id = r.object_id
                     WHERE r.hash = c.hash AND m.user_id = ?2))",
    )?
    .query_row(params![hash.to_hex(), user.to_string()], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|s| s.map(|s| s as u64))
}

/// The size of `hash` if it is stored and within `who`'s scope: a
/// device's user's, or an app's.
pub fn size_for(conn: &Connection, who: Principal, hash: &Hash) -> rusqlite::Result<Option<u64>> {
    let app = match who {
        Principal::Device(caller) => return size_in_scope(conn, caller.user, hash),
        Principal::App(app) => app.app,
    };
    conn.prepare_cached(
        "SELECT c.size FROM chunks c WHERE c.hash = ?1 AND EXISTS (
             SELECT 1 FROM chunk_refs r JOIN app_scope s ON s.object_id = r.object_id
             WHERE r.hash = c.hash AND s.app_id = ?2)",
    )?
    .query_row(params![hash.to_hex(), app.to_string()], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|s| s.map(|s| s as u64))
}

/// Chunks of at most this many bytes are kept in the database rather than
/// in the blob store, written by the transaction that records them: no
/// file, directory or sync of either for each (a small file is one small
/// chunk), and ordered in the log before the entries that refer to them.
/// SQLite reads blobs of this size faster than files.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Whether a chunk of `size` bytes is kept in the database.
pub fn kept_inline(size: u64) -> bool {
    size <= INLINE_MAX
}

/// Records that `user` uploaded (or re-uploaded) the verified chunk
/// `data`, keeping its bytes when they are [`kept_inline`] (the blob store
/// holds the others already).
pub fn record_upload(
    tx: &Transaction<'_>,
    user: UserId,
    hash: &Hash,
    data: &[u8],
) -> rusqlite::Result<()> {
    let now = now_ms();
    let size = data.len() as u64;
    tx.prepare_cached("INSERT OR IGNORE INTO chunks (hash, size, stored) VALUES (?1, ?2, ?3)")?
        .execute(params![hash.to_hex(), size as i64, now])?;
    if kept_inline(size) {
        tx.prepare_cached("INSERT OR IGNORE INTO chunk_data (hash, data) VALUES (?1, ?2)")?
            .execute(params![hash.to_hex(), data])?;
    }
    tx.prepare_cached(
        "INSERT INTO chunk_uploads (hash, user_id, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (hash, user_id) DO UPDATE SET at = excluded.at",
    )?
    .execute(params![hash.to_hex(), user.to_string(), now])?;
    Ok(())
}

/// The bytes of `hash` if the database keeps them (chunks stored before
/// small ones were kept inline are in the blob store only).
pub fn inline_data(conn: &Connection, hash: &Hash) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT data FROM chunk_data WHERE hash = ?1")?
        .query_row([hash.to_hex()], |r| r.get(0))
        .optional()
}

/// Drops upload records older than `before_ms`, then the chunks nothing
/// refers to any more (with the bytes kept inline), and returns the hashes
/// whose bytes may now go from the blob store (where it has them).
pub fn collect(tx: &Transaction<'_>, before_ms: i64) -> rusqlite::Result<Vec<Hash>> {
    tx.execute("DELETE FROM chunk_uploads WHERE at < ?1", [before_ms])?;
    let mut stmt = tx.prepare(
        "SELECT hash FROM chunks c WHERE stored < ?1
           AND NOT EXISTS (SELECT 1 FROM chunk_refs r WHERE r.hash = c.hash)
           AND NOT EXISTS (SELECT 1 FROM chunk_uploads u WHERE u.hash = c.hash)",
    )?;
    let doomed: Vec<String> = stmt
        .query_map([before_ms], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = tx.prepare("DELETE FROM chunks WHERE hash = ?1")?;
    let mut out = Vec::with_capacity(doomed.len());
    for hex in doomed {
        delete.execute([&hex])?;
        if let Ok(h) = Hash::parse(&hex) {
            out.push(h);
        }
    }
    Ok(out)
}
