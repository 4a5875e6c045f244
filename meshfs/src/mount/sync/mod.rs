//! Keeping the mount and the server in step: the [`Syncer`] owns pushing
//! and pulling. One change stream per mount brings other devices' changes
//! (each folder pulled since its cursor) and awareness, the pusher sends
//! the outbox, a third task fetches pinned content, and two more keep this
//! device present (heartbeats, and publishing which files are open). All
//! notice when the server is unreachable, back off, and reconnect on their
//! own; offline is a state, reported by `meshfs status`.
//!
//! The syncer only talks: what arrives is applied, and what goes is taken
//! from the outbox, by the core.

mod live;
mod pull;
mod push;
mod staged;

use futures_util::StreamExt;
use mesh_protocol::api::{Change, Event, StreamMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::client::{MeshApi, RemoteError, RemoteResult};
use crate::mount::core::health::Activity;
use crate::mount::core::{Core, storage};
use crate::mount::error::FsError;
use crate::mount::meta;

/// Waits that grow after each failure, from `first` up to `ceiling`, and
/// start again from `first` after a success.
struct Backoff {
    first: Duration,
    ceiling: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, ceiling: Duration) -> Backoff {
        Backoff {
            first,
            ceiling,
            next: first,
        }
    }

    fn succeeded(&mut self) {
        self.next = self.first;
    }

    /// How long to wait before trying again.
    fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        wait
    }
}

/// The longest wait between two tries.
const CEILING: Duration = Duration::from_secs(30);

/// While changes keep coming, how long the pusher lets them gather before
/// its next round. The first change after a quiet spell goes at once;
/// while files are being made one by one, a round every few milliseconds
/// carried one to three of them, and the server's work per request (not
/// per entry) made it the bottleneck of the whole machine.
const GATHER: Duration = Duration::from_millis(20);

/// How long the pusher waits after a round that uploaded a file's content
/// only to find the file saved again before its post (so that version
/// never went): a file rewritten many times a second (a database, a log)
/// was uploaded whole at every round, 36–53 MiB sent for one 1 MiB file
/// saved 100 times in a second. Its last version goes this long after its
/// last save at most.
const CHURN: Duration = Duration::from_millis(250);

fn is_offline(e: &FsError) -> bool {
    matches!(
        e,
        FsError::Offline | FsError::Remote(RemoteError::Offline(_))
    )
}

/// Pushes and pulls for one mount.
pub struct Syncer {
    core: Arc<Core>,
    /// One pull at a time, so pages are applied in the order they were
    /// read.
    pulling: tokio::sync::Mutex<()>,
    /// Held by the pusher from a post until its answer is settled: the
    /// change stream's word of the post may come first, and waits for it.
    posting: tokio::sync::Mutex<()>,
    /// Set by a round that left out a file saved again during its upload
    /// (see [`CHURN`]).
    churned: std::sync::atomic::AtomicBool,
}

impl Syncer {
    pub fn new(core: Arc<Core>) -> Arc<Syncer> {
        Arc::new(Syncer {
            core,
            pulling: tokio::sync::Mutex::new(()),
            posting: tokio::sync::Mutex::new(()),
            churned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn api(&self) -> &dyn MeshApi {
        &*self.core.api
    }

    /// Starts the change listener, the pusher, the pinned-content fetcher
    /// and presence on the current runtime.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(self.clone().listen());
        tokio::spawn(self.clone().push_forever());
        tokio::spawn(self.clone().heartbeat());
        tokio::spawn(self.clone().publish_open_files());
        tokio::spawn(self.clone().keep_pinned());
    }

    /// Notes a failure of `doing`: offline is a state, anything else is
    /// worth a warning. Both show in `meshfs status`.
    fn failed(&self, activity: Activity, e: &FsError) {
        self.core.health.record_error(activity, e);
        if is_offline(e) {
            self.core.health.set_online(false);
        } else if storage::is_over_quota(e) {
            // Said once, until a push goes through again.
            self.core.storage.refused(e);
        } else {
            tracing::warn!(error = %e, "{} failed; will retry", activity.doing());
        }
    }

    /// Brings every Live Folder, and what is known of who has what open in
    /// it, up to date.
    async fn catch_up(&self) -> Result<(), FsError> {
        let folders = self.refresh_folders().await?;
        for object in &folders {
            self.pull(*object).await?;
        }
        self.refresh_usage().await;
        self.refresh_awareness(folders).await
    }

    /// Asks what the account stores and may store, for `df` and `meshfs
    /// status`; a failure leaves what was known.
    async fn refresh_usage(&self) {
        match self.api().usage().await {
            Ok(usage) => self.core.storage.set_usage(usage),
            Err(e) => tracing::debug!(error = %e, "asking for the account's storage failed"),
        }
    }

    async fn listen(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(250), CEILING);
        loop {
            let Some(e) = self.follow(&mut backoff).await else {
                continue;
            };
            if let FsError::Remote(RemoteError::SignedOut) = e {
                self.core.health.record_error(Activity::Following, &e);
                tracing::error!("this device was signed out; changes no longer sync");
                self.core.health.set_online(false);
                return;
            }
            self.failed(Activity::Following, &e);
            tokio::time::sleep(backoff.failed()).await;
        }
    }

    /// One life of the change stream: opens it, catches up, then applies
    /// each change until the stream ends (`None`: reconnect at once) or
    /// something fails.
    async fn follow(&self, backoff: &mut Backoff) -> Option<FsError> {
        let mut stream = match self.api().events(None).await {
            Ok(stream) => stream,
            Err(e) => return Some(e.into()),
        };
        // Read the stream from the moment it is open, so that nothing that
        // happens while catching up is missed, and the server never waits.
        let (tx, mut rx) = mpsc::unbounded_channel::<RemoteResult<StreamMessage>>();
        let reader = tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let last = message.is_err();
                if tx.send(message).is_err() || last {
                    break;
                }
            }
        });
        let ended = async {
            self.catch_up().await?;
            self.core.health.set_online(true);
            self.core.health.worked(Activity::Following);
            self.core.outbox_changed.notify_one();
            self.core.pins_changed.notify_one();
            backoff.succeeded();
            while let Some(first) = rx.recv().await {
                // Everything queued meanwhile, at once.
                let mut queued = vec![first];
                while let Ok(message) = rx.try_recv() {
                    queued.push(message);
                }
                for message in queued {
                    match message {
                        // A folder's pull brings every change of it made
                        // before the pull begins, and settling this
                        // device's own post reads its changes too (the note
                        // may come before the post's answer: wait for it):
                        // a note of a change the cursor is past needs no
                        // pull (a post of 5,000 entries is 5,000 notes).
                        Ok(StreamMessage::Event(Event {
                            change: Change::EntryChanged { object, .. },
                            seq,
                            ..
                        })) => {
                            drop(self.posting.lock().await);
                            let cursor = self.core.query(|conn| Ok(meta::cursor(conn, object)?))?;
                            if seq > cursor {
                                self.pull(object).await?;
                            }
                        }
                        Ok(message) => self.handle(message).await?,
                        Err(RemoteError::SignedOut) => {
                            return Err(RemoteError::SignedOut.into());
                        }
                        Err(e) => {
                            tracing::info!(error = %e, "the change stream ended; reconnecting");
                            self.core.health.record_error(Activity::Following, &e);
                            return Ok(());
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        reader.abort();
        ended.err()
    }

    async fn handle(&self, message: StreamMessage) -> Result<(), FsError> {
        let StreamMessage::Event(event) = message else {
            return self.catch_up().await;
        };
        match event.change {
            // A folder may have appeared (shared with this user), changed its
            // name or this user's role, or gone.
            Change::ObjectChanged { object } | Change::MembersChanged { object } => {
                if self.refresh_folders().await?.contains(&object) {
                    self.pull(object).await?;
                }
                Ok(())
            }
            Change::ObjectDeleted { .. } => self.refresh_folders().await.map(drop),
            Change::AwarenessChanged { object, entries } => {
                self.core.set_awareness(object, entries);
                Ok(())
            }
            Change::DeviceRevoked { device } if device.to_string() == self.core.device() => {
                Err(FsError::Remote(RemoteError::SignedOut))
            }
            _ => Ok(()),
        }
    }

    async fn push_forever(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(500), CEILING);
        // Whether pushes went since the account's usage was last asked
        // for: it is asked once a run of pushes is over, not after each
        // batch of it (a request per batch, while files are being made).
        let mut usage_stale = false;
        loop {
            let wake = self.core.outbox_changed.clone();
            let notified = wake.notified();
            let pushed = self.push_once().await;
            if self
                .churned
                .swap(false, std::sync::atomic::Ordering::Relaxed)
            {
                tokio::time::sleep(CHURN).await;
            }
            match pushed {
                // The outbox is empty: whatever was over the quota went
                // through, or is gone.
                Ok(0) => {
                    backoff.succeeded();
                    self.core.health.worked(Activity::Pushing);
                    self.core.storage.accepted();
                    if std::mem::take(&mut usage_stale) {
                        self.refresh_usage().await;
                    }
                    let _ = tokio::time::timeout(CEILING, notified).await;
                }
                Ok(pushed) => {
                    backoff.succeeded();
                    self.core.health.worked(Activity::Pushing);
                    self.core.storage.accepted();
                    usage_stale = true;
                    if pushed < push::BATCH {
                        tokio::time::sleep(GATHER).await;
                    }
                }
                Err(e) => {
                    self.failed(Activity::Pushing, &e);
                    if storage::is_over_quota(&e) {
                        self.refresh_usage().await;
                    }
                    let _ = tokio::time::timeout(backoff.failed(), notified).await;
                }
            }
        }
    }

    /// Keeps pinned content on this device: fetches what is missing
    /// whenever pins or pinned files change, or the server comes back.
    async fn keep_pinned(self: Arc<Self>) {
        let mut backoff = Backoff::new(CEILING, CEILING);
        loop {
            let wake = self.core.pins_changed.clone();
            let notified = wake.notified();
            match self.core.fetch_pinned().await {
                Ok(()) => {
                    backoff.succeeded();
                    self.core.health.worked(Activity::FetchingPinned);
                    notified.await;
                }
                Err(e) => {
                    self.failed(Activity::FetchingPinned, &e);
                    let _ = tokio::time::timeout(backoff.failed(), notified).await;
                }
            }
        }
    }

    /// At unmount: pushes what the outbox holds, for up to `limit`, then
    /// signs this device off.
    pub async fn finish(&self, limit: Duration) {
        self.flush(limit).await;
        self.sign_off().await;
    }

    /// Pushes what the outbox holds, for up to `limit`.
    async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.push_once()).await {
                Ok(Ok(0)) => return,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "changes stay in the outbox for the next mount");
                    return;
                }
                Err(_) => break,
            }
        }
        tracing::warn!("unmounting with changes still in the outbox; the next mount sends them");
    }
}

#[cfg(test)]
mod tests;
