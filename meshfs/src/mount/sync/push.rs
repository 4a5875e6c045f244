//! Sending local changes to the server: the outbox, oldest change first.
//! A staged file is cut into chunks (FastCDC), only the chunks the server
//! lacks are uploaded, and then the entry is posted as a FeedSync update by
//! this device. The server's merged answer becomes the new base.

use mesh_protocol::content::{self, ChunkRef, ContentRef, Hash};
use mesh_protocol::feedsync::Item;

use mesh_protocol::api::ObjectId;

use super::Syncer;
use crate::client::RemoteError;
use crate::mount::core::Outgoing;
use crate::mount::error::{FsError, FsResult};

/// How many outbox entries one round sends.
const BATCH: usize = 256;
/// How many chunks are checked with the server and uploaded at once.
const UPLOAD_GROUP: usize = 8;

impl Syncer {
    /// Pushes one batch of the outbox; returns how many entries went.
    pub async fn push_once(&self) -> FsResult<usize> {
        self.learn_what_reached_the_server().await?;
        let batch = self.core.outbox_batch(BATCH)?;
        let mut pushed = 0;
        for (object, nodes) in &batch.runs {
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
            for n in nodes {
                let uploaded = if n.staged && !n.removed {
                    Some(self.upload_staged(n.ino).await?)
                } else {
                    None
                };
                let item = self
                    .core
                    .outgoing_item(n, uploaded.as_ref().or(n.content.as_ref()));
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
            let merged = match self.api().post_items(object, &items).await {
                Ok(merged) => merged,
                Err(e) => {
                    if matches!(e, RemoteError::Offline(_)) {
                        self.uncertain.lock().expect("uncertain").insert(object);
                    }
                    return Err(e.into());
                }
            };
            pushed += outgoing.len();
            self.core.settle(object, outgoing, merged)?;
        }
        Ok(pushed)
    }

    /// Pulls the Live Folders whose last push went unanswered. Whatever of
    /// it reached the server comes back as this device's own version and
    /// becomes the base of the next push (`Core::apply`): building on the
    /// older base instead would make a second version with the same
    /// sequence number, and FeedSync could keep either.
    async fn learn_what_reached_the_server(&self) -> FsResult<()> {
        let uncertain: Vec<ObjectId> = self
            .uncertain
            .lock()
            .expect("uncertain")
            .iter()
            .copied()
            .collect();
        for object in uncertain {
            match self.pull(object).await {
                // Gone: the folder list catches up.
                Ok(()) | Err(FsError::Remote(RemoteError::NotFound)) => {}
                Err(e) => return Err(e),
            }
            self.uncertain.lock().expect("uncertain").remove(&object);
        }
        Ok(())
    }

    /// Chunks a staged file, uploads the chunks the server lacks (keeping
    /// every chunk in the local cache too) and returns its content
    /// reference. Memory stays bounded: chunks flow through a small queue.
    async fn upload_staged(&self, ino: u64) -> FsResult<ContentRef> {
        let file = std::fs::File::open(self.core.staging_path(ino))?;
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
            self.core.fetcher.cache.insert(h, &c.data)?;
        }
        let missing = self.api().missing(hashes.clone()).await?;
        let uploads = group
            .into_iter()
            .zip(hashes)
            .filter(|(_, h)| missing.contains(h))
            .map(|(c, h)| self.api().put_chunk(h, bytes::Bytes::from(c.data)));
        futures_util::future::try_join_all(uploads).await?;
        Ok(())
    }
}
