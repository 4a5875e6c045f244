//! `meshd serve`: opens the data directory, starts the HTTP API and the
//! background tasks, and shuts down gracefully on SIGTERM or SIGINT.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{RwLock, watch};

use crate::auth::PasswordChecks;
use crate::awareness::AwarenessDocs;
use crate::blob::FsBlobStore;
use crate::db::Db;
use crate::fanout::RecentChanges;
use crate::mail::MailSettings;
use crate::notify::LocalNotifier;
use crate::presence::Presence;
use crate::rate::AddressRate;
use crate::slice_trees::SliceTrees;
use crate::slots::Slots;
use crate::state::{AppState, Limits};
use crate::store::changes;
use crate::throttle::{SignInThrottle, Throttle};
use crate::tls::{self, Transport};

/// The database file inside a data directory.
pub fn database_path(data: &Path) -> std::path::PathBuf {
    data.join("meshd.sqlite3")
}

/// Opens the data directory's database, creating the directory if needed.
pub fn open_database(data: &Path) -> anyhow::Result<Db> {
    mesh_cli::private::create_dir(data).with_context(|| format!("creating {}", data.display()))?;
    Db::open(&database_path(data))
}

/// Runs the server until SIGTERM or SIGINT, over `transport`. Links in
/// e-mail point at `public_url`, or when it is `None` at
/// [`tls::default_public_url`].
pub async fn serve(
    data: &Path,
    listen: SocketAddr,
    transport: Transport,
    limits: Limits,
    mail: MailSettings,
    public_url: Option<String>,
) -> anyhow::Result<()> {
    transport.check_public_url(public_url.as_deref())?;
    let db = open_database(data)?;
    let tls = tls::load(&transport, data, tls::names(listen))?;
    let mailer = crate::mail::mailer(mail, data)?;
    let blobs = Arc::new(FsBlobStore::open(&data.join("chunks"))?);
    let slice_trees = Arc::new(SliceTrees::new(
        SliceTrees::BUDGET,
        Arc::new(FsBlobStore::open(&data.join("slice-trees"))?),
    ));
    let head = db
        .read(|conn| Ok::<_, anyhow::Error>(changes::head(conn)?))
        .await?;
    let notifier = Arc::new(LocalNotifier::new(head));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let public_url = public_url.unwrap_or_else(|| tls::default_public_url(addr, tls.is_some()));
    let (stop, shutdown) = watch::channel(false);
    let awareness = AwarenessDocs::start(db.clone(), notifier.clone(), shutdown.clone());
    let recent = RecentChanges::start(db.clone(), notifier.clone(), head, shutdown.clone());
    let state = AppState {
        presence: Presence::start(
            db.clone(),
            notifier.clone(),
            awareness.clone(),
            limits.presence_lease,
            shutdown.clone(),
        ),
        awareness,
        recent,
        db,
        blobs,
        notifier,
        limits: Arc::new(limits.clone()),
        chunk_gate: Arc::new(RwLock::new(())),
        slice_trees,
        sign_in_throttle: Arc::new(SignInThrottle::new(
            limits.sign_in_failures,
            limits.sign_in_failures_per_address,
        )),
        invitation_throttle: Arc::new(Throttle::new(10)),
        password_checks: Arc::new(PasswordChecks::new(
            limits.password_checks(),
            limits.password_queue_wait,
        )),
        public_rate: Arc::new(AddressRate::new(limits.public_requests_per_minute)),
        streams: Slots::new(limits.max_streams_per_device),
        mailer,
        public_url: public_url.trim_end_matches('/').into(),
        shutdown,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, data = %data.display(), %public_url, "meshd listening on {scheme}");
    // The first line on stdout names the address, so that whoever started
    // meshd on port 0 learns which port it got; the second, with HTTPS,
    // the certificate's fingerprint that clients pin.
    println!("meshd listening on {scheme}://{addr}");
    if let Some(tls) = &tls {
        tracing::info!(fingerprint = %tls.fingerprint, "TLS certificate's SHA-256 fingerprint");
        println!("meshd certificate SHA-256 fingerprint {}", tls.fingerprint);
    }
    if let Transport::Plain { insecure: true } = transport {
        tracing::warn!(
            %addr,
            "serving plain HTTP off loopback (--insecure-http): passwords, tokens and files cross the network unencrypted"
        );
    }
    // Under systemd (`Type=notify`) the unit counts as started from here.
    mesh_cli::notify::ready();
    let gc = tokio::spawn(crate::gc::run(state.clone()));
    let app = crate::http::router(state);
    let connections = crate::connections::serve(
        listener,
        app,
        &limits,
        tls.map(|tls| tls.acceptor),
        stop.subscribe(),
    );
    tokio::pin!(connections);
    tokio::select! {
        _ = &mut connections => {}
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            let _ = stop.send(true);
            // Open requests finish; streams end.
            connections.await;
        }
    }
    gc.await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
