//! The metadata cache: one SQLite database (WAL) per device holding every
//! node the mount shows — Live Folder roots and their entries — with stable
//! inode numbers, POSIX attributes, the FeedSync item each local change is
//! based on, and the outbox order of changes not yet accepted by the server.
//! Directories list from here at once, online or not. Opening and migrating
//! it is `mesh_cli::sqlite`'s, as for meshd's database.

use mesh_cli::sqlite::{self, Schema};
use mesh_protocol::api::{ObjectId, Role};
use mesh_protocol::content::{ContentRef, Hash};
use mesh_protocol::feedsync::Item;
use mesh_protocol::folder::{EntryData, EntryKind, from_hex};
use mesh_protocol::json;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::LazyLock;

/// The inode of the mount's root, which lists the Live Folders.
pub const ROOT: u64 = 1;

/// The cache's schema. Never edit a migration that has shipped: add a new
/// one.
const SCHEMA: Schema = Schema {
    program: "meshfs",
    migrations: MIGRATIONS,
};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE nodes (
    ino         INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id   TEXT NOT NULL,
    sync_id     TEXT NOT NULL,
    parent      INTEGER NOT NULL,
    name        TEXT NOT NULL,
    data_parent TEXT,
    data_name   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0,
    mtime       INTEGER NOT NULL,
    ctime       INTEGER NOT NULL,
    atime       INTEGER NOT NULL,
    rdev        INTEGER NOT NULL DEFAULT 0,
    target      TEXT,
    content     TEXT,
    xattrs      TEXT NOT NULL DEFAULT '{}',
    item        TEXT,
    role        TEXT,
    dirty       INTEGER NOT NULL DEFAULT 0,
    staged      INTEGER NOT NULL DEFAULT 0,
    removed     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX nodes_entry ON nodes(object_id, sync_id);
CREATE INDEX nodes_dir ON nodes(parent, name);
CREATE INDEX nodes_dirty ON nodes(dirty) WHERE dirty > 0;
CREATE TABLE cursors (
    object_id TEXT PRIMARY KEY,
    since     INTEGER NOT NULL
);
CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO sqlite_sequence (name, seq) VALUES ('nodes', 1);
"#,
    r#"
ALTER TABLE nodes ADD COLUMN link_of INTEGER;
CREATE INDEX nodes_links ON nodes(link_of) WHERE link_of IS NOT NULL;
"#,
    r#"
ALTER TABLE nodes ADD COLUMN pinned INTEGER;
ALTER TABLE nodes ADD COLUMN dirty_at INTEGER;
ALTER TABLE nodes ADD COLUMN conflict_of TEXT;
CREATE INDEX nodes_pinned ON nodes(pinned) WHERE pinned IS NOT NULL;
"#,
    // Listing a directory pages by inode: no sort of all its children.
    r#"
CREATE INDEX nodes_listing ON nodes(parent, ino) WHERE removed = 0;
"#,
    r#"
ALTER TABLE nodes ADD COLUMN sent TEXT;
"#,
    // A directory's link count counts its subdirectories, at every
    // getattr of it (after each entry made in it): without this index
    // that read every child, so making n files took time in n².
    r#"
CREATE INDEX nodes_subdirs ON nodes(parent) WHERE removed = 0 AND kind = 'dir';
"#,
    // The Live Folder roots are read at every change of the open files
    // (awareness) and of the folder list: without this index, a read of
    // every node.
    r#"
CREATE INDEX nodes_roots ON nodes(ino) WHERE sync_id = '';
"#,
    // Bytes of a file's synced content that are holes (largest chunks of
    // zeros), so that `du` of a sparse file counts what is stored. Written
    // from the content at every save; 0 until then.
    r#"
ALTER TABLE nodes ADD COLUMN holes INTEGER NOT NULL DEFAULT 0;
"#,
    // Which chunks the nodes' content refers to, kept by triggers, and the
    // chunks a change of content or a removal let go of (`loose_chunks`):
    // those no node refers to any more leave the chunk cache when the
    // transaction commits (see `take_loose_chunks`), instead of waiting
    // for the LRU to reach them.
    r#"
CREATE TABLE node_chunks (
    ino  INTEGER NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (ino, hash)
) WITHOUT ROWID;
CREATE INDEX node_chunks_hash ON node_chunks(hash);
CREATE TABLE loose_chunks (hash TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT OR IGNORE INTO node_chunks
    SELECT n.ino, json_extract(c.value, '$.hash') FROM nodes n, json_each(n.content, '$.chunks') c;
CREATE TRIGGER node_content_added AFTER INSERT ON nodes WHEN new.content IS NOT NULL BEGIN
    INSERT OR IGNORE INTO node_chunks
        SELECT new.ino, json_extract(value, '$.hash') FROM json_each(new.content, '$.chunks');
END;
CREATE TRIGGER node_content_changed AFTER UPDATE OF content ON nodes
    WHEN old.content IS NOT new.content BEGIN
    DELETE FROM node_chunks WHERE ino = old.ino;
    INSERT OR IGNORE INTO node_chunks
        SELECT new.ino, json_extract(value, '$.hash') FROM json_each(new.content, '$.chunks');
    INSERT OR IGNORE INTO loose_chunks
        SELECT json_extract(value, '$.hash') FROM json_each(old.content, '$.chunks');
END;
CREATE TRIGGER node_removed AFTER DELETE ON nodes WHEN old.content IS NOT NULL BEGIN
    DELETE FROM node_chunks WHERE ino = old.ino;
    INSERT OR IGNORE INTO loose_chunks
        SELECT json_extract(value, '$.hash') FROM json_each(old.content, '$.chunks');
END;
"#,
    // A complete read of a folder's feed (the server compacted tombstones
    // past its cursor): the entries the server had listed before, not yet
    // seen in the read. Those still unseen at its end were deleted.
    r#"
CREATE TABLE resync_unseen (
    object_id TEXT NOT NULL,
    sync_id   TEXT NOT NULL,
    PRIMARY KEY (object_id, sync_id)
) WITHOUT ROWID;
"#,
];

/// One node: a Live Folder root (`sync_id` empty) or an entry of one.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub ino: u64,
    pub object: ObjectId,
    /// The entry's FeedSync id; empty for a Live Folder's root.
    pub sync_id: String,
    /// The inode of the directory that shows it.
    pub parent: u64,
    /// The name it is shown under (its entry name, unless a clash or an
    /// orphaned entry made the view differ).
    pub name: String,
    /// The parent and name its entry data records.
    pub data_parent: Option<String>,
    pub data_name: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Times in nanoseconds since the Unix epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub atime: i64,
    pub rdev: u64,
    pub target: Option<String>,
    /// A file's synced content (absent while only staged).
    pub content: Option<ContentRef>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The FeedSync item local changes are based on (as the server last
    /// confirmed it); `None` for an entry the server has never seen.
    pub item: Option<Item>,
    /// For a Live Folder root: the user's role.
    pub role: Option<Role>,
    /// Outbox position of a change not yet accepted by the server; 0 when
    /// clean.
    pub dirty: i64,
    /// Whether the content is in the staging area rather than chunks.
    pub staged: bool,
    /// Unlinked locally; kept until the deletion is pushed and it is closed.
    pub removed: bool,
    /// For an extra hard link: the inode it is another name of. Such a name
    /// is kept on this device only (other devices see the original name).
    pub link_of: Option<u64>,
    /// "Always keep on this device", set here; `None` inherits from the
    /// parent directory. Local to this device.
    pub pinned: Option<bool>,
    /// When the oldest change not yet pushed was made (ns), while dirty.
    pub dirty_at: Option<i64>,
    /// For a conflicted copy: the sync id of the entry whose concurrent
    /// version it keeps.
    pub conflict_of: Option<String>,
    /// The last version sent to the server whose answer never came: the
    /// server may have it, so the next version builds on it (see
    /// [`Node::base`]).
    pub sent: Option<Item>,
}

impl Node {
    /// The version this node's next change builds on: the last one sent,
    /// while the server may have it and the confirmed `item` does not
    /// include it; else `item`.
    pub fn base(&self) -> Option<&Item> {
        match (&self.sent, &self.item) {
            (Some(sent), Some(item)) if item.current.subsumes(&sent.current) => Some(item),
            (Some(sent), _) => Some(sent),
            (None, item) => item.as_ref(),
        }
    }

    /// A node not yet saved (`ino` 0): shown as `name` in `parent`, with
    /// default attributes and every time set to `now`.
    pub fn new(
        object: ObjectId,
        sync_id: String,
        parent: u64,
        name: String,
        kind: EntryKind,
        (uid, gid): (u32, u32),
        now: i64,
    ) -> Node {
        Node {
            ino: 0,
            object,
            sync_id,
            parent,
            data_name: name.clone(),
            name,
            data_parent: None,
            kind,
            mode: 0,
            uid,
            gid,
            size: 0,
            mtime: now,
            ctime: now,
            atime: now,
            rdev: 0,
            target: None,
            content: None,
            xattrs: BTreeMap::new(),
            item: None,
            role: None,
            dirty: 0,
            staged: false,
            removed: false,
            link_of: None,
            pinned: None,
            dirty_at: None,
            conflict_of: None,
            sent: None,
        }
    }

    pub fn is_folder_root(&self) -> bool {
        self.sync_id.is_empty()
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

fn conversion(
    idx: usize,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
}

/// The columns [`node`] reads, as a literal (for `concat!`: the statements
/// are written once, not at every call).
macro_rules! node_columns {
    () => {
        "ino, object_id, sync_id, parent, name, data_parent, data_name, kind, mode, uid, gid,
    size, mtime, ctime, atime, rdev, target, content, xattrs, item, role, dirty, staged, removed, link_of,
    pinned, dirty_at, conflict_of, sent"
    };
}

fn node(r: &Row<'_>) -> rusqlite::Result<Node> {
    let object: String = r.get(1)?;
    let content: Option<String> = r.get(17)?;
    let xattrs: String = r.get(18)?;
    let item: Option<String> = r.get(19)?;
    let role: Option<String> = r.get(20)?;
    let xattrs: BTreeMap<String, String> =
        serde_json::from_str(&xattrs).map_err(|e| conversion(18, e))?;
    let xattrs = xattrs
        .into_iter()
        .map(|(k, v)| Ok((k, from_hex(&v).ok_or_else(|| conversion(18, "bad hex"))?)))
        .collect::<rusqlite::Result<_>>()?;
    Ok(Node {
        ino: r.get::<_, i64>(0)? as u64,
        object: object.parse().map_err(|e| conversion(1, e))?,
        sync_id: r.get(2)?,
        parent: r.get::<_, i64>(3)? as u64,
        name: r.get(4)?,
        data_parent: r.get(5)?,
        data_name: r.get(6)?,
        kind: r
            .get::<_, String>(7)?
            .parse()
            .map_err(|e| conversion(7, e))?,
        mode: r.get(8)?,
        uid: r.get(9)?,
        gid: r.get(10)?,
        size: r.get::<_, i64>(11)? as u64,
        mtime: r.get(12)?,
        ctime: r.get(13)?,
        atime: r.get(14)?,
        rdev: r.get::<_, i64>(15)? as u64,
        target: r.get(16)?,
        content: content
            .map(|c| serde_json::from_str(&c).map_err(|e| conversion(17, e)))
            .transpose()?,
        xattrs,
        item: item.map(|i| item_from(&i, 19)).transpose()?,
        role: role.as_deref().and_then(Role::parse),
        dirty: r.get(21)?,
        staged: r.get(22)?,
        removed: r.get(23)?,
        link_of: r.get::<_, Option<i64>>(24)?.map(|i| i as u64),
        pinned: r.get(25)?,
        dirty_at: r.get(26)?,
        conflict_of: r.get(27)?,
        sent: r
            .get::<_, Option<String>>(28)?
            .map(|i| item_from(&i, 28))
            .transpose()?,
    })
}

fn item_from(text: &str, idx: usize) -> rusqlite::Result<Item> {
    json::item_from_str(text).map_err(|e| conversion(idx, e))
}

/// Opens the cache database, creating and migrating it as needed.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    Ok(sqlite::open(path, &SCHEMA)?)
}

pub fn get(conn: &Connection, ino: u64) -> rusqlite::Result<Option<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE ino = ?1"
    ))?
    .query_row([ino as i64], node)
    .optional()
}

/// The visible child `name` of directory `parent`.
pub fn child(conn: &Connection, parent: u64, name: &str) -> rusqlite::Result<Option<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE parent = ?1 AND name = ?2 AND removed = 0"
    ))?
    .query_row(params![parent as i64, name], node)
    .optional()
}

/// The visible children of `parent`, by inode, starting after `after`.
/// What a listing shows of a node: its attributes and how many links (a
/// file's extra hard links) or subdirectories (a directory's) it has —
/// without the entry's history, content reference or xattrs, whose
/// decoding is most of the cost of reading a whole node.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub ino: u64,
    pub object: ObjectId,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub atime: i64,
    pub rdev: u64,
    /// The length in bytes of a symbolic link's target.
    pub target_len: u64,
    pub link_of: Option<u64>,
    pub removed: bool,
    /// A directory's subdirectories; another node's extra links to it.
    pub links: u32,
    /// Whether a file's content is its staging copy.
    pub staged: bool,
    /// Bytes of a file's synced content that are holes.
    pub holes: u64,
}

impl Listed {
    /// The listing's view of a whole node, with its count of `links`.
    pub fn of(n: &Node, links: u32) -> Listed {
        Listed {
            ino: n.ino,
            object: n.object,
            kind: n.kind,
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            size: n.size,
            mtime: n.mtime,
            ctime: n.ctime,
            atime: n.atime,
            rdev: n.rdev,
            target_len: n.target.as_ref().map_or(0, |t| t.len() as u64),
            link_of: n.link_of,
            removed: n.removed,
            links,
            staged: n.staged,
            holes: n.content.as_ref().map_or(0, |c| c.zero_bytes()),
        }
    }
}

/// What [`listed_row`] reads, from `nodes n` (a literal, as
/// [`node_columns`]).
macro_rules! listed_columns {
    () => {
        "ino, object_id, name, kind, mode, uid, gid, size, mtime, ctime, atime, rdev,
    length(CAST(target AS BLOB)), link_of, removed,
    CASE WHEN kind = 'dir'
         THEN (SELECT count(*) FROM nodes s
                WHERE s.parent = n.ino AND s.removed = 0 AND s.kind = 'dir')
         ELSE (SELECT count(*) FROM nodes l
                WHERE l.link_of = n.ino AND l.link_of IS NOT NULL)
    END,
    staged, holes"
    };
}

/// A row of [`listed_columns`]: the name and the listing's view.
fn listed_row(r: &Row<'_>) -> rusqlite::Result<(String, Listed)> {
    let object: String = r.get(1)?;
    let listed = Listed {
        ino: r.get::<_, i64>(0)? as u64,
        object: object.parse().map_err(|e| conversion(1, e))?,
        kind: r
            .get::<_, String>(3)?
            .parse()
            .map_err(|e| conversion(3, e))?,
        mode: r.get(4)?,
        uid: r.get(5)?,
        gid: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        mtime: r.get(8)?,
        ctime: r.get(9)?,
        atime: r.get(10)?,
        rdev: r.get::<_, i64>(11)? as u64,
        target_len: r.get::<_, Option<i64>>(12)?.unwrap_or(0) as u64,
        link_of: r.get::<_, Option<i64>>(13)?.map(|i| i as u64),
        removed: r.get(14)?,
        links: r.get(15)?,
        staged: r.get(16)?,
        holes: r.get::<_, i64>(17)? as u64,
    };
    Ok((r.get(2)?, listed))
}

/// The visible children of `parent` after inode `after`, in inode order,
/// as a listing shows them, each one's name and attributes handed to
/// `each` until it breaks: read one row at a time, so a reply that fills
/// up reads no more than it holds.
pub fn listing<E: From<rusqlite::Error>>(
    conn: &Connection,
    parent: u64,
    after: u64,
    mut each: impl FnMut(String, Listed) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        listed_columns!(),
        " FROM nodes n
          WHERE parent = ?1 AND removed = 0 AND ino > ?2 ORDER BY ino"
    ))?;
    let mut rows = stmt.query(params![parent as i64, after as i64])?;
    while let Some(row) = rows.next()? {
        let (name, listed) = listed_row(row)?;
        if each(name, listed)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The listing's view of one node, removed or not (what `getattr` needs,
/// without decoding the whole node).
pub fn listed(conn: &Connection, ino: u64) -> rusqlite::Result<Option<Listed>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        listed_columns!(),
        " FROM nodes n WHERE ino = ?1"
    ))?
    .query_row([ino as i64], |r| Ok(listed_row(r)?.1))
    .optional()
}

pub fn children(
    conn: &Connection,
    parent: u64,
    after: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE parent = ?1 AND removed = 0 AND ino > ?2 ORDER BY ino LIMIT ?3"
    ))?
    .query_map(params![parent as i64, after as i64, limit as i64], node)?
    .collect()
}

pub fn count_subdirs(conn: &Connection, parent: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT count(*) FROM nodes WHERE parent = ?1 AND removed = 0 AND kind = 'dir'",
    )?
    .query_row([parent as i64], |r| r.get::<_, i64>(0))
    .map(|n| n as u64)
}

pub fn has_children(conn: &Connection, parent: u64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM nodes WHERE parent = ?1 AND removed = 0)")?
        .query_row([parent as i64], |r| r.get(0))
}

/// The entries shown directly in the folder root `root` whose data names
/// another parent (see `Core::restore_displaced`).
pub fn displaced(conn: &Connection, root: u64) -> rusqlite::Result<Vec<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE parent = ?1 AND data_parent IS NOT NULL AND removed = 0 ORDER BY ino"
    ))?
    .query_map([root as i64], node)?
    .collect()
}

/// The entries whose data names `parent` (a sync id) as their parent,
/// wherever they show.
pub fn recorded_children(
    conn: &Connection,
    object: ObjectId,
    parent: &str,
) -> rusqlite::Result<Vec<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE object_id = ?1 AND data_parent = ?2"
    ))?
    .query_map(params![object.to_string(), parent], node)?
    .collect()
}

pub fn by_entry(
    conn: &Connection,
    object: ObjectId,
    sync_id: &str,
) -> rusqlite::Result<Option<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE object_id = ?1 AND sync_id = ?2"
    ))?
    .query_row(params![object.to_string(), sync_id], node)
    .optional()
}

/// The extra hard links of `ino`.
pub fn links_of(conn: &Connection, ino: u64) -> rusqlite::Result<Vec<Node>> {
    // `IS NOT NULL` lets the plan use the partial index whatever is
    // bound, so the statement is not prepared again on every call.
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE link_of = ?1 AND link_of IS NOT NULL ORDER BY ino"
    ))?
    .query_map([ino as i64], node)?
    .collect()
}

/// How many extra hard links `ino` has.
pub fn count_links(conn: &Connection, ino: u64) -> rusqlite::Result<u32> {
    conn.prepare_cached("SELECT count(*) FROM nodes WHERE link_of = ?1 AND link_of IS NOT NULL")?
        .query_row([ino as i64], |r| r.get(0))
}

/// What reading a file needs of its node, without decoding the rest: its
/// size, whether it is staged, and its content reference as stored (JSON).
pub fn read_state(
    conn: &Connection,
    ino: u64,
) -> rusqlite::Result<Option<(u64, bool, Option<String>)>> {
    conn.prepare_cached("SELECT size, staged, content FROM nodes WHERE ino = ?1")?
        .query_row([ino as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })
        .optional()
}

/// The Live Folder roots.
pub fn folder_roots(conn: &Connection) -> rusqlite::Result<Vec<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE sync_id = '' ORDER BY ino"
    ))?
    .query_map([], node)?
    .collect()
}

/// The columns [`save`] writes, in the order of its parameters.
const SAVED: [&str; 29] = [
    "object_id",
    "sync_id",
    "parent",
    "name",
    "data_parent",
    "data_name",
    "kind",
    "mode",
    "uid",
    "gid",
    "size",
    "mtime",
    "ctime",
    "atime",
    "rdev",
    "target",
    "content",
    "xattrs",
    "item",
    "role",
    "dirty",
    "staged",
    "removed",
    "link_of",
    "pinned",
    "dirty_at",
    "conflict_of",
    "sent",
    "holes",
];

/// The insert of a node's [`SAVED`] columns, written once.
static INSERT_SAVED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO nodes ({}) VALUES ({})",
        SAVED.join(", "),
        (1..=SAVED.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
});

/// The read of a node's [`SAVED`] columns by inode, written once.
static SELECT_SAVED: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM nodes WHERE ino = ?1", SAVED.join(", ")));

/// Writes `n`; a node with `ino == 0` is inserted and gets its inode
/// number. An update writes only the columns whose value changed, and
/// nothing when none did: SQLite rewrites the entry of every index whose
/// columns an `UPDATE` names, changed or not, and the nodes table has
/// eight, so naming them all cost a page of the log each at every save.
pub fn save(tx: &Transaction<'_>, n: &mut Node) -> rusqlite::Result<()> {
    let xattrs = EntryData::encode_xattrs(&n.xattrs);
    let values = params![
        n.object.to_string(),
        n.sync_id,
        n.parent as i64,
        n.name,
        n.data_parent,
        n.data_name,
        n.kind.as_str(),
        n.mode,
        n.uid,
        n.gid,
        n.size as i64,
        n.mtime,
        n.ctime,
        n.atime,
        n.rdev as i64,
        n.target,
        n.content
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("content encodes")),
        serde_json::to_string(&xattrs).expect("xattrs encode"),
        n.item.as_ref().map(json::item_to_string),
        n.role.map(Role::as_str),
        n.dirty,
        n.staged,
        n.removed,
        n.link_of.map(|i| i as i64),
        n.pinned,
        n.dirty_at,
        n.conflict_of,
        n.sent.as_ref().map(json::item_to_string),
        n.content.as_ref().map_or(0, |c| c.zero_bytes() as i64),
    ];
    if n.ino == 0 {
        tx.prepare_cached(&INSERT_SAVED)?.execute(values)?;
        n.ino = tx.last_insert_rowid() as u64;
        return Ok(());
    }
    let ino = n.ino as i64;
    let stored: Vec<Value> = tx
        .prepare_cached(&SELECT_SAVED)?
        .query_row([ino], |r| (0..SAVED.len()).map(|i| r.get(i)).collect())?;
    let mut changed = Vec::new();
    for (i, (value, old)) in values.iter().zip(&stored).enumerate() {
        if !stored_as(value.to_sql()?, old) {
            changed.push(format!("{} = ?{}", SAVED[i], i + 1));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
    all.push(&ino);
    tx.prepare_cached(&format!(
        "UPDATE nodes SET {} WHERE ino = ?{}",
        changed.join(", "),
        SAVED.len() + 1
    ))?
    .execute(all.as_slice())?;
    Ok(())
}

/// Whether binding `new` would store `old` again (a parameter of another
/// kind than a plain value counts as a change).
fn stored_as(new: ToSqlOutput<'_>, old: &Value) -> bool {
    match new {
        ToSqlOutput::Borrowed(v) => v == ValueRef::from(old),
        ToSqlOutput::Owned(v) => v == *old,
        _ => false,
    }
}

pub fn delete(tx: &Transaction<'_>, ino: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM nodes WHERE ino = ?1")?
        .execute([ino as i64])?;
    Ok(())
}

/// Sets a directory's modification and change times, and nothing else: the
/// cheap write every entry made or removed in it needs, without reading
/// the node first as [`save`] does. Whether the node exists.
pub fn touch(tx: &Transaction<'_>, ino: u64, ns: i64) -> rusqlite::Result<bool> {
    let changed = tx
        .prepare_cached("UPDATE nodes SET mtime = ?2, ctime = ?2 WHERE ino = ?1")?
        .execute(params![ino as i64, ns])?;
    Ok(changed > 0)
}

/// The last outbox position taken. The core hands out the next ones
/// from memory ([`crate::mount::core::Core::mark_dirty`]): a counter kept
/// in a row would add a page of the log to every change's commit. Only
/// the order of the changes waiting matters, so the largest position
/// waiting is where to go on (an older version's counter row counts too).
pub fn last_outbox_position(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT max(coalesce((SELECT max(dirty) FROM nodes), 0),
                    coalesce((SELECT value FROM state WHERE key = 'outbox'), 0))",
        [],
        |r| r.get(0),
    )
}

/// Nodes with changes to push, oldest change first.
pub fn outbox(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE dirty > 0 ORDER BY dirty LIMIT ?1"
    ))?
    .query_map([limit as i64], node)?
    .collect()
}

/// The nodes of one Live Folder with changes to push, oldest change first.
pub fn outbox_of(conn: &Connection, object: ObjectId) -> rusqlite::Result<Vec<Node>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes WHERE dirty > 0 AND object_id = ?1 ORDER BY dirty"
    ))?
    .query_map([object.to_string()], node)?
    .collect()
}

pub fn cursor(conn: &Connection, object: ObjectId) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT since FROM cursors WHERE object_id = ?1")?
        .query_row([object.to_string()], |r| r.get::<_, i64>(0))
        .optional()
        .map(|c| c.unwrap_or(0) as u64)
}

pub fn set_cursor(tx: &Transaction<'_>, object: ObjectId, since: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO cursors (object_id, since) VALUES (?1, ?2)
         ON CONFLICT (object_id) DO UPDATE SET since = excluded.since",
    )?
    .execute(params![object.to_string(), since as i64])?;
    Ok(())
}

/// Starts a complete read of `object`'s feed: every entry the server has
/// listed (and this device not removed) is unseen until the read lists it.
pub fn begin_resync(tx: &Transaction<'_>, object: ObjectId) -> rusqlite::Result<()> {
    let key = object.to_string();
    tx.prepare_cached("DELETE FROM resync_unseen WHERE object_id = ?1")?
        .execute([&key])?;
    tx.prepare_cached(
        "INSERT INTO resync_unseen (object_id, sync_id)
         SELECT object_id, sync_id FROM nodes
          WHERE object_id = ?1 AND sync_id != '' AND item IS NOT NULL AND removed = 0",
    )?
    .execute([&key])?;
    Ok(())
}

/// Whether a complete read of `object`'s feed is under way.
pub fn resyncing(conn: &Connection, object: ObjectId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM resync_unseen WHERE object_id = ?1)")?
        .query_row([object.to_string()], |r| r.get(0))
}

/// The server listed `sync_id` during the complete read.
pub fn resync_seen(tx: &Transaction<'_>, object: ObjectId, sync_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM resync_unseen WHERE object_id = ?1 AND sync_id = ?2")?
        .execute(params![object.to_string(), sync_id])?;
    Ok(())
}

/// Ends the complete read: the entries it never listed.
pub fn end_resync(tx: &Transaction<'_>, object: ObjectId) -> rusqlite::Result<Vec<String>> {
    let key = object.to_string();
    let unseen = tx
        .prepare_cached("SELECT sync_id FROM resync_unseen WHERE object_id = ?1")?
        .query_map([&key], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    tx.prepare_cached("DELETE FROM resync_unseen WHERE object_id = ?1")?
        .execute([&key])?;
    Ok(unseen)
}

pub fn state(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT value FROM state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub fn set_state(tx: &Transaction<'_>, key: &str, value: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// Forgets everything cached about one Live Folder.
pub fn drop_object(tx: &Transaction<'_>, object: ObjectId) -> rusqlite::Result<Vec<u64>> {
    let inos: Vec<u64> = tx
        .prepare("SELECT ino FROM nodes WHERE object_id = ?1")?
        .query_map([object.to_string()], |r| {
            r.get::<_, i64>(0).map(|i| i as u64)
        })?
        .collect::<rusqlite::Result<_>>()?;
    tx.execute(
        "DELETE FROM nodes WHERE object_id = ?1",
        [object.to_string()],
    )?;
    tx.execute(
        "DELETE FROM cursors WHERE object_id = ?1",
        [object.to_string()],
    )?;
    tx.execute(
        "DELETE FROM resync_unseen WHERE object_id = ?1",
        [object.to_string()],
    )?;
    Ok(inos)
}

/// How many nodes have changes not yet pushed, and when the oldest of
/// those changes was made (ns).
pub fn pending(conn: &Connection) -> rusqlite::Result<(u64, Option<i64>)> {
    conn.prepare_cached("SELECT count(*), min(dirty_at) FROM nodes WHERE dirty > 0")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
}

/// Adds one to a counter in the state table.
pub fn bump_state(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?1, 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
    )?
    .execute([key])?;
    Ok(())
}

/// The chunks this transaction's changes let go of that no node refers to
/// any more (the older versions of content, unless another file holds the
/// same chunk); empties the list.
/// Lets go of chunks outside of a node's content (uploaded for a version
/// that was never posted): those no node refers to leave the chunk cache
/// when the transaction commits, as superseded content does.
pub fn loosen_chunks(
    tx: &Transaction<'_>,
    hashes: impl IntoIterator<Item = Hash>,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO loose_chunks (hash) VALUES (?1)")?;
    for hash in hashes {
        insert.execute([hash.to_hex()])?;
    }
    Ok(())
}

pub fn take_loose_chunks(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Hash>> {
    // Most transactions let go of nothing; they write nothing here either
    // (emptying even an empty table writes its root page to the log).
    let any: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM loose_chunks)")?
        .query_row([], |r| r.get(0))?;
    if !any {
        return Ok(Vec::new());
    }
    let loose = tx
        .prepare_cached(
            "SELECT hash FROM loose_chunks l
              WHERE NOT EXISTS (SELECT 1 FROM node_chunks n WHERE n.hash = l.hash)",
        )?
        .query_map([], |r| r.get::<_, String>(0))?
        .filter_map(|hex| hex.map(|hex| Hash::parse(&hex).ok()).transpose())
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.prepare_cached("DELETE FROM loose_chunks")?.execute([])?;
    Ok(loose)
}

/// The content of every file kept on this device: pinned itself or below a
/// pinned directory, and not unpinned on the way (`root_pinned`: the whole
/// mount is pinned).
fn pinned_content(conn: &Connection, root_pinned: bool) -> rusqlite::Result<Vec<ContentRef>> {
    conn.prepare_cached(
        "WITH RECURSIVE kept(ino) AS (
            SELECT ino FROM nodes
             WHERE removed = 0 AND (pinned = 1 OR (?1 AND parent = ?2 AND pinned IS NOT 0))
            UNION
            SELECT n.ino FROM nodes n JOIN kept k ON n.parent = k.ino
             WHERE n.removed = 0 AND n.pinned IS NOT 0
         )
         SELECT n.content FROM nodes n JOIN kept USING (ino)
          WHERE n.kind = 'file' AND n.content IS NOT NULL",
    )?
    .query_map(params![root_pinned, ROOT as i64], |r| {
        let content: String = r.get(0)?;
        serde_json::from_str(&content).map_err(|e| conversion(0, e))
    })?
    .collect()
}

/// Forgets the pin settings of everything below directory `ino`, so that
/// they inherit from it.
pub fn clear_pins_below(tx: &Transaction<'_>, ino: u64) -> rusqlite::Result<()> {
    tx.execute(
        "WITH RECURSIVE below(ino) AS (
            SELECT ino FROM nodes WHERE parent = ?1
            UNION
            SELECT n.ino FROM nodes n JOIN below b ON n.parent = b.ino
         )
         UPDATE nodes SET pinned = NULL WHERE pinned IS NOT NULL AND ino IN below",
        [ino as i64],
    )?;
    Ok(())
}

/// Whether the whole mount is pinned (`meshfs pin` of the mountpoint).
pub fn root_pinned(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(state(conn, "root_pinned")?.unwrap_or(0) != 0)
}

/// The chunks of every pinned file: what the chunk cache must keep.
pub fn kept_chunks(conn: &Connection) -> rusqlite::Result<HashSet<Hash>> {
    let root = root_pinned(conn)?;
    let any: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM nodes WHERE pinned = 1)")?
        .query_row([], |r| r.get(0))?;
    if !root && !any {
        return Ok(HashSet::new());
    }
    Ok(pinned_content(conn, root)?
        .iter()
        .flat_map(|c| c.chunks.iter().map(|chunk| chunk.hash))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_an_unknown_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("meta.sqlite3")).unwrap();
        let object = ObjectId::generate();
        let mut inos = Vec::new();
        let tx = conn.transaction().unwrap();
        for kind in EntryKind::ALL {
            let mut n = Node::new(
                object,
                kind.as_str().into(),
                ROOT,
                kind.as_str().into(),
                kind,
                (0, 0),
                0,
            );
            save(&tx, &mut n).unwrap();
            inos.push((n.ino, kind));
        }
        tx.commit().unwrap();
        for &(ino, kind) in &inos {
            assert_eq!(get(&conn, ino).unwrap().unwrap().kind, kind);
        }
        // The cache keeps the kind as entry data spells it.
        let stored: String = conn
            .query_row(
                "SELECT kind FROM nodes WHERE ino = ?1",
                [inos[1].0 as i64],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, "dir");

        let (ino, _) = inos[0];
        conn.execute(
            "UPDATE nodes SET kind = 'door' WHERE ino = ?1",
            [ino as i64],
        )
        .unwrap();
        match get(&conn, ino) {
            Err(rusqlite::Error::FromSqlConversionFailure(7, _, e)) => {
                assert!(e.to_string().contains("\"door\""), "{e}")
            }
            other => panic!("an unknown kind read as {other:?}"),
        }
    }
}
