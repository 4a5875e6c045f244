//! The filesystem core: every operation the mount offers, on inode numbers
//! and plain Rust types, with no kernel in sight — the FUSE layer only
//! translates to and from it, and unit tests drive it directly.
//!
//! Every change is applied to the metadata cache at once (local-first) and,
//! when it is something other devices should see, given an outbox position
//! in the same transaction; the pusher sends it to the server later. So an
//! operation never waits for the network, except the few that only the
//! server can do (creating or deleting a Live Folder) and reading content
//! that is not on this device yet.

mod apply;
pub mod attrs;
mod awareness;
mod content;
mod handles;
pub mod health;
pub mod namespace;
mod outbox;
mod pins;
mod recover;
pub mod status;
pub mod storage;
#[cfg(test)]
pub(crate) mod testing;

use mesh_protocol::api::ObjectId;
use mesh_protocol::folder::EntryKind;
use mesh_protocol::live::AwarenessEntry;
use rusqlite::{Connection, Transaction};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

use crate::client::MeshApi;
use crate::mount::error::{FsError, FsResult};
use crate::mount::fetch::Fetcher;
use crate::mount::meta::{self, Node, ROOT};

pub(crate) use apply::PageApplied;
pub use content::{OpenFile, Seek};
use handles::Handles;
use health::Health;
pub(crate) use outbox::Outgoing;
pub(crate) use recover::conflict_name;

/// What the kernel is told to forget when a change arrives from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// Attributes and cached pages of an inode.
    Inode(u64),
    /// A name in a directory (also a cached negative lookup).
    Entry { parent: u64, name: String },
}

/// Who the mount belongs to, and what it talks to.
pub struct Settings {
    /// The signed-in user's id (whose own folders are told from shared ones).
    pub user: String,
    /// This device's id: the `by` of every change it makes.
    pub device: String,
    /// This device's name, used in the names of conflicted copies.
    pub device_name: String,
    /// The owner shown for what the server brings (the mounting user).
    pub uid: u32,
    pub gid: u32,
}

/// Where the mount keeps files of its own on this device.
pub struct LocalDirs {
    /// Whole local copies of files being written.
    pub staging: std::path::PathBuf,
    /// Unpushed changes that can no longer be pushed.
    pub recovered: std::path::PathBuf,
}

/// The attributes of one inode, as `stat` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub ino: u64,
    pub kind: EntryKind,
    pub size: u64,
    /// 512-byte blocks stored (`st_blocks`): a file being written counts
    /// its local copy's, one from chunks its size less its holes.
    pub blocks: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// One directory entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct DirEntry {
    /// The offset to continue the listing after this entry.
    pub offset: u64,
    pub name: String,
    pub attr: Attr,
}

pub struct Core {
    pub(crate) db: Mutex<Connection>,
    pub(crate) fetcher: Arc<Fetcher>,
    pub(crate) staging: std::path::PathBuf,
    /// Where unpushed changes that can no longer be pushed are kept.
    pub(crate) recovered: std::path::PathBuf,
    pub(crate) api: Arc<dyn MeshApi>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) settings: Settings,
    pub(crate) handles: Handles,
    /// Wakes the task that publishes what is open here.
    pub(crate) open_changed: Arc<Notify>,
    /// The awareness documents of the Live Folders, as the server last
    /// reported them.
    awareness: Mutex<HashMap<ObjectId, Vec<AwarenessEntry>>>,
    /// Set when this device's own awareness must be published again.
    republish: AtomicBool,
    /// Inodes the pusher is sending right now: removing one must be pushed
    /// too, since the server may already have it.
    pushing: Mutex<HashSet<u64>>,
    /// Staging copies the running transaction no longer records: removed
    /// once it commits, before the cache is let go (see `Core::transact`).
    unstaged: Mutex<Vec<u64>>,
    /// Wakes the pusher.
    pub(crate) outbox_changed: Arc<Notify>,
    /// The next outbox position (see `meta::last_outbox_position`).
    outbox_next: AtomicI64,
    invalidations: std::sync::mpsc::Sender<Invalidation>,
    /// Wakes the worker that fetches pinned content.
    pub(crate) pins_changed: Arc<Notify>,
    /// Whether the server is reachable, since when, and the last fault.
    pub(crate) health: Health,
    /// The account's usage and quota on the server, as last heard.
    pub(crate) storage: storage::Storage,
    /// How many Live Folders this mount has made (see `folders_made`).
    folders_made: AtomicU64,
    /// Whether each Live Folder is read-only for the user (a cache of
    /// their roles; forgotten whenever the folder list is refreshed).
    read_only: Mutex<HashMap<ObjectId, bool>>,
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    to_ns(SystemTime::now())
}

pub fn to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

pub fn from_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

impl Core {
    pub fn new(
        db: Connection,
        fetcher: Arc<Fetcher>,
        dirs: LocalDirs,
        api: Arc<dyn MeshApi>,
        runtime: tokio::runtime::Handle,
        settings: Settings,
        invalidations: std::sync::mpsc::Sender<Invalidation>,
    ) -> std::io::Result<Core> {
        mesh_cli::private::create_dir(&dirs.staging)?;
        let health = Health::new(api.server());
        let last_position = meta::last_outbox_position(&db).map_err(std::io::Error::other)?;
        Ok(Core {
            db: Mutex::new(db),
            fetcher,
            staging: dirs.staging,
            recovered: dirs.recovered,
            api,
            runtime,
            settings,
            handles: Handles::default(),
            open_changed: Arc::new(Notify::new()),
            awareness: Mutex::default(),
            republish: AtomicBool::new(false),
            pushing: Mutex::default(),
            unstaged: Mutex::default(),
            outbox_changed: Arc::new(Notify::new()),
            outbox_next: AtomicI64::new(last_position + 1),
            invalidations,
            pins_changed: Arc::new(Notify::new()),
            health,
            storage: storage::Storage::default(),
            folders_made: AtomicU64::new(0),
            read_only: Mutex::default(),
        })
    }

    /// Runs `f` in one transaction of the metadata cache. The staging
    /// copies it drops ([`Core::drop_staging`]) are removed after it
    /// commits, while the cache is still held: a crash in between leaves a
    /// copy nothing records (harmless, replaced when the file is staged
    /// again), never a copy recorded but gone; and no write can stage the
    /// file anew before its old copy is removed. Likewise the chunks its
    /// changes let go of that no node refers to any more (see
    /// `meta::take_loose_chunks`) leave the chunk cache once it commits.
    pub(crate) fn transact<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> FsResult<T>,
    ) -> FsResult<T> {
        let mut db = self.db.lock().expect("metadata cache");
        let out = (|| {
            let tx = db.transaction()?;
            let out = f(&tx)?;
            let loose = meta::take_loose_chunks(&tx)?;
            tx.commit()?;
            Ok((out, loose))
        })();
        let unstaged = std::mem::take(&mut *self.unstaged.lock().expect("unstaged"));
        let out = out.map(|(out, loose)| {
            for ino in unstaged {
                let _ = std::fs::remove_file(self.staging_path(ino));
            }
            // Superseded content leaves the chunk cache at once.
            self.fetcher.cache.discard(&loose);
            out
        });
        drop(db);
        out.inspect_err(|e| self.note_full_disk(e))
    }

    /// After a failure for want of space on the device's disk, empties the
    /// chunk cache (everything in it is on the server), so that the next
    /// try finds room: the application still hears `ENOSPC` this time.
    pub(crate) fn note_full_disk(&self, e: &FsError) {
        if e.errno() == libc::ENOSPC {
            let freed = self.fetcher.cache.make_room();
            if freed > 0 {
                tracing::warn!(
                    freed,
                    "the disk of this device's home is full; emptied the chunk cache"
                );
            }
        }
    }

    /// Runs a read-only query on the metadata cache.
    pub(crate) fn query<T>(&self, f: impl FnOnce(&Connection) -> FsResult<T>) -> FsResult<T> {
        let db = self.db.lock().expect("metadata cache");
        f(&db)
    }

    /// Tells the kernel to forget something (from a dedicated thread: never
    /// from inside a request that the kernel waits on).
    pub(crate) fn invalidate(&self, what: Invalidation) {
        let _ = self.invalidations.send(what);
    }

    /// Tells the kernel to forget what a transaction changed, each thing
    /// once (a page of 1,000 new entries in one directory is one
    /// invalidation of that directory, not 1,000).
    pub(crate) fn invalidate_all(&self, all: Vec<Invalidation>) {
        let mut told = HashSet::new();
        for what in all {
            if told.insert(what.clone()) {
                self.invalidate(what);
            }
        }
    }

    pub(crate) fn node(conn: &Connection, ino: u64) -> FsResult<Node> {
        meta::get(conn, ino)?.ok_or(FsError::NotFound)
    }

    /// The attributes of the root, which lists the Live Folders.
    fn root_attr(&self, conn: &Connection) -> FsResult<Attr> {
        let t = from_ns(meta::state(conn, "root_mtime")?.unwrap_or(0));
        Ok(Attr {
            ino: ROOT,
            kind: EntryKind::Dir,
            size: 4096,
            blocks: 8,
            perm: 0o755,
            nlink: 2 + meta::count_subdirs(conn, ROOT)? as u32,
            uid: self.settings.uid,
            gid: self.settings.gid,
            rdev: 0,
            atime: t,
            mtime: t,
            ctime: t,
        })
    }

    pub(crate) fn attr_of(&self, conn: &Connection, n: &Node) -> FsResult<Attr> {
        if let Some(target) = n.link_of {
            return self.attr_of(conn, &Self::node(conn, target)?);
        }
        let links = match n.kind {
            EntryKind::Dir => meta::count_subdirs(conn, n.ino)? as u32,
            _ => meta::count_links(conn, n.ino)?,
        };
        self.listed_attr(conn, &meta::Listed::of(n, links))
    }

    /// The attributes of a node as a listing read it (an extra hard link
    /// shows the attributes of the node it links to).
    pub(crate) fn listed_attr(&self, conn: &Connection, l: &meta::Listed) -> FsResult<Attr> {
        if let Some(target) = l.link_of {
            return self.attr_of(conn, &Self::node(conn, target)?);
        }
        let nlink = match l.kind {
            EntryKind::Dir => 2 + l.links,
            _ => u32::from(!l.removed) + l.links,
        };
        let perm = if self.is_read_only(conn, l.object)? {
            l.mode & 0o7555
        } else {
            l.mode
        } as u16;
        let size = match l.kind {
            EntryKind::Dir => 4096,
            EntryKind::Symlink => l.target_len,
            _ => l.size,
        };
        let blocks = match l.kind {
            EntryKind::File if l.staged => self.staged_blocks(l.ino).unwrap_or(size.div_ceil(512)),
            EntryKind::File => size.saturating_sub(l.holes).div_ceil(512),
            _ => size.div_ceil(512),
        };
        Ok(Attr {
            ino: l.ino,
            kind: l.kind,
            size,
            blocks,
            perm,
            nlink,
            uid: l.uid,
            gid: l.gid,
            rdev: l.rdev,
            atime: from_ns(l.atime),
            mtime: from_ns(l.mtime),
            ctime: from_ns(l.ctime),
        })
    }

    /// Whether the user may only read the Live Folder of `object`.
    pub(crate) fn is_read_only(&self, conn: &Connection, object: ObjectId) -> FsResult<bool> {
        if let Some(read_only) = self.read_only.lock().expect("roles").get(&object) {
            return Ok(*read_only);
        }
        let read_only = meta::by_entry(conn, object, "")?
            .and_then(|root| root.role)
            .is_some_and(|role| !role.can_write());
        self.read_only
            .lock()
            .expect("roles")
            .insert(object, read_only);
        Ok(read_only)
    }

    /// How many Live Folders this mount has made so far: a folder list
    /// asked for before the count changed may lack the newest.
    pub(crate) fn folders_made(&self) -> u64 {
        self.folders_made.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets the cached roles (the folder list changed).
    pub(crate) fn forget_roles(&self) {
        self.read_only.lock().expect("roles").clear();
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        self.query(|conn| {
            if ino == ROOT {
                return self.root_attr(conn);
            }
            let listed = meta::listed(conn, ino)?.ok_or(FsError::NotFound)?;
            self.listed_attr(conn, &listed)
        })
    }

    pub fn device(&self) -> &str {
        &self.settings.device
    }
}

#[cfg(test)]
mod tests;
