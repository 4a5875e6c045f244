//! A TCP proxy between a device and meshd that a test makes misbehave, the
//! way a bad network does: pass bytes through, delay them, stall (keep every
//! connection open and move nothing), or cut (close every connection and
//! refuse new ones). Plain threads, one pair per connection; the proxy stops
//! when dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the network does to the bytes that cross it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Pass,
    /// Every piece waits this long before it crosses.
    Delay(Duration),
    /// Connections stay open; nothing crosses until the link changes.
    Stall,
    /// Every connection is closed, new ones closed at once.
    Cut,
}

struct Shared {
    link: Mutex<Link>,
    stopped: AtomicBool,
}

/// A misbehaving link to one upstream address, listening on 127.0.0.1.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// How often a waiting pump looks at the link again.
const TICK: Duration = Duration::from_millis(20);

impl FaultProxy {
    /// A proxy to the server at `upstream` (`http://host:port`), passing
    /// bytes through.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("an upstream http://host:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            link: Mutex::new(Link::Pass),
            stopped: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept(listener, upstream, shared))
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The URL a device signs in to, to go through this proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what the link does, from now on.
    pub fn set(&self, link: Link) {
        *self.shared.link.lock().expect("link") = link;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn link(shared: &Shared) -> Link {
    *shared.link.lock().expect("link")
}

fn accept(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while !shared.stopped.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if link(&shared) == Link::Cut {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let shared = shared.clone();
                        std::thread::spawn(move || pump(from, to, &shared));
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
}

/// Moves bytes from `from` to `to` as the link allows, until either side
/// closes, the link is cut or the proxy stops (each within a tick).
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = vec![0u8; 64 * 1024];
    let close = |from: &TcpStream, to: &TcpStream| {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    loop {
        if shared.stopped.load(Ordering::SeqCst) {
            return close(&from, &to);
        }
        match link(shared) {
            Link::Cut => return close(&from, &to),
            // Nothing is read, so the sender's buffers fill and it waits.
            Link::Stall => {
                std::thread::sleep(TICK);
                continue;
            }
            Link::Pass | Link::Delay(_) => {}
        }
        let n = match from.read(&mut buf) {
            Ok(0) => return close(&from, &to),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return close(&from, &to),
        };
        // What was read crosses once the link lets it: after a delay, or
        // when a stall ends; a cut meanwhile loses it, as a real one would.
        loop {
            match link(shared) {
                Link::Pass => break,
                Link::Delay(d) => {
                    std::thread::sleep(d);
                    break;
                }
                Link::Stall => std::thread::sleep(TICK),
                Link::Cut => return close(&from, &to),
            }
            if shared.stopped.load(Ordering::SeqCst) {
                return close(&from, &to);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            return close(&from, &to);
        }
    }
}
