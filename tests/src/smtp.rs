//! The e-mail side of the end-to-end tests: meshd's test SMTP receiver
//! (from `mesh-testkit`, a real TCP peer for meshd's SMTP client), and
//! reading what it received the way a mail program would — who it is for,
//! a header, the decoded body.

use std::time::{Duration, Instant};

pub use mesh_testkit::smtp::{Received, SmtpReceiver};

/// The first message to `address`, waiting up to `deadline` for it.
pub fn mail_to(smtp: &SmtpReceiver, address: &str, deadline: Duration) -> Mail {
    let start = Instant::now();
    loop {
        if let Some(mail) = smtp
            .messages()
            .into_iter()
            .find(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
        {
            return Mail(mail);
        }
        assert!(
            start.elapsed() < deadline,
            "no e-mail to {address} arrived within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A received message, read as a mail program reads it.
pub struct Mail(pub Received);

impl Mail {
    /// The value of a header (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.0.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut()
                && line.starts_with([' ', '\t'])
            {
                v.push_str(line.trim_start());
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }

    /// The body, decoded from quoted-printable or base64 as its header says
    /// (a single-part text message, as invitations are).
    pub fn body(&self) -> String {
        let raw = self.0.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match encoding.as_str() {
            "quoted-printable" => {
                let joined = raw.replace("=\r\n", "");
                let bytes = joined.as_bytes();
                let mut out = Vec::with_capacity(bytes.len());
                let mut i = 0;
                while i < bytes.len() {
                    let hex = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match (bytes[i], hex) {
                        (b'=', Some(byte)) => {
                            out.push(byte);
                            i += 3;
                        }
                        (b, _) => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
                String::from_utf8_lossy(&out).into_owned()
            }
            "base64" => {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
                for c in raw.bytes() {
                    let Some(v) = alphabet.iter().position(|&a| a == c) else {
                        continue;
                    };
                    acc = (acc << 6) | v as u32;
                    bits += 6;
                    if bits >= 8 {
                        bits -= 8;
                        out.push((acc >> bits) as u8);
                    }
                }
                String::from_utf8_lossy(&out).into_owned()
            }
            _ => raw.to_owned(),
        }
    }
}
