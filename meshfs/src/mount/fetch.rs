//! Content on demand: brings chunks from the server into the chunk cache,
//! one download per chunk however many readers want it at once, verified
//! against its hash, with a few retries before the network is blamed.
//!
//! A download runs as a task of its own. Whoever waits for it waits at
//! most until their deadline — an application's read gives up after
//! [`Fetcher::reader_wait`] with `EIO`, whatever the network does — and
//! the download goes on, so the next read finds the chunk in the cache.

use bytes::Bytes;
use mesh_protocol::content::Hash;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{MeshApi, RemoteError};
use crate::mount::chunk_cache::ChunkCache;
use crate::mount::error::{FsError, FsResult};

/// How often a failed download is tried again before the read fails.
const RETRIES: u32 = 2;

/// The longest an application's read waits for content from the network.
pub const READER_WAIT: Duration = Duration::from_secs(10);

/// How a download ended, for everyone who waited on it.
#[derive(Debug, Clone)]
enum Fetched {
    Cached,
    Offline,
    Refused(RemoteError),
    /// Writing the chunk into the cache failed (a full disk, say).
    Local {
        errno: Option<i32>,
        message: String,
    },
}

impl Fetched {
    fn into_result(self) -> FsResult<()> {
        match self {
            Fetched::Cached => Ok(()),
            Fetched::Offline => Err(FsError::Offline),
            Fetched::Refused(e) => Err(e.into()),
            Fetched::Local { errno, message } => Err(FsError::Io(match errno {
                Some(errno) => std::io::Error::from_raw_os_error(errno),
                None => std::io::Error::other(message),
            })),
        }
    }
}

/// A download under way.
struct Download {
    done: watch::Receiver<Option<Fetched>>,
    /// Set once a reader gave up on it: the kernel retries a failed
    /// read-ahead at once, and an application may too, and neither should
    /// wait a whole reader wait again for the same stalled download.
    overdue: AtomicBool,
}

/// A downloaded chunk on its way into the cache, counted in
/// [`Fetcher::storing`] from before its readers are answered until it is
/// written (or the write is given up).
struct Storing(Arc<Fetcher>);

impl Storing {
    fn start(fetcher: &Arc<Fetcher>) -> Storing {
        fetcher.storing.send_modify(|n| *n += 1);
        Storing(fetcher.clone())
    }
}

impl Drop for Storing {
    fn drop(&mut self) {
        self.0.storing.send_modify(|n| *n -= 1);
    }
}

pub struct Fetcher {
    pub cache: ChunkCache,
    api: Arc<dyn MeshApi>,
    /// How long a read waits for the network: [`READER_WAIT`], shorter in
    /// tests.
    pub reader_wait: Duration,
    inflight: Mutex<HashMap<Hash, Arc<Download>>>,
    /// How many downloaded chunks are being written into the cache.
    storing: watch::Sender<usize>,
}

impl Fetcher {
    pub fn new(cache: ChunkCache, api: Arc<dyn MeshApi>) -> Fetcher {
        Fetcher {
            cache,
            api,
            reader_wait: READER_WAIT,
            inflight: Mutex::default(),
            storing: watch::Sender::new(0),
        }
    }

    /// When a read that starts now stops waiting for the network.
    pub fn reader_deadline(&self) -> Instant {
        Instant::now() + self.reader_wait
    }

    /// Makes sure a chunk is in the cache, downloading it if needed, and
    /// waits for the download however long it takes. An impatient caller
    /// (a read while the server is known to be away) gets one attempt, so
    /// that it fails at once instead of waiting on retries.
    pub async fn ensure(self: &Arc<Self>, hash: Hash, patient: bool) -> FsResult<()> {
        if self.cache.contains(&hash) {
            return Ok(());
        }
        Self::wait(&self.start(hash, patient)).await
    }

    async fn wait(download: &Download) -> FsResult<()> {
        match download.done.clone().wait_for(Option::is_some).await {
            Ok(fetched) => fetched.clone().expect("waited for").into_result(),
            Err(_) => Err(FsError::Offline),
        }
    }

    /// [`Fetcher::ensure`], waiting no later than `deadline`; the download
    /// goes on after it. A download that already outlived a reader's wait
    /// fails the next readers at once, until it ends.
    pub async fn ensure_by(
        self: &Arc<Self>,
        hash: Hash,
        patient: bool,
        deadline: Instant,
    ) -> FsResult<()> {
        if self.cache.contains(&hash) {
            return Ok(());
        }
        let download = self.start(hash, patient);
        if download.overdue.load(Ordering::Relaxed) {
            return Err(FsError::TimedOut);
        }
        match tokio::time::timeout_at(deadline, Self::wait(&download)).await {
            Ok(fetched) => fetched,
            Err(_) => {
                download.overdue.store(true, Ordering::Relaxed);
                tracing::warn!(%hash, "the server is too slow to deliver a chunk; the read fails and the download goes on");
                Err(FsError::TimedOut)
            }
        }
    }

    /// Bytes `offset..offset+len` of a chunk of `size` bytes that is not
    /// cached, as a verified slice from the server (a random read), by
    /// `deadline`; nothing is cached.
    pub async fn slice_by(
        &self,
        hash: Hash,
        size: u64,
        offset: u64,
        len: u64,
        deadline: Instant,
    ) -> FsResult<Bytes> {
        match tokio::time::timeout_at(deadline, self.api.get_chunk_slice(hash, size, offset, len))
            .await
        {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(RemoteError::Offline(_))) => Err(FsError::Offline),
            Ok(Err(e)) => {
                tracing::warn!(%hash, error = %e, "a chunk slice could not be read");
                Err(e.into())
            }
            Err(_) => Err(FsError::TimedOut),
        }
    }

    /// Starts downloading chunks in the background (read-ahead).
    pub fn prefetch(self: &Arc<Self>, hashes: Vec<Hash>) {
        for hash in hashes {
            if !self.cache.contains(&hash) {
                self.start(hash, true);
            }
        }
    }

    /// The download of `hash`: the one under way, or a new one.
    fn start(self: &Arc<Self>, hash: Hash, patient: bool) -> Arc<Download> {
        let mut inflight = self.inflight.lock().expect("inflight");
        if let Some(download) = inflight.get(&hash) {
            return download.clone();
        }
        let (done, receiver) = watch::channel(None);
        let download = Arc::new(Download {
            done: receiver,
            overdue: AtomicBool::new(false),
        });
        inflight.insert(hash, download.clone());
        let me = self.clone();
        tokio::spawn(async move {
            let retries = if patient { RETRIES } else { 0 };
            let fetched = match me.download(hash, retries).await {
                Ok(Some(bytes)) => {
                    // Its readers are answered from memory while it is
                    // written; past the cache's backlog the write comes
                    // first, so that a disk slower than the network slows
                    // the readers instead of filling the memory.
                    let storing = Storing::start(&me);
                    if me.cache.hold(&hash, bytes.clone()) {
                        me.finish(hash, &done, Fetched::Cached);
                        if let Fetched::Local { message, .. } = me.store(hash, bytes, storing).await
                        {
                            tracing::warn!(%hash, error = %message, "a downloaded chunk is not kept in the cache");
                        }
                        return;
                    }
                    me.store(hash, bytes, storing).await
                }
                Ok(None) => Fetched::Cached,
                Err(failed) => failed,
            };
            me.finish(hash, &done, fetched);
        });
        download
    }

    /// Ends the download of `hash` for everyone waiting on it.
    fn finish(&self, hash: Hash, done: &watch::Sender<Option<Fetched>>, fetched: Fetched) {
        if !matches!(fetched, Fetched::Cached) {
            tracing::debug!(%hash, ?fetched, "chunk download failed");
        }
        // Removed first: whoever asks after the answer is sent either
        // finds the chunk cached or starts afresh.
        self.inflight.lock().expect("inflight").remove(&hash);
        let _ = done.send(Some(fetched));
    }

    /// Waits until every chunk downloaded so far is written into the
    /// cache (before an unmount: what was read is there offline after it).
    pub async fn stored(&self) {
        let _ = self.storing.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Writes a downloaded chunk into the cache, off the async threads.
    async fn store(self: &Arc<Self>, hash: Hash, bytes: Bytes, storing: Storing) -> Fetched {
        let me = self.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let stored = me.cache.insert(&hash, &bytes);
            drop(storing);
            stored
        })
        .await;
        match stored {
            Ok(Ok(())) => Fetched::Cached,
            Ok(Err(e)) => Fetched::Local {
                errno: e.raw_os_error(),
                message: e.to_string(),
            },
            Err(e) => Fetched::Local {
                errno: None,
                message: e.to_string(),
            },
        }
    }

    /// The chunk from the server, verified, or `None` when the cache has
    /// it already.
    async fn download(&self, hash: Hash, retries: u32) -> Result<Option<Bytes>, Fetched> {
        if self.cache.contains(&hash) {
            return Ok(None);
        }
        let mut attempt = 0;
        loop {
            match self.api.get_chunk(hash).await {
                Ok(bytes) => return Ok(Some(bytes)),
                // Refused outright: retrying will not help.
                Err(
                    e
                    @ (RemoteError::SignedOut | RemoteError::NotFound | RemoteError::Forbidden(_)),
                ) => return Err(Fetched::Refused(e)),
                Err(RemoteError::Offline(_)) if attempt >= retries => return Err(Fetched::Offline),
                Err(e) if attempt >= retries => {
                    tracing::warn!(%hash, error = %e, "chunk download failed");
                    return Err(Fetched::Refused(e));
                }
                Err(e) => {
                    tracing::debug!(%hash, error = %e, attempt, "chunk download failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }
}
