//! Being present: heartbeats keep this device online on the server for as
//! long as the mount runs, which files are open here goes to each Live
//! Folder's awareness document as they open and close, and unmounting
//! signs the device off at once rather than letting its lease run out.

use mesh_protocol::api::ObjectId;
use mesh_protocol::live::FolderAwareness;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::Syncer;
use crate::client::RemoteError;
use crate::mount::error::FsError;

/// How long opens and closes gather before one publication carries them.
const GATHER: Duration = Duration::from_millis(100);
/// How long to wait after a failed heartbeat, or when the server names no
/// renewal interval.
const RETRY: Duration = Duration::from_secs(5);

/// Renews this device's presence lease for as long as the mount runs (or
/// until the device is signed out).
impl Syncer {
    pub(super) async fn heartbeat(self: Arc<Self>) {
        loop {
            let wait = match self.api().renew_presence().await {
                Ok(lease) if lease.renew_ms > 0 => Duration::from_millis(lease.renew_ms),
                Ok(_) => RETRY,
                Err(RemoteError::SignedOut) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "presence heartbeat failed");
                    RETRY
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Publishes what is open here whenever it changes, and everything again
    /// after the change stream reconnects (the server may have restarted, or
    /// ended this device's lease while it was away).
    pub(super) async fn publish_open_files(self: Arc<Self>) {
        let mut published: HashMap<ObjectId, FolderAwareness> = HashMap::new();
        loop {
            self.core.open_changed.notified().await;
            tokio::time::sleep(GATHER).await;
            if self.core.take_republish() {
                published.clear();
            }
            let now = match self.core.open_files() {
                Ok(now) => now,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the open files failed");
                    continue;
                }
            };
            published.retain(|object, _| now.contains_key(object));
            for (object, open) in now {
                if published.get(&object) == Some(&open) {
                    continue;
                }
                match self.api().publish_awareness(object, &open).await {
                    Ok(()) => {
                        published.insert(object, open);
                    }
                    Err(e) => {
                        // Published again once the stream reconnects.
                        tracing::debug!(%object, error = %e, "publishing open files failed");
                    }
                }
            }
        }
    }

    /// Reads the awareness documents of `folders` (after connecting, when the
    /// events that carried them were missed), and has this device's own state
    /// published again.
    pub(super) async fn refresh_awareness(&self, folders: Vec<ObjectId>) -> Result<(), FsError> {
        for object in folders {
            match self.api().awareness(object).await {
                Ok(doc) => self.core.set_awareness(object, doc.entries),
                // Gone or no longer shared: the folder list catches up.
                Err(RemoteError::NotFound) => self.core.set_awareness(object, Vec::new()),
                Err(e) => return Err(e.into()),
            }
        }
        self.core.request_republish();
        Ok(())
    }

    /// Signs this device off, so others see it leave at once (at unmount).
    pub(super) async fn sign_off(&self) {
        match tokio::time::timeout(Duration::from_secs(2), self.api().sign_off()).await {
            Ok(Ok(())) => tracing::debug!("signed off"),
            Ok(Err(e)) => tracing::debug!(error = %e, "signing off failed; the lease will lapse"),
            Err(_) => tracing::debug!("signing off timed out; the lease will lapse"),
        }
    }
}
