//! Sending local changes to the server: the outbox, oldest change first.
//! A staged file is cut into chunks (FastCDC), only the chunks the server
//! lacks are uploaded, and then the entry is posted as a FeedSync update by
//! this device. The server's merged answer becomes the new base.
//!
//! Chunks are gathered across the files of a round: one question to the
//! server of which it lacks per group, and the missing ones uploaded many
//! to a request (`POST /v1/chunks`), several requests in flight, so that a
//! thousand small files cost a few dozen requests, not two each.

use futures_util::{StreamExt, TryStreamExt};
use mesh_protocol::api::ObjectId;
use mesh_protocol::chunk_batch;
use mesh_protocol::content::{self, ChunkRef, ContentRef, Hash};
use mesh_protocol::feedsync::Item;
use std::collections::HashSet;

use super::Syncer;
use super::staged::StagedCopy;
use crate::client::RemoteError;
use crate::mount::core::{Outgoing, storage};
use crate::mount::error::{FsError, FsResult};

/// How many outbox entries one round sends.
pub(super) const BATCH: usize = 256;
/// How many chunks are checked with the server at once (one question of
/// which it lacks)...
const GROUP_CHUNKS: usize = 64;
/// ...and how many bytes of them are held in memory at most.
const GROUP_BYTES: usize = 32 << 20;
/// How many bytes of chunks one upload request carries at most (a chunk
/// as large as FastCDC cuts goes alone)...
const UPLOAD_BYTES: usize = 4 << 20;
/// ...and how many such requests are in flight at once.
const PUTS_IN_FLIGHT: usize = 8;

/// Chunks read from staging copies in one round and not yet on the server.
#[derive(Default)]
struct Uploads {
    group: Vec<content::Chunk>,
    /// Every chunk of the round so far: a chunk goes once, however many
    /// files or places in a file hold it (a sparse file's holes are one
    /// chunk of zeros).
    seen: HashSet<Hash>,
    bytes: usize,
}

impl Uploads {
    /// Adds a chunk unless the round has it already; whether the group is
    /// full and should go now.
    fn add(&mut self, chunk: content::Chunk) -> bool {
        if self.seen.insert(chunk.hash) {
            self.bytes += chunk.data.len();
            self.group.push(chunk);
        }
        self.group.len() >= GROUP_CHUNKS || self.bytes >= GROUP_BYTES
    }

    fn take(&mut self) -> Vec<content::Chunk> {
        self.bytes = 0;
        std::mem::take(&mut self.group)
    }
}

impl Syncer {
    /// Pushes one batch of the outbox; returns how many entries went.
    pub async fn push_once(&self) -> FsResult<usize> {
        let batch = self.core.outbox_batch(BATCH)?;
        let mut pushed = 0;
        let mut over_quota = None;
        'runs: for (object, nodes) in &batch.runs {
            let object = *object;
            if self
                .core
                .query(|conn| self.core.is_read_only(conn, object))?
            {
                tracing::warn!(%object, "this Live Folder became read-only; taking back its unpushed changes");
                self.core.revert_unwritable(object)?;
                continue;
            }
            let mut outgoing = Vec::new();
            let mut uploads = Uploads::default();
            for n in nodes {
                let uploaded = if n.staged && !n.removed {
                    let staged = self.upload_staged(object, n.ino, n.size, &mut uploads);
                    let Some(uploaded) = quota_refused(staged.await, &mut over_quota)? else {
                        continue 'runs;
                    };
                    Some(uploaded)
                } else {
                    None
                };
                let item = self
                    .core
                    .outgoing_item(n, uploaded.as_ref().or(n.content.as_ref()));
                outgoing.push(Outgoing {
                    ino: n.ino,
                    dirty: n.dirty,
                    sent_before: n.sent.clone(),
                    item,
                    uploaded,
                });
            }
            // Every chunk the items refer to is on the server before they go.
            let last = self.upload_group(object, uploads.take()).await;
            if quota_refused(last, &mut over_quota)?.is_none() {
                continue;
            }
            if outgoing.is_empty() {
                continue;
            }
            // Recorded as sent before it goes (so also across a crash):
            // whether or not it reaches the server, the next version
            // builds on it and carries a newer sequence number. Built on
            // the older base instead, it would carry the number of the one
            // sent, and a server that has that one (or another device's
            // version built on it) would take it as already seen.
            let changed = self.with_reserve(|| self.core.record_sent(&outgoing))?;
            if !changed.is_empty() {
                self.churned
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            outgoing.retain(|o| !changed.contains(&o.ino));
            if outgoing.is_empty() {
                continue;
            }
            let items: Vec<Item> = outgoing.iter().map(|o| o.item.clone()).collect();
            let _posting = self.posting.lock().await;
            let posted = match self.api().post_items(object, &items).await {
                Ok(posted) => posted,
                // It may have reached the server: it stays recorded.
                Err(e @ RemoteError::Offline(_)) => return Err(e.into()),
                // Refused: nothing of it is on the server.
                Err(e) => {
                    self.core.forget_sent(&outgoing)?;
                    quota_refused::<()>(Err(e.into()), &mut over_quota)?;
                    continue;
                }
            };
            pushed += outgoing.len();
            self.with_reserve(|| self.core.settle(object, &outgoing, &posted))?;
        }
        if pushed > 0 {
            // Settling may have freed room a full disk took.
            self.core.fetcher.cache.restore_reserve();
        }
        match over_quota {
            Some(e) => Err(e),
            None => Ok(pushed),
        }
    }

    /// Runs a step of pushing that writes to the metadata cache; if the
    /// disk is full, gives up the home's reserve (see `ChunkCache`) and
    /// runs it once more. Pushing is what frees room — a settled push drops
    /// its staging copies — so it must not starve for want of it.
    fn with_reserve<T>(&self, step: impl Fn() -> FsResult<T>) -> FsResult<T> {
        match step() {
            Err(e) if e.errno() == libc::ENOSPC && self.core.fetcher.cache.release_reserve() => {
                tracing::warn!("the disk of this device's home is full; pushing uses its reserve");
                step()
            }
            done => done,
        }
    }

    /// Chunks a staged file's first `size` bytes — its size as recorded
    /// with its last change — adds its chunks to `uploads` (uploading each
    /// group as it fills; the caller sends the last one) and returns its
    /// content reference. Bytes past the recorded size are a write that never
    /// returned (its process was killed before it was recorded): they are
    /// not the file's, and taking them would make the file on the server
    /// longer than the one shown here. Memory stays bounded: chunks flow
    /// through a small queue.
    async fn upload_staged(
        &self,
        object: ObjectId,
        ino: u64,
        size: u64,
        uploads: &mut Uploads,
    ) -> FsResult<ContentRef> {
        let file = std::fs::File::open(self.core.staging_path(ino))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<content::Chunk>>(4);
        let chunker = tokio::task::spawn_blocking(move || {
            let mut whole = blake3::Hasher::new();
            for chunk in content::Chunker::new(StagedCopy::new(file, size)) {
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
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk?;
            length += chunk.data.len() as u64;
            refs.push(chunk.reference());
            if uploads.add(chunk) {
                self.upload_group(object, uploads.take()).await?;
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

    /// Uploads the chunks of `group` the server lacks, for `object`, keeping
    /// each in the local cache too.
    async fn upload_group(&self, object: ObjectId, group: Vec<content::Chunk>) -> FsResult<()> {
        if group.is_empty() {
            return Ok(());
        }
        let hashes: Vec<Hash> = group.iter().map(|c| c.hash).collect();
        // Kept in the cache too, so that what was written here reads here
        // without the server once its staging copy goes; on a disk too
        // full for that, it is fetched again when read instead.
        for (c, h) in group.iter().zip(&hashes) {
            if let Err(e) = self.core.fetcher.cache.insert(h, &c.data) {
                tracing::warn!(hash = %h, error = %e, "an uploaded chunk is not kept in the cache");
            }
        }
        let missing: HashSet<Hash> = self
            .api()
            .missing(hashes.clone())
            .await?
            .into_iter()
            .collect();
        // Packed into requests of up to UPLOAD_BYTES: many small chunks
        // go in one, a file's big ones side by side.
        let mut batches: Vec<Vec<(Hash, bytes::Bytes)>> = Vec::new();
        let mut bytes = 0;
        for (c, h) in group.into_iter().zip(hashes) {
            if !missing.contains(&h) {
                continue;
            }
            let len = c.data.len();
            match batches.last_mut() {
                Some(batch)
                    if bytes + len <= UPLOAD_BYTES
                        && batch.len() < chunk_batch::MAX_BATCH_CHUNKS =>
                {
                    batch.push((h, c.data));
                    bytes += len;
                }
                _ => {
                    batches.push(vec![(h, c.data)]);
                    bytes = len;
                }
            }
        }
        let uploads = batches
            .into_iter()
            .map(|batch| self.api().put_chunks(object, batch));
        futures_util::stream::iter(uploads)
            .buffer_unordered(PUTS_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(())
    }
}

/// A step of one object's run that the server refused for its owner's
/// quota: `None`, the refusal kept in `over_quota`, and that run waits
/// while the round goes on with the other objects (one owner's full quota
/// holds up only their objects). Any other failure ends the round.
fn quota_refused<T>(result: FsResult<T>, over_quota: &mut Option<FsError>) -> FsResult<Option<T>> {
    match result {
        Ok(done) => Ok(Some(done)),
        Err(e) if storage::is_over_quota(&e) => {
            *over_quota = Some(e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
