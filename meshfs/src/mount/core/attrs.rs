//! Attributes: chmod, chown, utimens, truncate, symlink targets, extended
//! attributes and filesystem statistics; and the names of the extended
//! attributes the mount computes, the one spelling of them that the mount
//! and the command line share.

use mesh_protocol::folder::EntryKind;
use std::time::SystemTime;

use super::{Attr, Core, now_ns, to_ns};
use crate::mount::error::{FsError, FsResult};
use crate::mount::meta::{self, ROOT};

/// The changes one `setattr` asks for.
#[derive(Debug, Default, Clone)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
    /// What the change does to the file's set-ID bits.
    pub set_id: SetIdBits,
}

/// What a write, a truncation or a change of owner does to a file's
/// set-user-ID and set-group-ID bits. The kernel leaves dropping them to
/// the filesystem (`FUSE_HANDLE_KILLPRIV_V2`), and says when to: for a
/// writer without `CAP_FSETID`, and for every change of owner or group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum SetIdBits {
    #[default]
    Keep,
    /// Dropped as Linux drops them: the set-user-ID bit, and the
    /// set-group-ID bit where group execute is set (without it, the bit
    /// marks mandatory locking and stays). Directories keep theirs.
    Drop,
}

impl SetIdBits {
    /// The mode a node of `kind` with `mode` has after the change.
    pub(crate) fn applied(self, kind: EntryKind, mode: u32) -> u32 {
        if self == SetIdBits::Keep || kind == EntryKind::Dir {
            return mode;
        }
        let mut mode = mode & !libc::S_ISUID;
        if mode & libc::S_IXGRP != 0 {
            mode &= !libc::S_ISGID;
        }
        mode
    }
}

/// A time to set: a given one, or now.
#[derive(Debug, Clone, Copy)]
pub enum TimeSet {
    At(SystemTime),
    Now,
}

impl TimeSet {
    fn ns(self, now: i64) -> i64 {
        match self {
            TimeSet::At(t) => to_ns(t),
            TimeSet::Now => now,
        }
    }
}

/// The longest extended attribute value.
const MAX_XATTR_VALUE: usize = 64 * 1024;

// The extended attributes the mount computes rather than keeps (never
// listed, so copies do not carry them). The command line reads and sets
// them through `local::xattr`.

/// Whether a node is pinned, `1` or `0`; also settable (and removing it
/// unpins).
pub const PINNED: &str = "user.mesh.pinned";
/// A node's [`FileState`](super::status::FileState).
pub const STATE: &str = "user.mesh.state";
/// The mount's status as JSON, on the root (what `meshfs status` shows).
pub const STATUS: &str = "user.mesh.status";
/// A Live Folder's mesh object id, on the folder's root.
pub const OBJECT: &str = "user.mesh.object";
/// Who has a file open on another device, one per line.
pub const USERS: &str = "user.mesh.users";
/// The prefix of the computed attributes; no attribute under it is kept.
pub const COMPUTED: &str = "user.mesh.";

fn parse_flag(value: &[u8]) -> FsResult<bool> {
    match std::str::from_utf8(value).map(str::trim) {
        Ok("1" | "true" | "yes" | "on") => Ok(true),
        Ok("0" | "false" | "no" | "off") => Ok(false),
        _ => Err(FsError::Invalid(format!("{PINNED} is 1 or 0"))),
    }
}

impl Core {
    pub fn setattr(&self, ino: u64, set: SetAttr) -> FsResult<Attr> {
        if ino == ROOT {
            return Err(FsError::NotPermitted(
                "the root's attributes are fixed".into(),
            ));
        }
        if let Some(size) = set.size {
            self.truncate(ino, size)?;
        }
        self.transact(|tx| {
            let mut n = Self::node(tx, ino)?;
            let now = now_ns();
            let mut synced = false;
            let mut changed = set.size.is_some();
            if let Some(mode) = set.mode {
                if n.is_folder_root() {
                    return Err(FsError::NotPermitted(
                        "a Live Folder's mode is fixed".into(),
                    ));
                }
                self.writable(tx, &n)?;
                n.mode = mode & 0o7777;
                synced = true;
                changed = true;
            }
            if let Some(uid) = set.uid {
                n.uid = uid;
                changed = true;
            }
            if let Some(gid) = set.gid {
                n.gid = gid;
                changed = true;
            }
            if let Some(t) = set.atime {
                n.atime = t.ns(now);
                changed = true;
            }
            if let Some(t) = set.mtime {
                n.mtime = t.ns(now);
                synced |= !n.is_folder_root();
                changed = true;
            }
            // A folder shared read-only keeps every mode as the server has it.
            let mode = set.set_id.applied(n.kind, n.mode);
            if mode != n.mode && !self.is_read_only(tx, n.object)? {
                n.mode = mode;
                synced = true;
                changed = true;
            }
            if changed {
                n.ctime = now;
            }
            if synced {
                self.mark_changed(tx, &mut n);
            }
            meta::save(tx, &mut n)?;
            self.attr_of(tx, &n)
        })
    }

    pub fn readlink(&self, ino: u64) -> FsResult<String> {
        self.query(|conn| {
            let n = Self::node(conn, ino)?;
            n.target
                .ok_or(FsError::Invalid("not a symbolic link".into()))
        })
    }

    pub fn setxattr(
        &self,
        ino: u64,
        name: &str,
        value: &[u8],
        create: bool,
        replace: bool,
    ) -> FsResult<()> {
        if name == PINNED {
            return self.set_pinned(ino, parse_flag(value)?);
        }
        if [STATE, STATUS, OBJECT, USERS].contains(&name) {
            return Err(FsError::NotPermitted(format!("{name} is read-only")));
        }
        if !name.starts_with("user.") || name.starts_with(COMPUTED) {
            return Err(FsError::NotSupported(
                "only user.* extended attributes are kept",
            ));
        }
        if name.len() > 255 {
            return Err(FsError::Range);
        }
        if value.len() > MAX_XATTR_VALUE {
            return Err(FsError::Invalid(
                "extended attribute value too large".into(),
            ));
        }
        self.transact(|tx| {
            let mut n = Self::node(tx, ino)?;
            if ino == ROOT || n.is_folder_root() {
                return Err(FsError::NotSupported(
                    "a Live Folder keeps no extended attributes",
                ));
            }
            self.writable(tx, &n)?;
            let exists = n.xattrs.contains_key(name);
            if create && exists {
                return Err(FsError::Exists);
            }
            if replace && !exists {
                return Err(FsError::NoAttribute);
            }
            n.xattrs.insert(name.to_owned(), value.to_vec());
            n.ctime = now_ns();
            self.mark_changed(tx, &mut n);
            meta::save(tx, &mut n)?;
            Ok(())
        })
    }

    pub fn getxattr(&self, ino: u64, name: &str) -> FsResult<Vec<u8>> {
        match name {
            PINNED => return Ok(if self.pinned(ino)? { b"1" } else { b"0" }.to_vec()),
            STATE => return Ok(self.file_state(ino)?.as_str().into()),
            OBJECT if ino != ROOT => {
                let n = self.query(|conn| Self::node(conn, ino))?;
                return if n.is_folder_root() {
                    Ok(n.object.to_string().into_bytes())
                } else {
                    Err(FsError::NoAttribute)
                };
            }
            USERS if ino != ROOT => return self.users_of(ino),
            STATUS if ino == ROOT => {
                return Ok(serde_json::to_vec(&self.status()).expect("status encodes"));
            }
            _ => {}
        }
        // Only user.* attributes are kept; `ls -l` asks every file for its
        // ACL and security label, so answer those without a lookup.
        if !name.starts_with("user.") {
            return Err(FsError::OtherNamespace);
        }
        if ino == ROOT {
            return Err(FsError::NoAttribute);
        }
        self.query(|conn| {
            let n = Self::node(conn, ino)?;
            n.xattrs.get(name).cloned().ok_or(FsError::NoAttribute)
        })
    }

    /// Attribute names, each followed by a NUL, as `listxattr` returns them.
    pub fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        if ino == ROOT {
            return Ok(Vec::new());
        }
        self.query(|conn| {
            let n = Self::node(conn, ino)?;
            let mut out = Vec::new();
            for name in n.xattrs.keys() {
                out.extend_from_slice(name.as_bytes());
                out.push(0);
            }
            Ok(out)
        })
    }

    pub fn removexattr(&self, ino: u64, name: &str) -> FsResult<()> {
        if name == PINNED {
            return self.set_pinned(ino, false);
        }
        if ino == ROOT {
            return Err(FsError::NoAttribute);
        }
        self.transact(|tx| {
            let mut n = Self::node(tx, ino)?;
            self.writable(tx, &n)?;
            if n.xattrs.remove(name).is_none() {
                return Err(FsError::NoAttribute);
            }
            n.ctime = now_ns();
            self.mark_changed(tx, &mut n);
            meta::save(tx, &mut n)?;
            Ok(())
        })
    }
}
