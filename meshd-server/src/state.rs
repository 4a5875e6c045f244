//! What every request handler shares: the database, the blob store, the
//! change notifier, presence and awareness, the mailer, and the server's settings.

use rusqlite::Transaction;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{RwLock, watch};

use crate::awareness::AwarenessDocs;
use crate::blob::BlobStore;
use crate::db::Db;
use crate::error::ApiResult;
use crate::fanout::RecentChanges;
use crate::mail::Mailer;
use crate::notify::ChangeNotifier;
use crate::presence::Presence;
use crate::store::changes;
use crate::throttle::Throttle;

/// Settings that shape the server's behaviour once it runs.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long the change log keeps changes; older cursors get a resync.
    pub event_retention: Duration,
    /// How long an uploaded chunk stays even though nothing refers to it,
    /// so uploads in flight are safe from collection.
    pub chunk_grace: Duration,
    /// How often unreferenced chunks and old changes are collected.
    pub gc_interval: Duration,
    /// The largest request body, except chunk uploads.
    pub max_body: usize,
    /// How often the change stream sends a heartbeat.
    pub heartbeat: Duration,
    /// How long an invitation can be accepted.
    pub invitation_ttl: Duration,
    /// How long a device stays online after its last heartbeat.
    pub presence_lease: Duration,
    /// How long after one person's last change to a folder a further
    /// change still joins the same news item.
    pub news_window: Duration,
}

impl Limits {
    /// The built-in settings: the defaults of `meshd serve`'s flags (and so
    /// of the configuration file) are read from here, and nowhere else.
    pub const DEFAULT: Limits = Limits {
        event_retention: Duration::from_secs(30 * 24 * 3600),
        chunk_grace: Duration::from_secs(3600),
        gc_interval: Duration::from_secs(600),
        max_body: 32 * 1024 * 1024,
        heartbeat: Duration::from_secs(15),
        invitation_ttl: Duration::from_secs(7 * 24 * 3600),
        presence_lease: Duration::from_secs(30),
        news_window: Duration::from_secs(60),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub blobs: Arc<dyn BlobStore>,
    pub notifier: Arc<dyn ChangeNotifier>,
    /// The recent changes every change stream reads.
    pub recent: RecentChanges,
    pub presence: Presence,
    pub awareness: AwarenessDocs,
    pub limits: Arc<Limits>,
    /// Chunk uploads hold this shared; collection holds it exclusively, so
    /// a chunk is never deleted between an upload's write and its record.
    pub chunk_gate: Arc<RwLock<()>>,
    /// Failed sign-ins per e-mail address.
    pub sign_in_throttle: Arc<Throttle>,
    /// Failed attempts to accept an invitation by token, per user.
    pub invitation_throttle: Arc<Throttle>,
    /// Delivers invitation e-mail.
    pub mailer: Arc<dyn Mailer>,
    /// Where people reach this server (`https://mesh.example.org`, no
    /// trailing slash), for links in e-mail.
    pub public_url: Arc<str>,
    /// Becomes true when the server shuts down; long-lived streams end.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Runs `f` in a write transaction and, once it has committed, wakes
    /// the change stream for whatever changes it recorded.
    pub async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> ApiResult<T> + Send + 'static,
    {
        let (out, head) = self
            .db
            .write(move |tx| {
                let out = f(tx)?;
                Ok::<_, crate::error::ApiError>((out, changes::head(tx)?))
            })
            .await?;
        self.notifier.publish(head);
        Ok(out)
    }
}
