//! The accept loop: admits connections within the caps (open connections
//! overall and per client address; one beyond them is closed at once),
//! serves each over HTTP/1.1 (inside TLS when meshd serves HTTPS: the
//! handshake runs in the connection's own task, bounded by the header-read
//! timeout, so a stalled one never holds up accepting) with a header-read
//! timeout and an idle timeout, backs off briefly when the process is out of file descriptors
//! instead of spinning, and on shutdown lets open requests finish. Every
//! request carries its client's address (`ConnectInfo<SocketAddr>`).

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::slots::{Slot, Slots};
use crate::state::Limits;

/// How long accepting pauses when the process has no file descriptor left.
const OUT_OF_FILES_PAUSE: Duration = Duration::from_millis(100);
/// How long shutdown waits for open connections before it gives up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The caps every accepted connection is counted against.
struct Admission {
    open: Arc<Semaphore>,
    max: usize,
    per_address: Arc<Slots<IpAddr>>,
    /// Set while the overall cap turns connections away, so that it is
    /// logged once each time it is reached, not once per connection.
    full: AtomicBool,
}

/// An admitted connection's places; given back when its socket closes
/// (after an upgrade to WebSocket too, as it travels with the socket).
struct Admitted {
    _open: OwnedSemaphorePermit,
    _address: Slot<IpAddr>,
}

impl Admission {
    fn admit(&self, peer: SocketAddr) -> Option<Admitted> {
        let Ok(open) = self.open.clone().try_acquire_owned() else {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max = self.max,
                    "every connection is taken; closing new ones at once until one ends"
                );
            }
            return None;
        };
        self.full.store(false, Ordering::Relaxed);
        let Some(address) = self.per_address.take(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "this address holds all its connections; closing a new one");
            return None;
        };
        Some(Admitted {
            _open: open,
            _address: address,
        })
    }
}

/// Serves `app` on `listener` until `shutdown` becomes true, then waits
/// (at most [`DRAIN_LIMIT`]) for the connections still open to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let admission = Admission {
        open: Arc::new(Semaphore::new(limits.max_connections)),
        max: limits.max_connections,
        per_address: Slots::new(limits.max_connections_per_address),
        full: AtomicBool::new(false),
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let idle = limits.idle_timeout;
    let handshake = limits.header_timeout;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Dropped at once when over a cap: the socket closes.
                let Some(admitted) = admission.admit(peer) else {
                    continue;
                };
                let connection = Connection {
                    io: Tracked {
                        stream,
                        activity: Arc::new(Activity::new()),
                        _admitted: admitted,
                    },
                    peer,
                };
                let serving = Serving {
                    http: http.clone(),
                    app: app.clone(),
                    idle,
                    shutdown: shutdown.clone(),
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => connection.serve(serving).await,
                        Some(tls) => connection.serve_tls(tls, handshake, serving).await,
                    }
                });
            }
            Err(e) if is_out_of_files(&e) => {
                tracing::warn!(error = %e, "no file descriptor left to accept a connection; pausing");
                tokio::select! {
                    _ = tokio::time::sleep(OUT_OF_FILES_PAUSE) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
            // The client went away before it was accepted, and the like.
            Err(e) => tracing::debug!(error = %e, "accepting a connection failed"),
        }
    }
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_LIMIT, admission.open.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN_LIMIT:?} after shutdown began; closing them");
    }
}

fn is_out_of_files(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

struct Connection {
    io: Tracked,
    peer: SocketAddr,
}

/// What serving one connection needs.
struct Serving {
    http: http1::Builder,
    app: Router,
    idle: Duration,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(self, serving: Serving) {
        let activity = self.io.activity.clone();
        serve_io(self.io, self.peer, activity, serving).await;
    }

    /// Completes the TLS handshake within `limit`, then serves over it.
    async fn serve_tls(self, tls: TlsAcceptor, limit: Duration, serving: Serving) {
        let peer = self.peer;
        let activity = self.io.activity.clone();
        match tokio::time::timeout(limit, tls.accept(self.io)).await {
            Ok(Ok(stream)) => serve_io(stream, peer, activity, serving).await,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, client = %peer.ip(), "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(client = %peer.ip(), "closing a connection whose TLS handshake took over {limit:?}");
            }
        }
    }
}

/// Serves HTTP/1.1 on `io` until it ends, goes idle or shutdown finishes it.
async fn serve_io<I>(io: I, peer: SocketAddr, activity: Arc<Activity>, serving: Serving)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Serving {
        http,
        app,
        idle,
        mut shutdown,
    } = serving;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, client = %peer.ip(), "connection ended");
                }
                return;
            }
            _ = activity.idle_for(idle) => {
                tracing::debug!(client = %peer.ip(), "closing a connection idle for {idle:?}");
                return;
            }
            _ = shutdown.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When a connection last moved a byte either way.
struct Activity {
    start: Instant,
    /// Milliseconds from `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A client's socket that notes its activity and holds its admission.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
    _admitted: Admitted,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
