//! The outbox: every local change waits in the metadata cache, in order,
//! until the server has merged it. Here the core marks nodes as changed,
//! hands the pusher a batch (marking it as on its way, so that removing
//! one meanwhile is pushed too), turns a node into the FeedSync item that
//! carries its state, and records the server's merged answer as the new
//! base.

use chrono::Utc;
use mesh_protocol::api::ObjectId;
use mesh_protocol::content::ContentRef;
use mesh_protocol::feedsync::{Body, Item, SyncId, Text};
use mesh_protocol::folder::{EntryData, EntryKind};
use rusqlite::Transaction;
use std::sync::atomic::Ordering;

use super::{Core, from_ns, now_ns};
use crate::client::Posted;
use crate::mount::error::FsResult;
use crate::mount::meta::{self, Node};

/// One entry on its way to the server.
pub(crate) struct Outgoing {
    pub ino: u64,
    pub dirty: i64,
    /// What the node recorded as sent before `item` was sent.
    pub sent_before: Option<Item>,
    pub item: Item,
    /// The content uploaded for a staged file.
    pub uploaded: Option<ContentRef>,
}

/// Changes taken from the outbox to push: runs of one Live Folder's
/// nodes, oldest first. They count as being pushed while this lives.
pub(crate) struct Batch<'a> {
    pub runs: Vec<(ObjectId, Vec<Node>)>,
    _pushing: Pushing<'a>,
}

/// Inodes being pushed; see [`Core::pushing`].
pub(crate) struct Pushing<'a> {
    core: &'a Core,
    inos: Vec<u64>,
}

impl Drop for Pushing<'_> {
    fn drop(&mut self) {
        let mut pushing = self.core.pushing.lock().expect("pushing");
        for ino in &self.inos {
            pushing.remove(ino);
        }
    }
}

impl Core {
    /// Marks a node as changed for the outbox and wakes the pusher after
    /// the transaction commits (the caller saves the node). Only inside
    /// the transaction (`_tx`) that saves it: one at a time, so positions
    /// are taken in the order changes commit.
    pub(crate) fn mark_dirty(&self, _tx: &Transaction<'_>, node: &mut Node) {
        if node.dirty == 0 {
            node.dirty_at = Some(now_ns());
        }
        node.dirty = self.outbox_next.fetch_add(1, Ordering::SeqCst);
        self.outbox_changed.notify_one();
    }

    /// Marks a change of a node's own content or attributes (not of where
    /// it is) for the outbox. One already waiting there, and not on its way
    /// to the server, keeps its position: the push that takes it reads the
    /// node as it is then, this change included, and a write of a file
    /// costs one page of the log instead of three. A change made while
    /// the node is being pushed takes a new position, which is how the push
    /// knows it was not the whole story. Made, moved and removed nodes
    /// always take a new one ([`Core::mark_dirty`]), so that those changes
    /// reach the server in the order they were made.
    pub(crate) fn mark_changed(&self, tx: &Transaction<'_>, node: &mut Node) {
        if node.dirty > 0 && !self.is_pushing(node.ino) {
            self.outbox_changed.notify_one();
            return;
        }
        self.mark_dirty(tx, node)
    }

    /// Marks inodes as on their way to the server until the guard drops.
    /// Call it while holding the metadata cache, so no removal slips in
    /// between reading the outbox and marking.
    pub(crate) fn pushing(&self, inos: impl IntoIterator<Item = u64>) -> Pushing<'_> {
        let inos: Vec<u64> = inos.into_iter().collect();
        self.pushing.lock().expect("pushing").extend(&inos);
        Pushing { core: self, inos }
    }

    pub(crate) fn is_pushing(&self, ino: u64) -> bool {
        self.pushing.lock().expect("pushing").contains(&ino)
    }

    /// The oldest changes of the outbox that can go now (a file still open
    /// for writing waits for its last close, unless it was fsynced), in
    /// runs of one Live Folder each, marked as being pushed until the
    /// guard drops.
    pub(crate) fn outbox_batch(&self, limit: usize) -> FsResult<Batch<'_>> {
        let (batch, pushing) = self.query(|conn| {
            let batch: Vec<Node> = meta::outbox(conn, limit)?
                .into_iter()
                .filter(|n| !self.handles.held_for_write(n.ino))
                .collect();
            let pushing = self.pushing(batch.iter().map(|n| n.ino));
            Ok((batch, pushing))
        })?;
        let mut groups: Vec<(ObjectId, Vec<Node>)> = Vec::new();
        for n in batch {
            match groups.last_mut() {
                Some((object, nodes)) if *object == n.object => nodes.push(n),
                _ => groups.push((n.object, vec![n])),
            }
        }
        Ok(Batch {
            runs: groups,
            _pushing: pushing,
        })
    }

    /// The FeedSync item that carries a node's current state: an update of
    /// the version it is based on, or a new item.
    pub(crate) fn outgoing_item(&self, n: &Node, content: Option<&ContentRef>) -> Item {
        let data = EntryData {
            name: n.data_name.clone(),
            parent: n.data_parent.clone(),
            kind: n.kind,
            mode: n.mode,
            mtime: from_ns(n.mtime).into(),
            target: n.target.clone(),
            rdev: n.rdev,
            xattrs: EntryData::encode_xattrs(&n.xattrs),
            conflict_of: n.conflict_of.clone(),
        };
        let now = Utc::now();
        let body = Body {
            title: Some(Text::plain(n.data_name.clone())),
            updated: Some(now),
            data: Some(serde_json::to_value(&data).expect("entry data encodes")),
            enclosure: (n.kind == EntryKind::File)
                .then(|| content.cloned().unwrap_or_else(ContentRef::empty)),
            ..Body::default()
        };
        let device = self.device();
        match n.base() {
            Some(base) => {
                let mut item = base.clone();
                item.update(body, n.removed, now, device);
                item
            }
            None => {
                let id = SyncId::parse(&n.sync_id).unwrap_or_else(|_| SyncId::generate());
                let mut item = Item::create(id, body, false, now, device);
                // Removed while its creation may have reached the server:
                // send the removal so that it cannot come back.
                if n.removed {
                    item.delete(now, device);
                }
                item
            }
        }
    }

    /// Records the items about to be sent as sent, before they go (see
    /// `Syncer::push_once` and [`Node::base`]) — all but those whose
    /// content was read from a staging copy that changed meanwhile: that
    /// read may mix two versions. Returns the inodes of those left out;
    /// they go in a later round, and the chunks uploaded for them leave
    /// the chunk cache unless a file holds them.
    pub(crate) fn record_sent(&self, outgoing: &[Outgoing]) -> FsResult<Vec<u64>> {
        self.transact(|tx| {
            let mut changed = Vec::new();
            for o in outgoing {
                let Some(mut n) = meta::get(tx, o.ino)? else {
                    continue;
                };
                if let Some(uploaded) = &o.uploaded
                    && n.dirty != o.dirty
                {
                    meta::loosen_chunks(tx, uploaded.chunks.iter().map(|c| c.hash))?;
                    changed.push(o.ino);
                    continue;
                }
                n.sent = Some(o.item.clone());
                meta::save(tx, &mut n)?;
            }
            Ok(changed)
        })
    }

    /// Takes back [`Core::record_sent`] after the server refused the items:
    /// none of them is on the server.
    pub(crate) fn forget_sent(&self, outgoing: &[Outgoing]) -> FsResult<()> {
        self.transact(|tx| {
            for o in outgoing {
                if let Some(mut n) = meta::get(tx, o.ino)? {
                    n.sent = o.sent_before.clone();
                    meta::save(tx, &mut n)?;
                }
            }
            Ok(())
        })
    }

    /// Records the server's answers: the merged item is the new base, and
    /// an entry whose change went through with nothing newer waiting is
    /// clean again.
    ///
    /// When every change went through as sent and the answer is all the
    /// feed changed since this device's cursor (`posted.covers`), it is
    /// what a pull would bring next: the cursor moves past it, so the
    /// change stream's word of these very changes brings no pull, and a
    /// removed entry's tombstone goes at once. A page a pull read before
    /// the post merged is then dropped (`Core::apply_page`).
    pub(crate) fn settle(
        &self,
        object: ObjectId,
        outgoing: &[Outgoing],
        posted: &Posted,
    ) -> FsResult<()> {
        let merged = &posted.items;
        let all_won = outgoing
            .iter()
            .zip(merged)
            .all(|(out, merged)| merged.current == out.item.current);
        let mut invalidations = Vec::new();
        // Staging copies are dropped with the transaction that records it
        // (removed once it commits, see `Core::transact`), so that no write
        // can find the copy recorded but gone.
        let mut unstaged = false;
        self.transact(|tx| {
            if meta::resyncing(tx, object)? {
                // What the server answered is on the server: a complete
                // read under way must not take it for deleted.
                for merged in merged {
                    meta::resync_seen(tx, object, merged.id().as_str())?;
                }
            }
            // Gone when the folder left the mount meanwhile: nothing to apply.
            let root = meta::by_entry(tx, object, "")?;
            let caught_up = match posted.covers {
                Some((since, _)) if all_won => meta::cursor(tx, object)? == since,
                _ => false,
            };
            for (out, merged) in outgoing.iter().zip(merged) {
                let Some(mut n) = meta::get(tx, out.ino)? else { continue };
                // Answered: what the server has is known now.
                n.sent = None;
                let won = merged.current == out.item.current;
                let unchanged = n.dirty == out.dirty;
                // A pull already brought this very answer back.
                let echoed = n.item.as_ref() == Some(merged);
                if !won {
                    tracing::warn!(
                        entry = %n.sync_id,
                        "another device's concurrent change won; this device's version is kept among the entry's conflicts"
                    );
                    if unchanged {
                        n.dirty = 0;
                        meta::save(tx, &mut n)?;
                        if let Some(root) = &root {
                            self.apply(tx, root, merged, &mut invalidations)?;
                        }
                        continue;
                    }
                }
                // A newer local change waits: it goes on top of this
                // device's own version, so that it contests the winner
                // again instead of overwriting it unseen.
                n.item = Some(if won { merged } else { &out.item }.clone());
                if unchanged {
                    n.dirty = 0;
                }
                if let Some(content) = &out.uploaded {
                    if unchanged {
                        // What is shown is what the server has, also when
                        // a crash left the staging copy and the recorded
                        // size apart (see `Syncer::upload_staged`).
                        n.size = content.length;
                    }
                    n.content = Some(content.clone());
                    if unchanged && !self.handles.is_open(n.ino) {
                        n.staged = false;
                        self.drop_staging(n.ino);
                        unstaged = true;
                    }
                }
                if n.removed && n.dirty == 0 && !self.handles.is_open(n.ino) {
                    self.drop_staging(n.ino);
                    unstaged = true;
                    if echoed || caught_up {
                        meta::delete(tx, n.ino)?;
                        continue;
                    }
                    // Kept, hidden, as a tombstone until the server's own
                    // word of the removal comes back (`Core::apply`): a
                    // page read before the removal merged must not bring
                    // the entry back.
                }
                meta::save(tx, &mut n)?;
            }
            if let (true, Some((_, until))) = (caught_up, posted.covers) {
                meta::set_cursor(tx, object, until)?;
            }
            Ok(())
        })?;
        if unstaged {
            // Uploaded content of pinned files is kept from now on.
            self.refresh_kept()?;
        }
        self.invalidate_all(invalidations);
        Ok(())
    }
}
