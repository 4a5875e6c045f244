//! Sending local changes to the server: the outbox, oldest change first.
//! A staged file is cut into chunks (FastCDC), only the chunks the server
//! lacks are uploaded, and then the entry is posted as a FeedSync update by
//! this device. The server's merged answer becomes the new base.

use chrono::Utc;
use mesh_protocol::content::{self, ChunkRef, ContentRef, Hash};
use mesh_protocol::feedsync::{Body, Item, SyncId, Text};
use mesh_protocol::folder::{EntryData, EntryKind};

use crate::mount::core::{Core, from_ns};
use crate::mount::error::{FsError, FsResult};
use crate::mount::meta::{self, Node};

/// How many outbox entries one round sends.
const BATCH: usize = 256;
/// How many chunks are checked with the server and uploaded at once.
const UPLOAD_GROUP: usize = 8;

/// One entry on its way to the server.
struct Outgoing {
    ino: u64,
    dirty: i64,
    item: Item,
    /// The content uploaded for a staged file.
    uploaded: Option<ContentRef>,
}

impl Core {
    /// Pushes one batch of the outbox; returns how many entries went.
    pub async fn push_once(&self) -> FsResult<usize> {
        let (batch, _pushing) = self.query(|conn| {
            let batch: Vec<Node> = meta::outbox(conn, BATCH)?
                .into_iter()
                .filter(|n| !self.held_for_write(n.ino))
                .collect();
            let pushing = self.pushing(batch.iter().map(|n| n.ino));
            Ok((batch, pushing))
        })?;
        let mut pushed = 0;
        let mut groups: Vec<(mesh_protocol::api::ObjectId, Vec<Node>)> = Vec::new();
        for n in batch {
            match groups.last_mut() {
                Some((object, nodes)) if *object == n.object => nodes.push(n),
                _ => groups.push((n.object, vec![n])),
            }
        }
        for (object, nodes) in groups {
            if self.query(|conn| self.is_read_only(conn, object))? {
                tracing::warn!(%object, "this Live Folder became read-only; taking back its unpushed changes");
                self.revert_unwritable(object)?;
                continue;
            }
            let mut outgoing = Vec::new();
            for n in nodes {
                let uploaded = if n.staged && !n.removed {
                    Some(self.upload_staged(n.ino).await?)
                } else {
                    None
                };
                let item = self.outgoing_item(&n, uploaded.as_ref().or(n.content.as_ref()));
                outgoing.push(Outgoing {
                    ino: n.ino,
                    dirty: n.dirty,
                    item,
                    uploaded,
                });
            }
            if outgoing.is_empty() {
                continue;
            }
            let items: Vec<Item> = outgoing.iter().map(|o| o.item.clone()).collect();
            let merged = self.remote.post_items(object, &items).await?;
            pushed += outgoing.len();
            self.settle(object, outgoing, merged)?;
        }
        Ok(pushed)
    }

    /// The FeedSync item that carries a node's current state: an update of
    /// the version it is based on, or a new item.
    fn outgoing_item(&self, n: &Node, content: Option<&ContentRef>) -> Item {
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
        match &n.item {
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

    /// Records the server's answers: the merged item is the new base, and
    /// an entry whose change went through with nothing newer waiting is
    /// clean again.
    fn settle(
        &self,
        object: mesh_protocol::api::ObjectId,
        outgoing: Vec<Outgoing>,
        merged: Vec<Item>,
    ) -> FsResult<()> {
        let mut invalidations = Vec::new();
        let mut unstaged = Vec::new();
        self.transact(|tx| {
            for (out, merged) in outgoing.into_iter().zip(merged) {
                let Some(mut n) = meta::get(tx, out.ino)? else { continue };
                let won = merged.current == out.item.current;
                let unchanged = n.dirty == out.dirty;
                if !won {
                    tracing::warn!(
                        entry = %n.sync_id,
                        "another device's concurrent change won; this device's version is kept among the entry's conflicts"
                    );
                    if unchanged {
                        n.dirty = 0;
                        meta::save(tx, &mut n)?;
                        self.apply(tx, object, &merged, &mut invalidations)?;
                        continue;
                    }
                }
                n.item = Some(merged);
                if unchanged {
                    n.dirty = 0;
                }
                if let Some(content) = out.uploaded {
                    n.content = Some(content);
                    if unchanged && !self.is_open(n.ino) {
                        n.staged = false;
                        unstaged.push(n.ino);
                    }
                }
                if n.removed && n.dirty == 0 && !self.is_open(n.ino) {
                    meta::delete(tx, n.ino)?;
                    unstaged.push(n.ino);
                } else {
                    meta::save(tx, &mut n)?;
                }
            }
            Ok(())
        })?;
        if !unstaged.is_empty() {
            // Uploaded content of pinned files is kept from now on.
            self.refresh_kept()?;
        }
        for ino in unstaged {
            self.drop_staging(ino);
        }
        for i in invalidations {
            self.invalidate(i);
        }
        Ok(())
    }

    /// Chunks a staged file, uploads the chunks the server lacks (keeping
    /// every chunk in the local cache too) and returns its content
    /// reference. Memory stays bounded: chunks flow through a small queue.
    async fn upload_staged(&self, ino: u64) -> FsResult<ContentRef> {
        let file = std::fs::File::open(self.staging_path(ino))?;
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<std::io::Result<content::Chunk>>(UPLOAD_GROUP);
        let chunker = tokio::task::spawn_blocking(move || {
            let mut whole = blake3::Hasher::new();
            for chunk in content::chunks(std::io::BufReader::with_capacity(1 << 20, file)) {
                if let Ok(c) = &chunk {
                    whole.update(&c.data);
                }
                let failed = chunk.is_err();
                if tx.blocking_send(chunk).is_err() || failed {
                    break;
                }
            }
            Hash::from_blake3(whole.finalize())
        });
        let mut refs: Vec<ChunkRef> = Vec::new();
        let mut length = 0u64;
        let mut group: Vec<content::Chunk> = Vec::new();
        loop {
            let next = rx.recv().await;
            let done = next.is_none();
            if let Some(chunk) = next {
                let chunk = chunk?;
                length += chunk.data.len() as u64;
                refs.push(chunk.reference());
                group.push(chunk);
            }
            if group.len() >= UPLOAD_GROUP || (done && !group.is_empty()) {
                self.upload_group(std::mem::take(&mut group)).await?;
            }
            if done {
                break;
            }
        }
        let hash = chunker
            .await
            .map_err(|e| FsError::Io(std::io::Error::other(e)))?;
        Ok(ContentRef {
            hash,
            length,
            chunks: refs,
        })
    }

    async fn upload_group(&self, group: Vec<content::Chunk>) -> FsResult<()> {
        let hashes: Vec<Hash> = group.iter().map(|c| c.reference().hash).collect();
        for (c, h) in group.iter().zip(&hashes) {
            self.fetcher.cache.insert(h, &c.data)?;
        }
        let missing = self.remote.missing(hashes.clone()).await?;
        let uploads = group
            .into_iter()
            .zip(hashes)
            .filter(|(_, h)| missing.contains(h))
            .map(|(c, h)| self.remote.put_chunk(h, bytes::Bytes::from(c.data)));
        futures_util::future::try_join_all(uploads).await?;
        Ok(())
    }
}
