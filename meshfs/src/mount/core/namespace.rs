//! Names: lookup, listing, creating, removing and renaming entries, and the
//! root's Live Folders (created and deleted on the server).

use mesh_protocol::api::KIND_FOLDER;
use mesh_protocol::feedsync::SyncId;
use mesh_protocol::folder::{EntryKind, InvalidName, validate_name, validate_object_name};
use rusqlite::Transaction;
use std::ops::ControlFlow;

use super::{Attr, Core, DirEntry, now_ns};
use crate::local::component::component;
use crate::mount::error::{FsError, FsResult};
use crate::mount::meta::{self, Node, ROOT};

/// A name refused by the rules every endpoint enforces, as an errno.
fn refused(checked: Result<(), InvalidName>) -> FsResult<()> {
    checked.map_err(|e| match e {
        InvalidName::TooLong => FsError::NameTooLong,
        other => FsError::Invalid(other.to_string()),
    })
}

/// Checks a name the kernel hands us.
pub(crate) fn check_name(name: &str) -> FsResult<()> {
    refused(validate_name(name))
}

/// Checks a name given to a Live Folder at the root by the server's rules
/// for mesh object names, before the server is asked (`EINVAL`).
fn check_folder_name(name: &str) -> FsResult<()> {
    refused(validate_object_name(name))
}

/// What a new node is.
pub struct NewNode<'a> {
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub target: Option<&'a str>,
}

/// The longest an application waits for the server: creating, renaming
/// or deleting a Live Folder at the mount's root.
pub const SERVER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Core {
    pub fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr> {
        if name.len() > mesh_protocol::folder::MAX_NAME_LEN {
            return Err(FsError::NameTooLong);
        }
        self.query(|conn| {
            let n = meta::child(conn, parent, name)?.ok_or(FsError::NotFound)?;
            self.attr_of(conn, &n)
        })
    }

    /// The listing of a directory from `offset` (0 at the start), `.` and
    /// `..` first, each entry handed to `each` until it breaks (a reply to
    /// the kernel that is full).
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        mut each: impl FnMut(DirEntry) -> ControlFlow<()>,
    ) -> FsResult<()> {
        self.query(|conn| {
            let dir = match ino {
                ROOT => None,
                _ => Some(Self::node(conn, ino)?),
            };
            if dir.as_ref().is_some_and(|n| !n.is_dir()) {
                return Err(FsError::NotDir);
            }
            let attr_of = |n: Option<&Node>| match n {
                None => self.root_attr(conn),
                Some(n) => self.attr_of(conn, n),
            };
            if offset < 1 {
                let attr = attr_of(dir.as_ref())?;
                if each(DirEntry {
                    offset: 1,
                    name: ".".into(),
                    attr,
                })
                .is_break()
                {
                    return Ok(());
                }
            }
            if offset < 2 {
                let parent = match dir.as_ref().map(|n| n.parent) {
                    None | Some(ROOT) => None,
                    Some(parent) => Some(Self::node(conn, parent)?),
                };
                let attr = attr_of(parent.as_ref())?;
                if each(DirEntry {
                    offset: 2,
                    name: "..".into(),
                    attr,
                })
                .is_break()
                {
                    return Ok(());
                }
            }
            meta::listing(conn, ino, offset.saturating_sub(2), |name, l| {
                let attr = self.listed_attr(conn, &l)?;
                Ok::<_, FsError>(each(DirEntry {
                    offset: l.ino + 2,
                    name,
                    attr,
                }))
            })
        })
    }

    /// The directory node `parent` as a place to create something in.
    fn dir_for_change(&self, tx: &Transaction<'_>, parent: u64) -> FsResult<Node> {
        let dir = Self::node(tx, parent)?;
        if !dir.is_dir() || dir.removed {
            return Err(if dir.removed {
                FsError::NotFound
            } else {
                FsError::NotDir
            });
        }
        self.writable(tx, &dir)?;
        Ok(dir)
    }

    /// Refuses changes in a Live Folder the user may only read (its role
    /// as [`Core::is_read_only`] keeps it, not read again at every change).
    pub(crate) fn writable(&self, conn: &rusqlite::Connection, n: &Node) -> FsResult<()> {
        match self.is_read_only(conn, n.object)? {
            true => Err(FsError::Access(
                "this Live Folder is shared with you read-only".into(),
            )),
            false => Ok(()),
        }
    }

    /// Touches a directory's mtime and ctime after a change of its names.
    /// Local only: other devices see the change of the entry itself.
    pub(crate) fn touch_dir(tx: &Transaction<'_>, ino: u64, now: i64) -> FsResult<()> {
        if ino == ROOT {
            meta::set_state(tx, "root_mtime", now)?;
            return Ok(());
        }
        if !meta::touch(tx, ino, now)? {
            return Err(FsError::NotFound);
        }
        Ok(())
    }

    /// Creates a node in a Live Folder (anything but a Live Folder itself).
    pub fn make_node(&self, parent: u64, name: &str, new: NewNode<'_>) -> FsResult<Attr> {
        self.make_node_with(parent, name, new, |_| ())
    }

    /// [`Core::make_node`], running `then` on the saved node inside the same
    /// transaction (so that nothing, the pusher included, sees the node
    /// before `then` has run).
    pub(crate) fn make_node_with(
        &self,
        parent: u64,
        name: &str,
        new: NewNode<'_>,
        then: impl FnOnce(&Node),
    ) -> FsResult<Attr> {
        check_name(name)?;
        if parent == ROOT {
            return match new.kind {
                EntryKind::Dir => self.create_live_folder(name),
                _ => Err(FsError::Access(
                    "only Live Folders (directories) can be created here".into(),
                )),
            };
        }
        let attr = self.transact(|tx| {
            let dir = self.dir_for_change(tx, parent)?;
            if meta::child(tx, parent, name)?.is_some() {
                return Err(FsError::Exists);
            }
            let now = now_ns();
            // A set-group-ID directory hands down its group, and its bit
            // to new directories, as local filesystems do.
            let set_gid = dir.mode & libc::S_ISGID != 0;
            let gid = if set_gid { dir.gid } else { new.gid };
            let mut n = Node::new(
                dir.object,
                SyncId::generate().as_str().to_owned(),
                parent,
                name.to_owned(),
                new.kind,
                (new.uid, gid),
                now,
            );
            n.data_parent = (!dir.is_folder_root()).then(|| dir.sync_id.clone());
            n.mode = new.mode & 0o7777;
            if set_gid && new.kind == EntryKind::Dir {
                n.mode |= libc::S_ISGID;
            }
            n.rdev = new.rdev;
            n.target = new.target.map(str::to_owned);
            self.mark_dirty(tx, &mut n);
            meta::save(tx, &mut n)?;
            then(&n);
            Self::touch_dir(tx, parent, now)?;
            self.attr_of(tx, &n)
        })?;
        Ok(attr)
    }

    fn create_live_folder(&self, name: &str) -> FsResult<Attr> {
        check_folder_name(name)?;
        if self
            .query(|conn| Ok(meta::child(conn, ROOT, name)?))?
            .is_some()
        {
            return Err(FsError::Exists);
        }
        let object = self.ask_server(self.api.create_object(name, KIND_FOLDER))?;
        self.transact(|tx| {
            let mut root = self.folder_root(tx, &object)?;
            meta::save(tx, &mut root)?;
            Self::touch_dir(tx, ROOT, now_ns())?;
            // Counted while the cache is held, so a folder list asked for
            // before this cannot drop the new folder (see refresh_folders).
            self.folders_made
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.attr_of(tx, &root)
        })
    }

    /// Marks the server as unreachable when a call failed for that reason.
    /// One call to the server on behalf of an application (the root's
    /// folder operations), answered within [`SERVER_WAIT`]. A call that
    /// times out may still take effect on the server; the next folder list
    /// shows whether it did.
    fn ask_server<T>(
        &self,
        call: impl std::future::Future<Output = crate::client::RemoteResult<T>>,
    ) -> FsResult<T> {
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(SERVER_WAIT, call).await });
        match answer {
            Ok(Ok(value)) => {
                self.health.set_online(true);
                Ok(value)
            }
            Ok(Err(e @ crate::client::RemoteError::Offline(_))) => {
                self.health.set_online(false);
                Err(e.into())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                self.health.set_online(false);
                Err(FsError::TimedOut)
            }
        }
    }

    /// The root node of a Live Folder as the server describes it, merged
    /// with what the cache has (keeping its inode number).
    pub(crate) fn folder_root(
        &self,
        tx: &Transaction<'_>,
        object: &mesh_protocol::api::MeshObject,
    ) -> FsResult<Node> {
        let existing = meta::by_entry(tx, object.id, "")?;
        let name =
            self.root_view_name(tx, &object.name, existing.as_ref().map(|n| n.ino), object)?;
        let updated = super::to_ns(object.updated.into());
        Ok(match existing {
            Some(mut n) => {
                n.name = name;
                n.data_name = object.name.clone();
                n.role = Some(object.role);
                if n.mtime < updated {
                    n.mtime = updated;
                    n.ctime = updated;
                }
                n
            }
            None => Node {
                mode: 0o755,
                data_name: object.name.clone(),
                role: Some(object.role),
                ..Node::new(
                    object.id,
                    String::new(),
                    ROOT,
                    name,
                    EntryKind::Dir,
                    (self.settings.uid, self.settings.gid),
                    updated,
                )
            },
        })
    }

    /// The name a Live Folder is shown under at the root: its own, unless
    /// another folder already shows that name; then one shared by someone
    /// else says by whom (`Photos (from bob@example.org)`), and one of the
    /// user's own gets the start of its id. A name that cannot be one path
    /// component (`a/b`, `..`, from an old server) is shown escaped
    /// ([`component`]), so the root always lists and the folder stays
    /// usable; the server keeps its own name.
    fn root_view_name(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        ino: Option<u64>,
        object: &mesh_protocol::api::MeshObject,
    ) -> FsResult<String> {
        let name = component(name);
        match meta::child(tx, ROOT, &name)? {
            Some(other) if Some(other.ino) != ino => {
                if object.owner.to_string() != self.settings.user {
                    let shared = component(&format!("{name} (from {})", object.owner_email));
                    if meta::child(tx, ROOT, &shared)?.is_none_or(|n| Some(n.ino) == ino) {
                        return Ok(shared);
                    }
                }
                Ok(component(&format!(
                    "{name} ({})",
                    &object.id.to_string()[..8]
                )))
            }
            _ => Ok(name),
        }
    }

    pub fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.remove(parent, name, false)
    }

    pub fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        if parent == ROOT {
            return self.delete_live_folder(name);
        }
        self.remove(parent, name, true)
    }

    fn remove(&self, parent: u64, name: &str, dir: bool) -> FsResult<()> {
        if parent == ROOT {
            return Err(FsError::IsDir);
        }
        let mut invalidations = Vec::new();
        let ino = self.transact(|tx| {
            self.dir_for_change(tx, parent)?;
            let n = meta::child(tx, parent, name)?.ok_or(FsError::NotFound)?;
            match (dir, n.is_dir()) {
                (true, false) => return Err(FsError::NotDir),
                (false, true) => return Err(FsError::IsDir),
                (true, true) if meta::has_children(tx, n.ino)? => return Err(FsError::NotEmpty),
                _ => {}
            }
            let now = now_ns();
            let ino = self.drop_name(tx, n, now)?;
            Self::touch_dir(tx, parent, now)?;
            // Another device's entry shown under a numbered variant of the
            // name takes it back, as it does on every other device.
            self.reclaim(tx, parent, name, &mut invalidations)?;
            Ok(ino)
        })?;
        self.invalidate(super::Invalidation::Inode(ino));
        self.invalidate_all(invalidations);
        Ok(())
    }

    /// Removes one name of an inode. An extra hard link just goes; the
    /// original name of an inode that has extra links hands its place to
    /// one of them (a rename for other devices); otherwise the node goes.
    /// Returns the inode whose attributes changed.
    fn drop_name(&self, tx: &Transaction<'_>, mut n: Node, now: i64) -> FsResult<u64> {
        if let Some(target) = n.link_of {
            meta::delete(tx, n.ino)?;
            let mut t = Self::node(tx, target)?;
            t.ctime = now;
            meta::save(tx, &mut t)?;
            return Ok(target);
        }
        if let Some(link) = meta::links_of(tx, n.ino)?.into_iter().next() {
            let dir = Self::node(tx, link.parent)?;
            n.parent = link.parent;
            n.name = link.name.clone();
            n.data_parent = (!dir.is_folder_root()).then(|| dir.sync_id.clone());
            n.data_name = link.name;
            n.ctime = now;
            meta::delete(tx, link.ino)?;
            self.mark_dirty(tx, &mut n);
            meta::save(tx, &mut n)?;
            return Ok(n.ino);
        }
        self.discard(tx, &mut n, now)?;
        Ok(n.ino)
    }

    /// Gives inode `ino` another name (a hard link), on this device only.
    pub fn link(&self, ino: u64, new_parent: u64, new_name: &str) -> FsResult<Attr> {
        check_name(new_name)?;
        if new_parent == ROOT {
            return Err(FsError::Access(
                "only Live Folders can be created here".into(),
            ));
        }
        self.transact(|tx| {
            let mut target = Self::node(tx, ino)?;
            if target.is_dir() {
                return Err(FsError::NotPermitted(
                    "directories cannot be hard linked".into(),
                ));
            }
            let dir = self.dir_for_change(tx, new_parent)?;
            if dir.object != target.object {
                return Err(FsError::CrossDevice);
            }
            if meta::child(tx, new_parent, new_name)?.is_some() {
                return Err(FsError::Exists);
            }
            let now = now_ns();
            let mut link = Node {
                ino: 0,
                sync_id: format!("local:{}", uuid::Uuid::new_v4()),
                parent: new_parent,
                name: new_name.to_owned(),
                data_parent: None,
                data_name: new_name.to_owned(),
                item: None,
                dirty: 0,
                staged: false,
                removed: false,
                link_of: Some(ino),
                ..target.clone()
            };
            meta::save(tx, &mut link)?;
            target.ctime = now;
            meta::save(tx, &mut target)?;
            Self::touch_dir(tx, new_parent, now)?;
            self.attr_of(tx, &target)
        })
    }

    /// Removes a node locally and queues its deletion. One the server never
    /// saw goes at once (unless still open: then when it closes).
    pub(crate) fn discard(&self, tx: &Transaction<'_>, n: &mut Node, now: i64) -> FsResult<()> {
        n.removed = true;
        n.ctime = now;
        // The server may be receiving it right now: then the removal must
        // follow it there, or it would come back.
        let known = n.item.is_some() || self.is_pushing(n.ino);
        if !known && !self.handles.is_open(n.ino) {
            meta::delete(tx, n.ino)?;
            self.drop_staging(n.ino);
            return Ok(());
        }
        if known {
            self.mark_dirty(tx, n);
        } else {
            n.dirty = 0;
        }
        meta::save(tx, n)?;
        Ok(())
    }

    fn delete_live_folder(&self, name: &str) -> FsResult<()> {
        let root = self
            .query(|conn| Ok(meta::child(conn, ROOT, name)?))?
            .ok_or(FsError::NotFound)?;
        if self.query(|conn| Ok(meta::has_children(conn, root.ino)?))? {
            return Err(FsError::NotEmpty);
        }
        if root.role != Some(mesh_protocol::api::Role::Owner) {
            return Err(FsError::Access(
                "only the owner can delete a Live Folder".into(),
            ));
        }
        self.ask_server(self.api.delete_object(root.object))?;
        self.transact(|tx| {
            meta::drop_object(tx, root.object)?;
            Self::touch_dir(tx, ROOT, now_ns())
        })?;
        Ok(())
    }

    /// Renames `parent/name` to `new_parent/new_name`, replacing what is
    /// there (as editors do when they save), within one Live Folder.
    pub fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        no_replace: bool,
    ) -> FsResult<()> {
        check_name(new_name)?;
        if parent == ROOT || new_parent == ROOT {
            if parent == ROOT && new_parent == ROOT {
                return self.rename_live_folder(name, new_name, no_replace);
            }
            return Err(FsError::CrossDevice);
        }
        let replaced = self.transact(|tx| {
            let from_dir = self.dir_for_change(tx, parent)?;
            let to_dir = self.dir_for_change(tx, new_parent)?;
            if from_dir.object != to_dir.object {
                return Err(FsError::CrossDevice);
            }
            let mut n = meta::child(tx, parent, name)?.ok_or(FsError::NotFound)?;
            // A directory cannot move into itself or below itself.
            if n.is_dir() {
                let mut at = to_dir.clone();
                loop {
                    if at.ino == n.ino {
                        return Err(FsError::Invalid(
                            "a directory cannot move into itself".into(),
                        ));
                    }
                    if at.is_folder_root() {
                        break;
                    }
                    at = Self::node(tx, at.parent)?;
                }
            }
            let now = now_ns();
            let mut replaced = None;
            if let Some(target) = meta::child(tx, new_parent, new_name)? {
                // Two names of one inode: rename does nothing.
                if target.link_of.unwrap_or(target.ino) == n.link_of.unwrap_or(n.ino) {
                    return Ok(None);
                }
                if no_replace {
                    return Err(FsError::Exists);
                }
                match (n.is_dir(), target.is_dir()) {
                    (true, false) => return Err(FsError::NotDir),
                    (false, true) => return Err(FsError::IsDir),
                    (true, true) if meta::has_children(tx, target.ino)? => {
                        return Err(FsError::NotEmpty);
                    }
                    _ => {}
                }
                replaced = Some(self.drop_name(tx, target, now)?);
            }
            if n.link_of.is_some() {
                // An extra hard link moves on this device only.
                n.parent = new_parent;
                n.name = new_name.to_owned();
                meta::save(tx, &mut n)?;
                Self::touch_dir(tx, parent, now)?;
                Self::touch_dir(tx, new_parent, now)?;
                return Ok(replaced);
            }
            n.parent = new_parent;
            n.name = new_name.to_owned();
            n.data_parent = (!to_dir.is_folder_root()).then(|| to_dir.sync_id.clone());
            n.data_name = new_name.to_owned();
            n.ctime = now;
            self.mark_dirty(tx, &mut n);
            meta::save(tx, &mut n)?;
            Self::touch_dir(tx, parent, now)?;
            if new_parent != parent {
                Self::touch_dir(tx, new_parent, now)?;
            }
            Ok(replaced)
        })?;
        if let Some(ino) = replaced {
            self.invalidate(super::Invalidation::Inode(ino));
        }
        Ok(())
    }

    fn rename_live_folder(&self, name: &str, new_name: &str, no_replace: bool) -> FsResult<()> {
        check_folder_name(new_name)?;
        let root = self
            .query(|conn| Ok(meta::child(conn, ROOT, name)?))?
            .ok_or(FsError::NotFound)?;
        if let Some(other) = self.query(|conn| Ok(meta::child(conn, ROOT, new_name)?))? {
            if other.ino == root.ino {
                return Ok(());
            }
            // Replacing a Live Folder by renaming another over it would
            // delete data on every device; refuse, as rename does over a
            // non-empty directory.
            return Err(if no_replace {
                FsError::Exists
            } else {
                FsError::NotEmpty
            });
        }
        if root.role != Some(mesh_protocol::api::Role::Owner) {
            return Err(FsError::Access(
                "only the owner can rename a Live Folder".into(),
            ));
        }
        let object = self.ask_server(self.api.rename_object(root.object, new_name))?;
        self.transact(|tx| {
            let mut node = self.folder_root(tx, &object)?;
            node.ctime = now_ns();
            meta::save(tx, &mut node)?;
            Self::touch_dir(tx, ROOT, now_ns())
        })
    }
}
