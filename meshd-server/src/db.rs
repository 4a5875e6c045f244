//! The embedded SQLite database: one writer connection, a small pool of
//! readers (WAL lets them run beside the writer), versioned migrations, and
//! the bridge that runs blocking SQLite work off the async runtime. Opening
//! and migrating it is `mesh_cli::sqlite`'s, as for meshfs's cache.

use mesh_cli::sqlite::{self, Schema};
use rusqlite::{Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The server's schema. Never edit a migration that has shipped: add a new
/// one.
const SCHEMA: Schema = Schema {
    program: "meshd",
    migrations: MIGRATIONS,
};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created       INTEGER NOT NULL
);
CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    public_key TEXT,
    enrolled   INTEGER NOT NULL,
    last_seen  INTEGER,
    revoked    INTEGER
);
CREATE INDEX devices_user ON devices(user_id);
CREATE TABLE objects (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    owner   TEXT NOT NULL REFERENCES users(id),
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER,
    seq     INTEGER NOT NULL
);
CREATE TABLE members (
    object_id TEXT NOT NULL REFERENCES objects(id),
    user_id   TEXT NOT NULL REFERENCES users(id),
    role      TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'reader')),
    PRIMARY KEY (object_id, user_id)
);
CREATE INDEX members_user ON members(user_id);
CREATE TABLE entries (
    object_id TEXT NOT NULL REFERENCES objects(id),
    sync_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    item      TEXT NOT NULL,
    PRIMARY KEY (object_id, sync_id)
);
CREATE INDEX entries_seq ON entries(object_id, seq);
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    object_id TEXT,
    user_id   TEXT,
    change    TEXT NOT NULL
);
CREATE INDEX changes_object ON changes(object_id, seq);
CREATE INDEX changes_user ON changes(user_id, seq);
CREATE TABLE chunks (
    hash   TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    stored INTEGER NOT NULL
);
CREATE TABLE chunk_uploads (
    hash    TEXT NOT NULL REFERENCES chunks(hash),
    user_id TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (hash, user_id)
);
CREATE TABLE chunk_refs (
    object_id TEXT NOT NULL,
    sync_id   TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (object_id, sync_id, hash)
);
CREATE INDEX chunk_refs_hash ON chunk_refs(hash);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"#,
    // Sharing: invitations (tokens stored only as hashes) and the audit log
    // of membership changes.
    r#"
CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    object_id  TEXT NOT NULL REFERENCES objects(id),
    email      TEXT NOT NULL COLLATE NOCASE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'reader')),
    invited_by TEXT NOT NULL REFERENCES users(id),
    token_hash BLOB NOT NULL UNIQUE,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'declined', 'revoked')),
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    settled    INTEGER
);
CREATE INDEX invitations_object ON invitations(object_id, created);
CREATE INDEX invitations_email ON invitations(email, state);
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    role      TEXT
);
CREATE INDEX audit_object ON audit(object_id, seq);
"#,
    // News: per object (its members see it) or per user (object_id NULL).
    // A coalescing item is updated in place and keeps its id.
    r#"
CREATE TABLE news (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id TEXT,
    user_id   TEXT,
    actor     TEXT,
    device    TEXT,
    kind      TEXT NOT NULL,
    body      TEXT NOT NULL,
    first     INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    CHECK ((object_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX news_object ON news(object_id, id);
CREATE INDEX news_user ON news(user_id, id);
CREATE INDEX news_coalesce ON news(object_id, actor, kind, at);
"#,
    // The audit log holds an account's own events too (devices enrolled and
    // revoked, password changes: user_id set, object_id NULL); actor is
    // NULL when the server's administrator acted.
    r#"
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    object_id TEXT,
    user_id   TEXT,
    actor     TEXT,
    device    TEXT,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    role      TEXT,
    CHECK ((object_id IS NULL) <> (user_id IS NULL))
);
INSERT INTO audit_log (seq, at, object_id, actor, action, subject, role)
    SELECT seq, at, object_id, actor, action, subject, role FROM audit;
DROP TABLE audit;
ALTER TABLE audit_log RENAME TO audit;
CREATE INDEX audit_object ON audit(object_id, seq);
CREATE INDEX audit_user ON audit(user_id, seq);
CREATE INDEX audit_actor ON audit(actor, seq);
CREATE INDEX audit_subject ON audit(subject COLLATE NOCASE, seq);
"#,
    // A second factor per account: its TOTP secret, when it was enabled
    // (NULL while it waits for the owner's first code), the last step a
    // code was accepted for (none is accepted twice), its recovery codes
    // as hashes (a used one is deleted), and the factor a sign-in gave in
    // the audit log.
    r#"
CREATE TABLE totp (
    user_id   TEXT PRIMARY KEY REFERENCES users(id),
    secret    BLOB NOT NULL,
    last_step INTEGER,
    enabled   INTEGER
);
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id),
    code_hash BLOB NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE audit ADD COLUMN second_factor TEXT;
"#,
    // Apps: principals owned by a user, with a token (stored hashed) scoped
    // to the objects of app_objects, each granted by its owner or, through
    // an accepted invitation of the app, by an owner of the object.
    // app_scope is the one rule of what an app may do on an object now: its
    // grant, at most the role there of whoever granted it, nothing once
    // they are no member or the app is revoked. A change meant for one app
    // only (its revocation) has app_id set; an invitation of an app (to
    // its owner's address) has app_id set.
    r#"
CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created    INTEGER NOT NULL,
    revoked    INTEGER
);
CREATE INDEX apps_owner ON apps(owner, created);
CREATE TABLE app_objects (
    app_id    TEXT NOT NULL REFERENCES apps(id),
    object_id TEXT NOT NULL REFERENCES objects(id),
    role       TEXT NOT NULL,
    granted_by TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (app_id, object_id)
);
CREATE INDEX app_objects_object ON app_objects(object_id);
CREATE VIEW app_scope AS
    SELECT g.app_id, g.object_id,
           CASE WHEN (CASE g.role WHEN 'owner' THEN 2 WHEN 'editor' THEN 1 ELSE 0 END)
                  <= (CASE m.role WHEN 'owner' THEN 2 WHEN 'editor' THEN 1 ELSE 0 END)
                THEN g.role ELSE m.role END AS role
    FROM app_objects g
    JOIN apps a ON a.id = g.app_id AND a.revoked IS NULL
    JOIN members m ON m.object_id = g.object_id AND m.user_id = g.granted_by;
ALTER TABLE changes ADD COLUMN app_id TEXT;
CREATE INDEX changes_app ON changes(app_id, seq);
ALTER TABLE invitations ADD COLUMN app_id TEXT REFERENCES apps(id);
"#,
    // Storage quotas (see `store::usage`): a user's own quota in bytes,
    // NULL for the server's default, -1 for none; and their usage, the
    // bytes of the distinct chunks the objects they own refer to, kept by
    // triggers on chunk_refs in the transaction that changes them.
    // usage_chunks counts each owner's references to each chunk; `used`
    // changes when a count leaves or reaches zero. (An object's owner never
    // changes, and a deleted object's row stays, so its owner is found.)
    r#"
ALTER TABLE users ADD COLUMN quota INTEGER CHECK (quota IS NULL OR quota >= -1);
ALTER TABLE users ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
CREATE TABLE usage_chunks (
    user_id TEXT NOT NULL,
    hash    TEXT NOT NULL,
    refs    INTEGER NOT NULL,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
INSERT INTO usage_chunks (user_id, hash, refs)
    SELECT o.owner, r.hash, count(*) FROM chunk_refs r JOIN objects o ON o.id = r.object_id
    GROUP BY o.owner, r.hash;
UPDATE users SET used = coalesce((SELECT sum(c.size) FROM usage_chunks u
    JOIN chunks c ON c.hash = u.hash WHERE u.user_id = users.id), 0);
CREATE TRIGGER chunk_ref_added AFTER INSERT ON chunk_refs BEGIN
    INSERT INTO usage_chunks (user_id, hash, refs)
        SELECT owner, NEW.hash, 1 FROM objects WHERE id = NEW.object_id
        ON CONFLICT (user_id, hash) DO UPDATE SET refs = refs + 1;
    UPDATE users SET used = used + coalesce((SELECT size FROM chunks WHERE hash = NEW.hash), 0)
        WHERE id = (SELECT owner FROM objects WHERE id = NEW.object_id)
          AND (SELECT refs FROM usage_chunks WHERE user_id = users.id AND hash = NEW.hash) = 1;
END;
CREATE TRIGGER chunk_ref_removed AFTER DELETE ON chunk_refs BEGIN
    UPDATE usage_chunks SET refs = refs - 1
        WHERE hash = OLD.hash AND user_id = (SELECT owner FROM objects WHERE id = OLD.object_id);
    UPDATE users SET used = used - coalesce((SELECT size FROM chunks WHERE hash = OLD.hash), 0)
        WHERE id = (SELECT owner FROM objects WHERE id = OLD.object_id)
          AND (SELECT refs FROM usage_chunks WHERE user_id = users.id AND hash = OLD.hash) = 0;
    DELETE FROM usage_chunks WHERE hash = OLD.hash AND refs = 0
        AND user_id = (SELECT owner FROM objects WHERE id = OLD.object_id);
END;
"#,
    // The entries a `files` news item counts as added, while it can still
    // take them back: one removed within the item's window was temporary.
    r#"
CREATE TABLE news_fresh (
    news_id INTEGER NOT NULL,
    sync_id TEXT NOT NULL,
    PRIMARY KEY (news_id, sync_id)
) WITHOUT ROWID;
"#,
    // Tombstone compaction (store::entries::compact): when an entry became
    // a tombstone without conflicts (server time, ms; NULL while it is
    // anything else), whether it has been compacted (kept for merging, no
    // longer served), and per object the highest sequence of a compacted
    // entry: a cursor below it can no longer be answered with a delta.
    // Tombstones already here count from now.
    r#"
ALTER TABLE entries ADD COLUMN deleted_at INTEGER;
ALTER TABLE entries ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE objects ADD COLUMN horizon INTEGER NOT NULL DEFAULT 0;
UPDATE entries SET deleted_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
    WHERE json_extract(item, '$.sync.deleted') = 1
      AND json_extract(item, '$.sync.conflicts') IS NULL;
CREATE INDEX entries_tombstones ON entries(deleted_at) WHERE deleted_at IS NOT NULL;
"#,
    // Small chunks' bytes, kept in the database (store::chunks::kept_inline):
    // in a table of their own so that scans of `chunks` stay small, gone
    // with their chunk.
    r#"
CREATE TABLE chunk_data (
    hash TEXT PRIMARY KEY REFERENCES chunks(hash) ON DELETE CASCADE,
    data BLOB NOT NULL
);
"#,
];

const READERS: usize = 4;

/// The database: cloneable handle shared by every request.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// No request waits for a checkpoint of the log (dropped, with a last
    /// checkpoint, before the writer closes).
    _checkpointer: sqlite::Checkpointer,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        let writer = sqlite::open(path, &SCHEMA)?;
        let checkpointer = sqlite::Checkpointer::start(&writer)?;
        Ok(Db {
            inner: Arc::new(Inner {
                _checkpointer: checkpointer,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                path: path.to_owned(),
            }),
        })
    }

    fn reader(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.inner.readers.lock().expect("reader pool").pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        sqlite::configure(&conn)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut pool = self.inner.readers.lock().expect("reader pool");
        if pool.len() < READERS {
            pool.push(conn);
        }
    }

    /// Runs `f` on a read-only connection, off the async runtime.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + From<anyhow::Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = db.reader()?;
            let out = f(&conn);
            db.give_back(conn);
            out
        })
        .await
        .map_err(|e| E::from(anyhow::anyhow!("database task failed: {e}")))?
    }

    /// Runs `f` in a write transaction, off the async runtime; commits when
    /// `f` succeeds and rolls back when it fails.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + From<anyhow::Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f))
            .await
            .map_err(|e| E::from(anyhow::anyhow!("database task failed: {e}")))?
    }

    /// [`Db::write`] for callers that are not async (the command line).
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
        F: FnOnce(&Transaction<'_>) -> Result<T, E>,
    {
        let mut conn = self.inner.writer.lock().expect("writer connection");
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Milliseconds since the Unix epoch, as the database stores times.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored time back as a UTC timestamp.
pub fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meshd.sqlite3");
        Db::open(&path).unwrap();
        // Reopening applies nothing and keeps the version.
        let db = Db::open(&path).unwrap();
        let v: i64 = db
            .read(|c| {
                Ok::<_, anyhow::Error>(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        drop(db);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Db::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let r: Result<(), anyhow::Error> = db
            .write(|tx| {
                tx.execute("INSERT INTO meta(key, value) VALUES ('x', 1)", [])?;
                anyhow::bail!("boom")
            })
            .await;
        assert!(r.is_err());
        let n: i64 = db
            .read(|c| {
                Ok::<_, anyhow::Error>(c.query_row("SELECT count(*) FROM meta", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
