//! Invitation e-mail. [`Mailer`] is the small trait every way of delivering
//! mail implements: [`SmtpMailer`] hands each message to an SMTP server
//! (lettre, TLS by rustls), [`OutboxMailer`] writes it as an `.eml` file to
//! a directory — the default while no SMTP server is configured. Both send
//! the same message, built once from an [`InvitationMail`].
//!
//! The link in an invitation carries its secret token: it goes into the
//! message and nowhere else (never into a log line).

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mesh_protocol::api::{InvitationId, Role};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One invitation, as its e-mail tells it.
#[derive(Clone)]
pub struct InvitationMail {
    pub id: InvitationId,
    /// The invited address.
    pub to: String,
    /// The inviting member's e-mail address.
    pub inviter: String,
    pub object_name: String,
    pub role: Role,
    pub expires: DateTime<Utc>,
    /// The confirmation page, with the token in it: a secret.
    pub link: String,
}

impl InvitationMail {
    pub fn subject(&self) -> String {
        format!("{} shared “{}” with you", self.inviter, self.object_name)
    }

    pub fn text(&self) -> String {
        let can = match self.role {
            Role::Reader => "read it",
            Role::Editor => "read and change it",
            Role::Owner => "read and change it, and manage who it is shared with",
        };
        format!(
            "{inviter} has shared “{name}” with you on Mesh.\n\
             As {role}, you can {can}.\n\
             \n\
             To accept or decline, open this link. It works once, only for\n\
             {to}, and expires {expires}.\n\
             \n\
             {link}\n\
             \n\
             Or accept with meshfs, signed in as {to}:\n\
             \n\
             \x20   meshfs invitations\n\
             \x20   meshfs accept {id}\n\
             \n\
             `meshfs invitations` lists this invitation with its ID;\n\
             `meshfs decline {id}` declines it.\n\
             \n\
             If you did not expect this, ignore this message.\n",
            inviter = self.inviter,
            name = self.object_name,
            role = self.role.as_str(),
            to = self.to,
            expires = self.expires.format("%Y-%m-%d %H:%M UTC"),
            link = self.link,
            id = self.id,
        )
    }

    /// The message from `from`. Its body is plain UTF-8 text, sent as
    /// written (8bit) while its lines are short enough, as they are unless
    /// a name is very long; otherwise lettre picks an encoding. Either way
    /// the link line is short and plain ASCII, so it arrives whole.
    fn message(&self, from: &Mailbox) -> anyhow::Result<Message> {
        let to: Mailbox = self
            .to
            .parse()
            .with_context(|| format!("{:?} is not an e-mail address", self.to))?;
        let text = self.text();
        let body = Body::new_with_encoding(text.clone(), ContentTransferEncoding::EightBit)
            .unwrap_or_else(|_| Body::new(text));
        Ok(Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject())
            .header(ContentType::TEXT_PLAIN)
            .body(body)?)
    }
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Delivers an invitation's e-mail: `Ok` once the mail system has it.
    async fn send(&self, mail: &InvitationMail) -> anyhow::Result<()>;
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// Plain text (only for a server on this machine or a trusted network).
    None,
    /// Upgrade a plain connection with STARTTLS, refusing servers without it.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl TlsMode {
    /// The usual port of the mode: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        }
    }
}

/// Where an SMTP server is and how to sign in to it.
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    pub username: Option<String>,
    /// Secret: never logged.
    pub password: Option<String>,
    pub tls: TlsMode,
}

/// How the server sends invitations.
pub struct MailSettings {
    /// The `From` of every message.
    pub from: Mailbox,
    /// The SMTP server; without one, messages go to the outbox.
    pub smtp: Option<SmtpSettings>,
    /// The outbox directory [default: DATA/outbox].
    pub outbox: Option<PathBuf>,
}

/// The mailer `settings` ask for, with `data` as the data directory.
pub fn mailer(settings: MailSettings, data: &Path) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match settings.smtp {
        Some(smtp) => {
            tracing::info!(host = %smtp.host, tls = ?smtp.tls, "invitations are sent by SMTP");
            Arc::new(SmtpMailer::new(settings.from, smtp)?)
        }
        None => {
            let dir = settings.outbox.unwrap_or_else(|| data.join("outbox"));
            tracing::info!(
                outbox = %dir.display(),
                "no SMTP server configured: invitations are written to the outbox"
            );
            Arc::new(OutboxMailer::new(settings.from, dir))
        }
    })
}

/// Sends through an SMTP server, one connection per message.
pub struct SmtpMailer {
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    pub fn new(from: Mailbox, smtp: SmtpSettings) -> anyhow::Result<Self> {
        let tls = match smtp.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls => Tls::Required(TlsParameters::new(smtp.host.clone())?),
            TlsMode::Tls => Tls::Wrapper(TlsParameters::new(smtp.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port.unwrap_or(smtp.tls.default_port()))
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let Some(username) = smtp.username {
            builder = builder.credentials(Credentials::new(
                username,
                smtp.password.unwrap_or_default(),
            ));
        }
        Ok(SmtpMailer {
            from,
            transport: builder.build(),
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &InvitationMail) -> anyhow::Result<()> {
        let message = mail.message(&self.from)?;
        self.transport
            .send(message)
            .await
            .context("the SMTP server refused the message")?;
        tracing::info!(invitation = %mail.id, "invitation e-mail sent");
        Ok(())
    }
}

/// Writes each message to `DIR/INVITATION-ID.eml` (readable only by
/// meshd's user), whole or not at all.
pub struct OutboxMailer {
    from: Mailbox,
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(from: Mailbox, dir: PathBuf) -> Self {
        OutboxMailer { from, dir }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &InvitationMail) -> anyhow::Result<()> {
        let bytes = mail.message(&self.from)?.formatted();
        let dir = self.dir.clone();
        let path = dir.join(format!("{}.eml", mail.id));
        let tmp = dir.join(format!(".{}.eml.tmp", mail.id));
        let written = path.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            mesh_cli::private::create_dir(&dir)
                .with_context(|| format!("creating the outbox {}", dir.display()))?;
            // The message holds a secret link: only meshd's user reads it.
            let mut file = mesh_cli::private::create_file(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })
        .await??;
        tracing::info!(path = %written.display(), "invitation e-mail written to the outbox");
        Ok(())
    }
}

/// The suite every [`Mailer`] must pass. `delivered` returns every message
/// the mail system has taken so far, as sent.
#[cfg(test)]
pub(crate) async fn conformance_suite(mailer: &dyn Mailer, delivered: &dyn Fn() -> Vec<String>) {
    let token = "0123456789abcdef".repeat(2);
    let mail = InvitationMail {
        id: InvitationId::generate(),
        to: "bob@example.org".into(),
        inviter: "ann@example.org".into(),
        object_name: "Fotos “Sommer” 2026".into(),
        role: Role::Editor,
        expires: "2026-12-04T12:00:00Z".parse().unwrap(),
        link: format!("https://mesh.example.org/invite/{token}"),
    };
    mailer.send(&mail).await.unwrap();
    let messages = delivered();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(
        message.split("\r\n").all(|line| line.len() < 78),
        "a line is too long for mail: {message}"
    );
    let (head, body) = message
        .split_once("\r\n\r\n")
        .expect("headers, then a body");
    let header = |name: &str| -> String {
        let start = head
            .find(&format!("{name}: "))
            .unwrap_or_else(|| panic!("no {name} in {head}"));
        let mut value = String::new();
        for (i, line) in head[start + name.len() + 2..].split("\r\n").enumerate() {
            match i {
                0 => value.push_str(line),
                _ if line.starts_with([' ', '\t']) => value.push_str(line),
                _ => break,
            }
        }
        value
    };
    assert_eq!(header("To"), "bob@example.org");
    assert_eq!(header("From"), "Mesh <mesh@example.org>");
    assert_eq!(
        tests::decode_header(&header("Subject")),
        "ann@example.org shared “Fotos “Sommer” 2026” with you"
    );
    assert!(header("Content-Type").starts_with("text/plain"), "{head}");
    assert_eq!(header("Content-Transfer-Encoding"), "8bit");
    assert!(
        head.contains("\r\nDate: ") || head.starts_with("Date: "),
        "{head}"
    );
    // The body is the text, as written: the link whole on a line of its own.
    // (An SMTP server may keep the line end before the final dot.)
    assert_eq!(
        body.trim_end_matches("\r\n"),
        mail.text().trim_end().replace('\n', "\r\n")
    );
    assert!(body.contains(&format!("\r\n{}\r\n", mail.link)), "{body}");
    for needed in [
        "ann@example.org",
        "“Fotos “Sommer” 2026”",
        "As editor",
        "2026-12-04 12:00 UTC",
        "meshfs invitations",
        &format!("meshfs accept {}", mail.id),
    ] {
        assert!(body.contains(needed), "{needed:?} is not in {body}");
    }

    // A name too long for a line of 8bit text: the link still arrives whole.
    let long = InvitationMail {
        id: InvitationId::generate(),
        object_name: "Sommer ".repeat(20),
        ..mail.clone()
    };
    mailer.send(&long).await.unwrap();
    let messages = delivered();
    assert_eq!(messages.len(), 2);
    assert!(
        messages
            .iter()
            .all(|m| m.contains(&format!("\r\n{}\r\n", mail.link))),
        "{messages:?}"
    );

    // A message that cannot be addressed is refused, and nothing goes out.
    let bad = InvitationMail {
        to: "not an address".into(),
        ..mail
    };
    assert!(mailer.send(&bad).await.is_err());
    assert_eq!(delivered().len(), 2);
}

#[cfg(test)]
#[path = "../tests/common/smtp.rs"]
#[allow(dead_code)]
mod smtp_receiver;

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_receiver::SmtpReceiver;

    /// Decodes a header made of RFC 2047 `=?utf-8?b?…?=` words (and plain
    /// text), as a mail reader shows it.
    pub(crate) fn decode_header(value: &str) -> String {
        // White space between two encoded words is dropped; any other is kept.
        let (mut out, mut previous_encoded) = (Vec::new(), None);
        for word in value.split_whitespace() {
            let encoded = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="));
            if previous_encoded.is_some() && !(previous_encoded == Some(true) && encoded.is_some())
            {
                out.push(b' ');
            }
            match encoded {
                Some(encoded) => out.extend(base64(encoded)),
                None => out.extend(word.bytes()),
            }
            previous_encoded = Some(encoded.is_some());
        }
        String::from_utf8(out).expect("UTF-8")
    }

    fn base64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let (mut out, mut bits, mut n) = (Vec::new(), 0u32, 0);
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }

    fn sender() -> Mailbox {
        "Mesh <mesh@example.org>".parse().unwrap()
    }

    #[tokio::test]
    async fn the_outbox_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = OutboxMailer::new(sender(), outbox.clone());
        let files = || -> Vec<PathBuf> {
            std::fs::read_dir(&outbox)
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default()
        };
        let delivered = || -> Vec<String> {
            files()
                .iter()
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect()
        };
        conformance_suite(&mailer, &delivered).await;
        let files = files();
        assert_eq!(files.len(), 2, "{files:?}");
        use std::os::unix::fs::PermissionsExt;
        for file in files {
            assert_eq!(file.extension().unwrap(), "eml");
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the outbox file is readable by others");
        }
    }

    #[tokio::test]
    async fn smtp_passes_the_suite_against_a_real_receiver() {
        let receiver = SmtpReceiver::start();
        let mailer = SmtpMailer::new(
            sender(),
            SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(receiver.port),
                username: Some("mesh".into()),
                password: Some("secret".into()),
                tls: TlsMode::None,
            },
        )
        .unwrap();
        let delivered =
            || -> Vec<String> { receiver.messages().into_iter().map(|m| m.data).collect() };
        conformance_suite(&mailer, &delivered).await;
        let received = &receiver.messages()[0];
        assert_eq!(received.from, "mesh@example.org");
        assert_eq!(received.to, ["bob@example.org"]);
        assert_eq!(
            base64(received.auth.as_deref().unwrap()),
            b"\0mesh\0secret",
            "signed in with the configured credentials"
        );
    }

    #[tokio::test]
    async fn an_unreachable_smtp_server_is_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mailer = SmtpMailer::new(
            sender(),
            SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(port),
                username: None,
                password: None,
                tls: TlsMode::None,
            },
        )
        .unwrap();
        let mail = InvitationMail {
            id: InvitationId::generate(),
            to: "bob@example.org".into(),
            inviter: "ann@example.org".into(),
            object_name: "Photos".into(),
            role: Role::Reader,
            expires: Utc::now(),
            link: "http://127.0.0.1/invite/x".into(),
        };
        assert!(mailer.send(&mail).await.is_err());
    }
}
