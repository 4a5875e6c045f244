//! A [`MeshApi`] that misbehaves on purpose: wraps another and, as a test
//! tells it through [`Faults`], fails chosen calls, delays them, lets a
//! call reach the server but loses its answer (a push whose reply never
//! came back), takes the server away altogether, or cuts the open change
//! streams. It also counts the calls, so a test can tell what the mount
//! asked for.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use mesh_protocol::api::{AccountUsage, MeshObject, ObjectId};
use mesh_protocol::content::Hash;
use mesh_protocol::feedsync::Item;
use mesh_protocol::live::{Awareness, FolderAwareness, PresenceLease};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use super::{EventStream, FeedPage, MeshApi, Posted, RemoteError, RemoteResult};

/// The calls of [`MeshApi`], to aim a fault at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Objects,
    CreateObject,
    RenameObject,
    DeleteObject,
    Feed,
    PostItems,
    Missing,
    PutChunks,
    GetChunk,
    Events,
    RenewPresence,
    SignOff,
    PublishAwareness,
    Awareness,
    Usage,
}

/// What happens to a call a fault is aimed at.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The call fails with this error without reaching the server.
    Fail(RemoteError),
    /// The call reaches the server, which does what it asks, but the
    /// answer is lost: the caller sees the server as unreachable.
    LoseAnswer,
    /// The call waits this long, then goes through.
    Delay(Duration),
}

/// The faults in force, shared between a test and its [`FaultyApi`].
#[derive(Default)]
pub struct Faults {
    /// Faults for the next calls of each kind, first one first.
    next: Mutex<HashMap<Call, Vec<Fault>>>,
    offline: AtomicBool,
    /// Bumped to cut every open change stream.
    cuts: Mutex<Option<watch::Sender<u64>>>,
    calls: Mutex<HashMap<Call, usize>>,
}

impl Faults {
    /// The next `times` calls of `call` meet `fault`.
    pub fn inject(&self, call: Call, fault: Fault, times: usize) {
        let mut next = self.next.lock().expect("faults");
        next.entry(call)
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Takes the server away (every call fails as unreachable, and open
    /// streams are cut) or brings it back.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
        if offline {
            self.cut_streams();
        }
    }

    /// Ends every open change stream with an error, as a dropped
    /// connection does.
    pub fn cut_streams(&self) {
        if let Some(cuts) = self.cuts.lock().expect("faults").as_ref() {
            cuts.send_modify(|n| *n += 1);
        }
    }

    /// How many calls of `call` were made so far (faulty ones included).
    pub fn calls(&self, call: Call) -> usize {
        self.calls
            .lock()
            .expect("faults")
            .get(&call)
            .copied()
            .unwrap_or(0)
    }

    /// Counts a call and takes the fault it meets, if any.
    fn meet(&self, call: Call) -> Option<Fault> {
        *self.calls.lock().expect("faults").entry(call).or_default() += 1;
        if self.offline.load(Ordering::SeqCst) {
            return Some(Fault::Fail(unreachable()));
        }
        let mut next = self.next.lock().expect("faults");
        let queue = next.get_mut(&call)?;
        (!queue.is_empty()).then(|| queue.remove(0))
    }

    fn cuts(&self) -> watch::Receiver<u64> {
        self.cuts
            .lock()
            .expect("faults")
            .get_or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
}

fn unreachable() -> RemoteError {
    RemoteError::Offline("the server is away (fault injected)".into())
}

/// Another [`MeshApi`] with [`Faults`] in front of it.
pub struct FaultyApi<A> {
    inner: A,
    faults: Arc<Faults>,
}

impl<A: MeshApi> FaultyApi<A> {
    pub fn new(inner: A) -> (FaultyApi<A>, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        (
            FaultyApi {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }

    /// Runs `call` on the inner API unless a fault says otherwise.
    async fn through<T>(
        &self,
        call: Call,
        run: impl Future<Output = RemoteResult<T>>,
    ) -> RemoteResult<T> {
        match self.faults.meet(call) {
            None => run.await,
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                run.await
            }
            Some(Fault::LoseAnswer) => {
                let _ = run.await;
                Err(RemoteError::Offline(
                    "the answer was lost (fault injected)".into(),
                ))
            }
        }
    }
}

#[async_trait]
impl<A: MeshApi> MeshApi for FaultyApi<A> {
    fn server(&self) -> &str {
        self.inner.server()
    }

    async fn objects(&self) -> RemoteResult<Vec<MeshObject>> {
        self.through(Call::Objects, self.inner.objects()).await
    }

    async fn create_object(&self, name: &str, kind: &str) -> RemoteResult<MeshObject> {
        self.through(Call::CreateObject, self.inner.create_object(name, kind))
            .await
    }

    async fn rename_object(&self, id: ObjectId, name: &str) -> RemoteResult<MeshObject> {
        self.through(Call::RenameObject, self.inner.rename_object(id, name))
            .await
    }

    async fn delete_object(&self, id: ObjectId) -> RemoteResult<()> {
        self.through(Call::DeleteObject, self.inner.delete_object(id))
            .await
    }

    async fn feed(&self, object: ObjectId, since: u64) -> RemoteResult<FeedPage> {
        self.through(Call::Feed, self.inner.feed(object, since))
            .await
    }

    async fn post_items(&self, object: ObjectId, items: &[Item]) -> RemoteResult<Posted> {
        self.through(Call::PostItems, self.inner.post_items(object, items))
            .await
    }

    async fn missing(&self, hashes: Vec<Hash>) -> RemoteResult<Vec<Hash>> {
        self.through(Call::Missing, self.inner.missing(hashes))
            .await
    }

    async fn put_chunks(&self, object: ObjectId, chunks: Vec<(Hash, Bytes)>) -> RemoteResult<()> {
        self.through(Call::PutChunks, self.inner.put_chunks(object, chunks))
            .await
    }

    async fn get_chunk(&self, hash: Hash) -> RemoteResult<Bytes> {
        self.through(Call::GetChunk, self.inner.get_chunk(hash))
            .await
    }

    async fn events(&self, since: Option<u64>) -> RemoteResult<EventStream> {
        let inner = self.through(Call::Events, self.inner.events(since)).await?;
        // Cuts from now on end this stream.
        let cuts = self.faults.cuts();
        let stream = futures_util::stream::unfold(Some(inner), move |inner| {
            let mut cut = cuts.clone();
            async move {
                let mut inner = inner?;
                tokio::select! {
                    next = inner.next() => next.map(|m| (m, Some(inner))),
                    _ = cut.changed() => Some((Err(RemoteError::Offline("the stream was cut (fault injected)".into())), None)),
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn renew_presence(&self) -> RemoteResult<PresenceLease> {
        self.through(Call::RenewPresence, self.inner.renew_presence())
            .await
    }

    async fn sign_off(&self) -> RemoteResult<()> {
        self.through(Call::SignOff, self.inner.sign_off()).await
    }

    async fn publish_awareness(
        &self,
        object: ObjectId,
        open: &FolderAwareness,
    ) -> RemoteResult<()> {
        self.through(
            Call::PublishAwareness,
            self.inner.publish_awareness(object, open),
        )
        .await
    }

    async fn awareness(&self, object: ObjectId) -> RemoteResult<Awareness> {
        self.through(Call::Awareness, self.inner.awareness(object))
            .await
    }

    async fn usage(&self) -> RemoteResult<AccountUsage> {
        self.through(Call::Usage, self.inner.usage()).await
    }
}
