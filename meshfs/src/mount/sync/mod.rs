//! Keeping the mount and the server in step: one change-stream connection
//! per mount brings other devices' changes (each folder pulled since its
//! cursor) and awareness, the pusher sends the outbox, a third task fetches
//! pinned content, and two more keep this device present (heartbeats, and
//! publishing which files are open). All notice when the server is
//! unreachable, back off, and reconnect on their own; offline is a state,
//! reported by `meshfs status`.

mod live;
mod pull;
mod push;

use mesh_protocol::api::{Change, StreamMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::client::http::RemoteError;
use crate::mount::core::Core;
use crate::mount::error::FsError;

/// Starts the change listener and the pusher on the current runtime.
pub fn start(core: Arc<Core>) {
    tokio::spawn(listen(core.clone()));
    tokio::spawn(push_forever(core.clone()));
    tokio::spawn(live::heartbeat(core.clone()));
    tokio::spawn(live::publish_open_files(core.clone()));
    tokio::spawn(keep_pinned(core));
}

fn is_offline(e: &FsError) -> bool {
    matches!(
        e,
        FsError::Offline | FsError::Remote(RemoteError::Offline(_))
    )
}

/// Brings every Live Folder, and what is known of who has what open in
/// it, up to date.
async fn catch_up(core: &Core) -> Result<(), FsError> {
    let folders = core.refresh_folders().await?;
    for object in &folders {
        core.pull(*object).await?;
    }
    live::refresh_awareness(core, folders).await
}

async fn listen(core: Arc<Core>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let remote = core.remote.clone();
        let mut stream = tokio::spawn(async move {
            remote
                .events(
                    None,
                    move || {
                        let _ = opened_tx.send(());
                    },
                    move |m| {
                        let _ = tx.send(m);
                    },
                )
                .await
        });
        // Catch up only once the stream is open, so that nothing that
        // happens in between is missed.
        let caught_up = tokio::select! {
            o = opened_rx => match o {
                Ok(()) => catch_up(&core).await,
                Err(_) => Err(FsError::Offline),
            },
            ended = &mut stream => match ended {
                Ok(Err(e)) => Err(FsError::Remote(e)),
                _ => Err(FsError::Offline),
            },
        };
        let failed = match caught_up {
            Ok(()) => {
                core.set_online(true);
                core.outbox_changed.notify_one();
                core.pins_changed.notify_one();
                backoff = Duration::from_millis(250);
                let mut failed = None;
                while let Some(message) = rx.recv().await {
                    if let Err(e) = handle(&core, message).await {
                        failed = Some(e);
                        break;
                    }
                }
                stream.abort();
                match (failed, stream.await) {
                    (Some(e), _) => Some(e),
                    (None, Ok(Err(RemoteError::SignedOut))) => {
                        Some(FsError::Remote(RemoteError::SignedOut))
                    }
                    (None, Ok(Err(e))) => {
                        tracing::info!(error = %e, "the change stream ended; reconnecting");
                        core.record_error(&e);
                        None
                    }
                    (None, _) => None,
                }
            }
            Err(e) => {
                stream.abort();
                Some(e)
            }
        };
        let Some(e) = failed else { continue };
        core.record_error(&e);
        if let FsError::Remote(RemoteError::SignedOut) = e {
            tracing::error!("this device was signed out; changes no longer sync");
            core.set_online(false);
            return;
        }
        if is_offline(&e) {
            core.set_online(false);
        } else {
            tracing::warn!(error = %e, "keeping up with the server failed; trying again");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn handle(core: &Core, message: StreamMessage) -> Result<(), FsError> {
    let StreamMessage::Event(event) = message else {
        return catch_up(core).await;
    };
    match event.change {
        Change::EntryChanged { object, .. } => core.pull(object).await,
        // A folder may have appeared (shared with this user), changed its
        // name or this user's role, or gone.
        Change::ObjectChanged { object } | Change::MembersChanged { object } => {
            if core.refresh_folders().await?.contains(&object) {
                core.pull(object).await?;
            }
            Ok(())
        }
        Change::ObjectDeleted { .. } => core.refresh_folders().await.map(drop),
        Change::AwarenessChanged { object, entries } => {
            core.set_awareness(object, entries);
            Ok(())
        }
        Change::DeviceRevoked { device } if device.to_string() == core.device() => {
            Err(FsError::Remote(RemoteError::SignedOut))
        }
        _ => Ok(()),
    }
}

async fn push_forever(core: Arc<Core>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let wake = core.outbox_changed.clone();
        let notified = wake.notified();
        match core.push_once().await {
            Ok(0) => {
                backoff = Duration::from_millis(500);
                let _ = tokio::time::timeout(Duration::from_secs(30), notified).await;
            }
            Ok(_) => backoff = Duration::from_millis(500),
            Err(e) => {
                core.record_error(&e);
                if is_offline(&e) {
                    core.set_online(false);
                } else {
                    tracing::warn!(error = %e, "pushing changes failed; will retry");
                }
                let _ = tokio::time::timeout(backoff, notified).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Keeps pinned content on this device: fetches what is missing whenever
/// pins or pinned files change, or the server comes back.
async fn keep_pinned(core: Arc<Core>) {
    loop {
        let wake = core.pins_changed.clone();
        let notified = wake.notified();
        let mut retry = None;
        if let Err(e) = core.fetch_pinned().await {
            if !is_offline(&e) {
                tracing::warn!(error = %e, "fetching pinned content failed; will retry");
                core.record_error(&e);
            }
            retry = Some(Duration::from_secs(30));
        }
        match retry {
            Some(after) => {
                let _ = tokio::time::timeout(after, notified).await;
            }
            None => notified.await,
        }
    }
}

/// At unmount: pushes what the outbox holds, for up to `limit`, then signs
/// this device off.
pub async fn finish(core: &Core, limit: Duration) {
    flush(core, limit).await;
    live::sign_off(core).await;
}

/// Pushes what the outbox holds, for up to `limit`.
async fn flush(core: &Core, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, core.push_once()).await {
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
