//! Applying what the server says to the cache: the Live Folder list, and
//! each item of a folder's feed (from a pull, or the merged answer to a
//! push). Entries are applied the same
//! deterministic way on every device, restoring the tree's invariants
//! without dropping anything: an entry whose parent is gone, not a
//! directory, or part of a cycle shows at the folder's top level, and of
//! two entries with one name in a directory the one with the greater sync
//! id shows with a numbered suffix.

use mesh_protocol::api::{KIND_FOLDER, MeshObject, ObjectId};

use mesh_protocol::content::ContentRef;
use mesh_protocol::feedsync::{self, Item, SyncId, Version};
use mesh_protocol::folder::{EntryData, EntryKind};
use rusqlite::Transaction;

use super::{Core, Invalidation, conflict_name, now_ns, to_ns};
use crate::client::FeedPage;
use crate::mount::error::FsResult;
use crate::mount::meta::{self, Node, ROOT};

/// Sets a node's attributes and content from entry data.
fn fill(n: &mut Node, data: &EntryData, content: Option<ContentRef>) {
    n.kind = data.kind;
    n.mode = data.mode;
    n.mtime = to_ns(data.mtime.into());
    n.rdev = data.rdev;
    n.target = data.target.clone();
    n.xattrs = data.xattr_values();
    n.size = content.as_ref().map_or(0, |c| c.length);
    n.content = content;
    n.conflict_of = data.conflict_of.clone();
}

/// Whether a version that lost a conflict holds content the winner lacks:
/// a file's bytes or a link's target. A directory's or a name's change
/// alone loses nothing (its entries stay where they are).
fn would_be_lost(lost: &Version, winner: &Version) -> bool {
    if lost.sync.deleted {
        return false;
    }
    let Ok(data) = EntryData::from_body(&lost.body) else {
        return false;
    };
    if winner.sync.deleted {
        return data.kind != EntryKind::Dir;
    }
    match data.kind {
        EntryKind::File => lost.body.enclosure != winner.body.enclosure,
        EntryKind::Symlink => !matches!(
            EntryData::from_body(&winner.body),
            Ok(w) if w.kind == data.kind && w.target == data.target
        ),
        _ => false,
    }
}

/// Whether `incoming` tells anything the version a node is based on does
/// not: merged into the base, it changes it.
fn adds_to(base: Option<&Item>, incoming: &Item) -> bool {
    match base {
        None => true,
        Some(base) => feedsync::merge(Some(base), incoming).map_or(true, |m| m.changed),
    }
}

/// `report.txt` → `report (2).txt`.
fn suffixed(name: &str, k: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({k}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({k})"),
    }
}

/// What became of a feed page given to [`Core::apply_page`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageApplied {
    Applied,
    /// Read from a cursor the folder has moved past: read again.
    Stale,
}

impl Core {
    /// Makes the cached Live Folders those of `objects`, unless a folder
    /// was made on this device since the list was asked for (`made` is
    /// [`Core::folders_made`] from before): then `None`.
    pub(crate) fn apply_folders(
        &self,
        objects: Vec<MeshObject>,
        made: u64,
    ) -> FsResult<Option<Vec<ObjectId>>> {
        let folders: Vec<_> = objects
            .into_iter()
            .filter(|o| o.kind == KIND_FOLDER)
            .collect();
        let mut invalidations = vec![Invalidation::Inode(ROOT)];
        let current = self.transact(|tx| {
            if self.folders_made() != made {
                return Ok(false);
            }
            for root in meta::folder_roots(tx)? {
                if !folders.iter().any(|f| f.id == root.object) {
                    invalidations.push(Invalidation::Entry {
                        parent: ROOT,
                        name: root.name.clone(),
                    });
                    self.recover_folder(tx, root.object)?;
                    meta::drop_object(tx, root.object)?;
                }
            }
            for object in &folders {
                let mut root = self.folder_root(tx, object)?;
                if root.ino == 0 {
                    invalidations.push(Invalidation::Entry {
                        parent: ROOT,
                        name: root.name.clone(),
                    });
                } else {
                    invalidations.push(Invalidation::Inode(root.ino));
                }
                meta::save(tx, &mut root)?;
            }
            meta::set_state(tx, "root_mtime", now_ns())?;
            Ok(true)
        })?;
        if !current {
            return Ok(None);
        }
        self.forget_roles();
        self.invalidate_all(invalidations);
        // A folder that became read-only may hold changes to take back.
        self.outbox_changed.notify_one();
        Ok(Some(folders.into_iter().map(|f| f.id).collect()))
    }

    /// Applies a page of a Live Folder's feed, read from cursor `asked`,
    /// and moves its cursor past it, unless the folder left the mount
    /// meanwhile. A page read from a cursor that is no longer the folder's
    /// is not applied, and answered `Stale`: settling this device's own
    /// post moved the cursor on (see `Core::settle`), and the page may
    /// predate what that settled; the caller reads again from the cursor
    /// as it is (the page may also hold other devices' changes made after
    /// the post).
    ///
    /// A page that starts before `asked` is the server's complete feed
    /// (it compacted tombstones this device had not seen): the read starts
    /// over, and the entries it has not listed by its last page were
    /// deleted and go (unless changed here meanwhile: their push merges).
    pub(crate) fn apply_page(
        &self,
        object: ObjectId,
        asked: u64,
        page: &FeedPage,
    ) -> FsResult<PageApplied> {
        let mut invalidations = Vec::new();
        let applied = self.transact(|tx| {
            let Some(root) = meta::by_entry(tx, object, "")? else {
                return Ok(PageApplied::Applied);
            };
            if meta::cursor(tx, object)? != asked {
                tracing::debug!(%object, since = asked, "a page read from an older cursor is dropped");
                return Ok(PageApplied::Stale);
            }
            if page.since < asked {
                tracing::info!(%object, cursor = asked, "the server compacted deletions this device has not seen; reading the folder's whole feed");
                meta::begin_resync(tx, object)?;
            }
            let resyncing = meta::resyncing(tx, object)?;
            for item in &page.items {
                if resyncing {
                    meta::resync_seen(tx, object, item.id().as_str())?;
                }
                self.apply(tx, &root, item, &mut invalidations)?;
            }
            meta::set_cursor(tx, object, page.until)?;
            if resyncing && !page.more {
                self.end_resync(tx, &root, &mut invalidations)?;
            }
            Ok(PageApplied::Applied)
        })?;
        self.invalidate_all(invalidations);
        if applied == PageApplied::Applied && !page.items.is_empty() {
            // New content of pinned files is fetched at once.
            self.pins_changed.notify_one();
        }
        Ok(applied)
    }

    /// The last page of a complete read: the entries it never listed are
    /// gone from the server, as if their tombstones had arrived.
    fn end_resync(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        let unseen = meta::end_resync(tx, root.object)?;
        let mut removed = 0;
        for sync_id in unseen {
            if let Some(n) = meta::by_entry(tx, root.object, &sync_id)?
                && n.dirty == 0
                && !n.removed
            {
                self.remove_deleted(tx, root, n, false, invalidations)?;
                removed += 1;
            }
        }
        tracing::info!(object = %root.object, removed, "read the folder's whole feed");
        Ok(())
    }

    /// Applies one item from the server to the cache. A version older
    /// than the one the node is based on changes nothing (a page read
    /// before this device's own push was answered). A node with local
    /// changes not yet pushed keeps them — its push will merge — and only
    /// takes this device's own version, echoed back, as the base its next
    /// push builds on. `root` is the Live Folder's root node.
    pub(crate) fn apply(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        item: &Item,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        let object = root.object;
        let sync_id = item.id().as_str();
        let existing = meta::by_entry(tx, object, sync_id)?;
        if let Some(n) = &existing {
            if !adds_to(n.item.as_ref(), item) {
                if n.removed
                    && n.dirty == 0
                    && item.current.sync.deleted
                    && !self.handles.is_open(n.ino)
                {
                    // The server's word of this device's removal: the
                    // tombstone kept for it until now can go.
                    meta::delete(tx, n.ino)?;
                }
                return Ok(());
            }
            if n.dirty > 0 {
                if item.current.top().by.as_deref() == Some(self.device()) {
                    let mut n = n.clone();
                    n.item = Some(item.clone());
                    meta::save(tx, &mut n)?;
                }
                return Ok(());
            }
        }
        // A version of this device lost: keep its content as a visible
        // sibling, and settle the conflict by updating the entry.
        let lost = item
            .conflicts
            .iter()
            .find(|c| c.top().by.as_deref() == Some(self.device()))
            .cloned();
        if let Some(version) = &lost
            && would_be_lost(version, &item.current)
        {
            self.conflicted_copy(tx, root, object, version, invalidations)?;
        }
        if item.current.sync.deleted {
            if let Some(mut n) = existing {
                n.item = Some(item.clone());
                self.remove_deleted(tx, root, n, lost.is_some(), invalidations)?;
            }
            return Ok(());
        }
        let data = match EntryData::from_body(&item.current.body) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(entry = sync_id, error = %e, "ignoring an entry this device cannot show");
                return Ok(());
            }
        };
        let now = now_ns();
        let is_new = existing.is_none();
        let owner = (self.settings.uid, self.settings.gid);
        let mut n = existing.unwrap_or_else(|| {
            Node::new(
                object,
                sync_id.to_owned(),
                root.ino,
                data.name.clone(),
                data.kind,
                owner,
                now,
            )
        });
        let before = (n.parent, n.name.clone());
        let content = item.current.body.enclosure.clone();
        let content_changed = n.content != content;
        fill(&mut n, &data, content);
        n.ctime = now;
        if n.staged {
            n.staged = false;
            self.drop_staging(n.ino);
        }
        n.data_parent = data.parent.clone();
        n.data_name = data.name.clone();
        n.item = Some(item.clone());
        n.removed = false;
        n.parent = self.view_parent(tx, root, &n)?;
        n.name = self.view_name(tx, &n, invalidations)?;
        if lost.is_some() {
            self.mark_dirty(tx, &mut n);
        }
        meta::save(tx, &mut n)?;
        if is_new || before != (n.parent, n.name.clone()) {
            if !is_new {
                invalidations.push(Invalidation::Entry {
                    parent: before.0,
                    name: before.1.clone(),
                });
                invalidations.push(Invalidation::Inode(before.0));
                self.reclaim(tx, before.0, &before.1, invalidations)?;
            }
            invalidations.push(Invalidation::Entry {
                parent: n.parent,
                name: n.name.clone(),
            });
            invalidations.push(Invalidation::Inode(n.parent));
        }
        if content_changed || !is_new {
            invalidations.push(Invalidation::Inode(n.ino));
        }
        if n.kind == EntryKind::Dir {
            self.adopt_children(tx, root, &n, invalidations)?;
            if !is_new && before.0 != n.parent {
                self.restore_displaced(tx, root, invalidations)?;
            }
        }
        Ok(())
    }

    /// Removes an entry the server deleted: its links go, an open file
    /// stays until closed, a directory's children move to the folder's
    /// root, and a name it hid comes back. With `settle`, this device's
    /// version lost to the deletion, and pushing the deletion settles it.
    fn remove_deleted(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        mut n: Node,
        settle: bool,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        invalidations.push(Invalidation::Entry {
            parent: n.parent,
            name: n.name.clone(),
        });
        invalidations.push(Invalidation::Inode(n.parent));
        n.removed = true;
        for link in meta::links_of(tx, n.ino)? {
            invalidations.push(Invalidation::Entry {
                parent: link.parent,
                name: link.name.clone(),
            });
            meta::delete(tx, link.ino)?;
        }
        if settle {
            self.mark_dirty(tx, &mut n);
            meta::save(tx, &mut n)?;
        } else if self.handles.is_open(n.ino) {
            meta::save(tx, &mut n)?;
        } else {
            meta::delete(tx, n.ino)?;
            self.drop_staging(n.ino);
        }
        if n.is_dir() {
            self.rehome_children(tx, root, n.ino, invalidations)?;
        }
        self.reclaim(tx, n.parent, &n.name, invalidations)?;
        Ok(())
    }

    /// Makes a new entry beside the original holding a version of this
    /// device that lost a conflict: `report (conflict from laptop
    /// 2026-11-27).docx`. It syncs to every device like any new file.
    fn conflicted_copy(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        object: ObjectId,
        version: &Version,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        let Ok(data) = EntryData::from_body(&version.body) else {
            return Ok(());
        };
        let date = version
            .top()
            .when
            .unwrap_or_else(chrono::Utc::now)
            .format("%Y-%m-%d");
        let name = conflict_name(&data.name, &self.settings.device_name, &date.to_string());
        let now = now_ns();
        let owner = (self.settings.uid, self.settings.gid);
        let mut copy = Node::new(
            object,
            SyncId::generate().as_str().to_owned(),
            root.ino,
            name,
            data.kind,
            owner,
            now,
        );
        fill(&mut copy, &data, version.body.enclosure.clone());
        copy.data_parent = data.parent.clone();
        copy.parent = self.view_parent(tx, root, &copy)?;
        copy.data_parent = meta::get(tx, copy.parent)?
            .filter(|p| !p.is_folder_root())
            .map(|p| p.sync_id);
        copy.name = self.view_name(tx, &copy, invalidations)?;
        copy.data_name = copy.name.clone();
        copy.conflict_of = Some(version.sync.id.as_str().to_owned());
        self.mark_dirty(tx, &mut copy);
        meta::save(tx, &mut copy)?;
        meta::bump_state(tx, "conflicts_created")?;
        tracing::warn!(name = %copy.name, "a change from this device lost a conflict; its content is kept as a copy");
        invalidations.push(Invalidation::Entry {
            parent: copy.parent,
            name: copy.name.clone(),
        });
        invalidations.push(Invalidation::Inode(copy.parent));
        Ok(())
    }

    /// Where an entry shows: under its parent entry when that is a live
    /// directory that is not below the entry itself, else at the top.
    fn view_parent(&self, tx: &Transaction<'_>, root: &Node, n: &Node) -> FsResult<u64> {
        let Some(parent_id) = &n.data_parent else {
            return Ok(root.ino);
        };
        let Some(parent) = meta::by_entry(tx, n.object, parent_id)? else {
            return Ok(root.ino);
        };
        if !parent.is_dir() || parent.removed {
            return Ok(root.ino);
        }
        let mut at = parent.clone();
        loop {
            if n.ino != 0 && at.ino == n.ino {
                return Ok(root.ino);
            }
            if at.is_folder_root() || at.parent == ROOT {
                return Ok(parent.ino);
            }
            at = match meta::get(tx, at.parent)? {
                Some(next) => next,
                None => return Ok(root.ino),
            };
        }
    }

    /// The name an entry shows under: its own unless a sibling with a
    /// smaller sync id has it, in which case the first free numbered
    /// variant. A sibling with a greater sync id gives the name up.
    fn view_name(
        &self,
        tx: &Transaction<'_>,
        n: &Node,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<String> {
        let wanted = &n.data_name;
        match meta::child(tx, n.parent, wanted)? {
            Some(other) if other.ino != n.ino => {
                if other.sync_id < n.sync_id {
                    self.free_variant(tx, n.parent, wanted)
                } else {
                    let mut other = other;
                    invalidations.push(Invalidation::Entry {
                        parent: other.parent,
                        name: other.name.clone(),
                    });
                    other.name = self.free_variant(tx, n.parent, wanted)?;
                    meta::save(tx, &mut other)?;
                    Ok(wanted.clone())
                }
            }
            _ => Ok(wanted.clone()),
        }
    }

    /// `name` in `parent` was given up (its entry moved, was renamed or
    /// went): of the entries that want it and show under a numbered
    /// variant instead, the one `view_name` prefers (the smallest sync id)
    /// takes it back. So names do not depend on the order in which changes
    /// arrived, and every device ends up showing the same ones.
    pub(crate) fn reclaim(
        &self,
        tx: &Transaction<'_>,
        parent: u64,
        name: &str,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        if meta::child(tx, parent, name)?.is_some() {
            return Ok(());
        }
        let mut best: Option<Node> = None;
        let (mut k, mut misses) = (2, 0);
        // Variants are taken first-free, so they cluster from (2) on.
        while misses < 3 {
            match meta::child(tx, parent, &suffixed(name, k))? {
                Some(n) => {
                    misses = 0;
                    if n.data_name == name && best.as_ref().is_none_or(|b| n.sync_id < b.sync_id) {
                        best = Some(n);
                    }
                }
                None => misses += 1,
            }
            k += 1;
        }
        if let Some(mut n) = best {
            invalidations.push(Invalidation::Entry {
                parent,
                name: n.name.clone(),
            });
            n.name = name.to_owned();
            meta::save(tx, &mut n)?;
            invalidations.push(Invalidation::Entry {
                parent,
                name: name.to_owned(),
            });
            invalidations.push(Invalidation::Inode(parent));
        }
        Ok(())
    }

    fn free_variant(&self, tx: &Transaction<'_>, parent: u64, name: &str) -> FsResult<String> {
        let mut k = 2;
        loop {
            let candidate = suffixed(name, k);
            if meta::child(tx, parent, &candidate)?.is_none() {
                return Ok(candidate);
            }
            k += 1;
        }
    }

    /// Entries whose recorded parent is this directory but that show
    /// elsewhere (they arrived first) move under it.
    fn adopt_children(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        dir: &Node,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        for child in meta::recorded_children(tx, dir.object, &dir.sync_id)? {
            if child.parent == dir.ino || child.removed {
                continue;
            }
            self.show_under_view_parent(tx, root, child, invalidations)?;
        }
        Ok(())
    }

    /// After a directory moved: the entries shown at the folder's top
    /// level although their data names a parent (it made a cycle with a
    /// move not applied yet, as a page applies each entry's latest state
    /// in the order of their last changes) go back under it where they
    /// now can, until none can. Without this, an entry applied before the
    /// move that undoes the cycle stayed at the top level on this device
    /// only.
    fn restore_displaced(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        let mut moved = true;
        while moved {
            moved = false;
            for child in meta::displaced(tx, root.ino)? {
                moved |= self.show_under_view_parent(tx, root, child, invalidations)?;
            }
        }
        Ok(())
    }

    /// Moves an entry to where its data puts it ([`Core::view_parent`]), if
    /// it shows elsewhere; whether it moved.
    fn show_under_view_parent(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        mut child: Node,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<bool> {
        let parent = self.view_parent(tx, root, &child)?;
        if parent == child.parent {
            return Ok(false);
        }
        invalidations.push(Invalidation::Entry {
            parent: child.parent,
            name: child.name.clone(),
        });
        invalidations.push(Invalidation::Inode(child.parent));
        let left = (child.parent, child.name.clone());
        child.parent = parent;
        child.name = self.view_name(tx, &child, invalidations)?;
        meta::save(tx, &mut child)?;
        invalidations.push(Invalidation::Inode(parent));
        self.reclaim(tx, left.0, &left.1, invalidations)?;
        Ok(true)
    }

    /// The children of a directory that went away show at the top level.
    fn rehome_children(
        &self,
        tx: &Transaction<'_>,
        root: &Node,
        dir: u64,
        invalidations: &mut Vec<Invalidation>,
    ) -> FsResult<()> {
        for mut child in meta::children(tx, dir, 0, usize::MAX >> 1)? {
            child.parent = root.ino;
            child.name = self.view_name(tx, &child, invalidations)?;
            meta::save(tx, &mut child)?;
        }
        invalidations.push(Invalidation::Inode(root.ino));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn suffixes_go_before_the_extension() {
        assert_eq!(super::suffixed("report.txt", 2), "report (2).txt");
        assert_eq!(super::suffixed("Makefile", 3), "Makefile (3)");
        assert_eq!(super::suffixed(".bashrc", 2), ".bashrc (2)");
        assert_eq!(super::suffixed("a.tar.gz", 2), "a.tar (2).gz");
    }
}
