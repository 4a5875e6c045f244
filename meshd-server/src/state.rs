//! What every request handler shares: the database, the blob store, the
//! change notifier, presence and awareness, the mailer, and the server's settings.

use rusqlite::Transaction;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{RwLock, watch};

use crate::auth::{PasswordChecks, Principal};
use crate::awareness::AwarenessDocs;
use crate::blob::BlobStore;
use crate::db::Db;
use crate::error::ApiResult;
use crate::fanout::RecentChanges;
use crate::mail::Mailer;
use crate::notify::ChangeNotifier;
use crate::presence::Presence;
use crate::rate::AddressRate;
use crate::slice_trees::SliceTrees;
use crate::slots::Slots;
use crate::store::changes;
use crate::throttle::{SignInThrottle, Throttle};

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
    /// How long a tombstone is served in its feed before it is compacted;
    /// a reader whose cursor is older then gets the complete feed.
    pub tombstone_retention: Duration,
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
    /// Open connections at most; one beyond is closed at once.
    pub max_connections: usize,
    /// Open connections at most from one client address.
    pub max_connections_per_address: usize,
    /// How long a client has to send a request's headers, counted from
    /// when the server waits for them (on a new connection, or between
    /// requests on a kept-alive one).
    pub header_timeout: Duration,
    /// How long a connection may move no byte either way before it is
    /// closed (longer than `heartbeat`, so event streams are never idle).
    pub idle_timeout: Duration,
    /// Event streams one device token may hold open at once.
    pub max_streams_per_device: usize,
    /// Password checks (argon2, 19 MiB each) run at once; `None` is one per
    /// CPU.
    pub password_checks: Option<NonZeroUsize>,
    /// How long a sign-in waits for a password check before it is
    /// answered `503`.
    pub password_queue_wait: Duration,
    /// Requests per minute one client address may make to the routes
    /// strangers reach: `POST /v1/tokens`, `GET` and `POST /invite/{token}`.
    pub public_requests_per_minute: u32,
    /// Wrong passwords for one account from one address before each
    /// further attempt waits (a wait that doubles with every failure).
    pub sign_in_failures: u32,
    /// Wrong passwords from one address, whatever the accounts, before
    /// each further attempt from it waits likewise.
    pub sign_in_failures_per_address: u32,
    /// Hashes at most in one `POST /v1/chunks/missing`.
    pub max_missing_hashes: usize,
    /// The storage quota, in bytes, of every user without one of their own
    /// (`None`: unlimited).
    pub default_quota: Option<u64>,
}

impl Limits {
    /// The built-in settings: the defaults of `meshd serve`'s flags (and so
    /// of the configuration file) are read from here, and nowhere else.
    pub const DEFAULT: Limits = Limits {
        event_retention: Duration::from_secs(30 * 24 * 3600),
        chunk_grace: Duration::from_secs(3600),
        gc_interval: Duration::from_secs(600),
        tombstone_retention: Duration::from_secs(30 * 24 * 3600),
        max_body: 32 * 1024 * 1024,
        heartbeat: Duration::from_secs(15),
        invitation_ttl: Duration::from_secs(7 * 24 * 3600),
        presence_lease: Duration::from_secs(30),
        news_window: Duration::from_secs(60),
        max_connections: 512,
        max_connections_per_address: 64,
        header_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(120),
        max_streams_per_device: 8,
        password_checks: None,
        password_queue_wait: Duration::from_secs(10),
        public_requests_per_minute: 30,
        sign_in_failures: 10,
        sign_in_failures_per_address: 20,
        max_missing_hashes: 1000,
        default_quota: None,
    };

    /// How many password checks run at once.
    pub fn password_checks(&self) -> usize {
        self.password_checks
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
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
    /// The outboard trees verified slices are cut from.
    pub slice_trees: Arc<SliceTrees>,
    /// Failed sign-ins per account and client address, and per address.
    pub sign_in_throttle: Arc<SignInThrottle>,
    /// Failed attempts to accept an invitation by token, per user.
    pub invitation_throttle: Arc<Throttle<String>>,
    /// The password checks that may run at once.
    pub password_checks: Arc<PasswordChecks>,
    /// Requests per client address to the routes strangers reach.
    pub public_rate: Arc<AddressRate>,
    /// Open event streams per device (per app).
    pub streams: Arc<Slots<Principal>>,
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
