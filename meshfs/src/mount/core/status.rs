//! What the mount can tell about itself: each file's state (the
//! [`user.mesh.state`](super::attrs::STATE) extended attribute), the
//! mount's status (the root's [`user.mesh.status`](super::attrs::STATUS),
//! which `meshfs status` reads) and what the metadata cache tells of the
//! outbox, mounted or not.

use chrono::{DateTime, Utc};
use mesh_protocol::folder::EntryKind;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::{Core, from_ns};
use crate::mount::error::FsResult;
use crate::mount::meta::{self, Node, ROOT};

/// Where a file's content is, as a user would ask it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Only the server has the content.
    Cloud,
    /// The content is on this device, and may be evicted.
    Cached,
    /// Kept on this device ("always keep on this device").
    Pinned,
    /// Changed here and not yet accepted by the server.
    Pending,
    /// A conflicted copy, or an entry with an unsettled conflict.
    Conflict,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Cloud => "cloud",
            FileState::Cached => "cached",
            FileState::Pinned => "pinned",
            FileState::Pending => "pending",
            FileState::Conflict => "conflict",
        }
    }
}

/// What the metadata cache tells, mounted or not: the changes the server
/// has not accepted yet, and the conflicted copies this device made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outbox {
    pub pending_changes: u64,
    /// When the oldest pending change was made.
    pub oldest_pending: Option<DateTime<Utc>>,
    pub conflicts_created: u64,
    /// Changed files kept in the device's `recovered/` directory because
    /// they could no longer reach the server.
    pub recovered_files: u64,
}

impl Outbox {
    pub fn read(conn: &Connection) -> rusqlite::Result<Outbox> {
        let (pending_changes, oldest) = meta::pending(conn)?;
        Ok(Outbox {
            pending_changes,
            oldest_pending: oldest.map(|ns| from_ns(ns).into()),
            conflicts_created: meta::state(conn, "conflicts_created")?.unwrap_or(0) as u64,
            recovered_files: meta::state(conn, "recovered_files")?.unwrap_or(0) as u64,
        })
    }
}

/// A fault, when it happened, and when what failed worked again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub message: String,
    #[serde(default)]
    pub resolved: Option<DateTime<Utc>>,
}

/// The state of a running mount (beyond its [`Outbox`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountStatus {
    pub online: bool,
    /// Since when the mount has been online (or offline).
    pub since: Option<DateTime<Utc>>,
    /// Bytes of evictable content on this device, and their limit.
    pub cache_used: u64,
    pub cache_limit: u64,
    /// Bytes of pinned content on this device.
    pub pinned_bytes: u64,
    pub last_error: Option<LastError>,
    /// What the account's objects store on the server and its quota
    /// (`None`: none), as last heard.
    #[serde(default)]
    pub storage_used: Option<u64>,
    #[serde(default)]
    pub storage_quota: Option<u64>,
    /// The server refused the last push for the quota.
    #[serde(default)]
    pub over_quota: bool,
}

impl Core {
    /// The state of one file (or directory).
    pub fn file_state(&self, ino: u64) -> FsResult<FileState> {
        self.query(|conn| {
            if ino == ROOT {
                return Ok(if meta::root_pinned(conn)? {
                    FileState::Pinned
                } else {
                    FileState::Cached
                });
            }
            let mut n = Self::node(conn, ino)?;
            if let Some(target) = n.link_of {
                n = Self::node(conn, target)?;
            }
            self.state_of(conn, &n)
        })
    }

    fn state_of(&self, conn: &Connection, n: &Node) -> FsResult<FileState> {
        if n.dirty > 0 {
            return Ok(FileState::Pending);
        }
        if n.conflict_of.is_some() || n.item.as_ref().is_some_and(|i| !i.conflicts.is_empty()) {
            return Ok(FileState::Conflict);
        }
        if Self::is_pinned(conn, n)? {
            return Ok(FileState::Pinned);
        }
        let local = n.kind != EntryKind::File
            || n.staged
            || n.content.as_ref().is_none_or(|c| {
                c.chunks
                    .iter()
                    .all(|chunk| self.fetcher.cache.contains(&chunk.hash))
            });
        Ok(if local {
            FileState::Cached
        } else {
            FileState::Cloud
        })
    }

    /// The mount's status.
    pub fn status(&self) -> MountStatus {
        let health = self.health.read();
        let cache = &self.fetcher.cache;
        MountStatus {
            online: health.online,
            since: (health.since != 0).then(|| from_ns(health.since).into()),
            cache_used: cache.used(),
            cache_limit: cache.limit(),
            pinned_bytes: cache.kept_used(),
            last_error: health.last_error.map(|fault| LastError {
                at: from_ns(fault.at).into(),
                message: fault.message,
                resolved: fault.resolved.map(|at| from_ns(at).into()),
            }),
            storage_used: self.storage.usage().map(|u| u.used),
            storage_quota: self.storage.usage().and_then(|u| u.quota),
            over_quota: self.storage.over_quota(),
        }
    }
}
