//! Content on demand: brings chunks from the server into the chunk cache,
//! one download per chunk however many readers want it at once, verified
//! against its hash, with a few retries before the network is blamed.

use mesh_protocol::content::Hash;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{MeshApi, RemoteError};
use crate::mount::chunk_cache::ChunkCache;
use crate::mount::error::{FsError, FsResult};

/// How often a failed download is tried again before the read fails.
const RETRIES: u32 = 2;

pub struct Fetcher {
    pub cache: ChunkCache,
    api: Arc<dyn MeshApi>,
    inflight: Mutex<HashMap<Hash, Arc<tokio::sync::Mutex<()>>>>,
}

impl Fetcher {
    pub fn new(cache: ChunkCache, api: Arc<dyn MeshApi>) -> Fetcher {
        Fetcher {
            cache,
            api,
            inflight: Mutex::default(),
        }
    }

    /// Makes sure a chunk is in the cache, downloading it if needed. An
    /// impatient caller (a read while the server is known to be away) gets
    /// one attempt, so that it fails at once instead of waiting on retries.
    pub async fn ensure(&self, hash: Hash, patient: bool) -> FsResult<()> {
        if self.cache.contains(&hash) {
            return Ok(());
        }
        let gate = self
            .inflight
            .lock()
            .expect("inflight")
            .entry(hash)
            .or_default()
            .clone();
        let result = async {
            let _one_at_a_time = gate.lock().await;
            if self.cache.contains(&hash) {
                return Ok(());
            }
            let bytes = self
                .download(hash, if patient { RETRIES } else { 0 })
                .await?;
            self.cache.insert(&hash, &bytes)?;
            Ok(())
        }
        .await;
        let mut inflight = self.inflight.lock().expect("inflight");
        if Arc::strong_count(&gate) <= 2 {
            inflight.remove(&hash);
        }
        result
    }

    async fn download(&self, hash: Hash, retries: u32) -> FsResult<bytes::Bytes> {
        let mut attempt = 0;
        loop {
            match self.api.get_chunk(hash).await {
                Ok(bytes) => return Ok(bytes),
                // Refused outright: retrying will not help.
                Err(
                    e
                    @ (RemoteError::SignedOut | RemoteError::NotFound | RemoteError::Forbidden(_)),
                ) => {
                    return Err(e.into());
                }
                Err(RemoteError::Offline(_)) if attempt >= retries => return Err(FsError::Offline),
                Err(e) if attempt >= retries => {
                    tracing::warn!(%hash, error = %e, "chunk download failed");
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::debug!(%hash, error = %e, attempt, "chunk download failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }

    /// Starts downloading chunks in the background (read-ahead).
    pub fn prefetch(self: &Arc<Self>, hashes: Vec<Hash>) {
        for hash in hashes {
            if self.cache.contains(&hash) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.ensure(hash, true).await {
                    tracing::debug!(%hash, error = %e, "read-ahead failed");
                }
            });
        }
    }
}
