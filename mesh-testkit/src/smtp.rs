//! A tiny SMTP receiver for tests (std::net, a thread per connection): it
//! speaks enough SMTP for a real client — EHLO/HELO, AUTH PLAIN, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT — and records every message it is given.
//! Not a mock of meshd's mail code: meshd talks to it over TCP as it would
//! to any mail server. Used by meshd's own unit tests (`src/mail.rs`, through
//! `meshd-server/tests/common/smtp.rs`) and by the tests that run the real
//! binary.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One message as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The argument of `AUTH PLAIN` (base64), if the client signed in.
    pub auth: Option<String>,
    /// The message, headers and body, with CRLF line ends and dot-stuffing
    /// undone.
    pub data: String,
}

type Inbox = Arc<(Mutex<Vec<Received>>, Condvar)>;

pub struct SmtpReceiver {
    pub port: u16,
    inbox: Inbox,
}

impl SmtpReceiver {
    /// Listens on a free port of 127.0.0.1, in the background, for as long
    /// as the test process runs.
    pub fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the SMTP receiver");
        let port = listener.local_addr().unwrap().port();
        let inbox: Inbox = Arc::default();
        let shared = inbox.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let inbox = shared.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &inbox);
                });
            }
        });
        SmtpReceiver { port, inbox }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.inbox.0.lock().unwrap().clone()
    }

    /// Waits until `n` messages have arrived (at most `limit`), and
    /// returns them all.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        let (lock, arrived) = &*self.inbox;
        let mut messages = lock.lock().unwrap();
        while messages.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} messages arrived within {limit:?}",
                messages.len()
            );
            messages = arrived.wait_timeout(messages, left).unwrap().0;
        }
        messages.clone()
    }
}

/// The address inside `FROM:<…>` or `TO:<…>`.
fn path(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..]
        .find('>')
        .map_or(argument.len(), |i| start + i);
    argument[start..end].to_owned()
}

fn session(stream: TcpStream, inbox: &Inbox) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    reply("220 receiver ESMTP test")?;
    let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            reply("250-receiver\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 10485760")?;
        } else if upper.starts_with("HELO") {
            reply("250 receiver")?;
        } else if let Some(argument) = upper.strip_prefix("AUTH PLAIN") {
            let argument = command[command.len() - argument.len()..].trim();
            auth = if argument.is_empty() {
                reply("334 ")?;
                let mut next = String::new();
                lines.read_line(&mut next)?;
                Some(next.trim_end().to_owned())
            } else {
                Some(argument.to_owned())
            };
            reply("235 2.7.0 authenticated")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = path(&command[10..]);
            reply("250 2.1.0 ok")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(path(&command[8..]));
            reply("250 2.1.5 ok")?;
        } else if upper == "DATA" {
            reply("354 end with <CRLF>.<CRLF>")?;
            let mut data = String::new();
            loop {
                let mut text = String::new();
                if lines.read_line(&mut text)? == 0 {
                    return Ok(());
                }
                if text == ".\r\n" {
                    break;
                }
                data.push_str(text.strip_prefix('.').unwrap_or(&text));
            }
            let received = Received {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                auth: auth.clone(),
                data,
            };
            let (lock, arrived) = &**inbox;
            lock.lock().unwrap().push(received);
            arrived.notify_all();
            reply("250 2.0.0 queued")?;
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            reply("250 2.0.0 ok")?;
        } else if upper == "NOOP" {
            reply("250 2.0.0 ok")?;
        } else if upper == "QUIT" {
            reply("221 2.0.0 bye")?;
            return Ok(());
        } else {
            reply("502 5.5.2 not implemented")?;
        }
    }
}
