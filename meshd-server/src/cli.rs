//! The `meshd` command line: `serve`, `user add|passwd|quota|list|totp`, `app
//! add|list|revoke`, `config check`, and
//! the offline `feedsync merge` tool. Every setting is a flag, an
//! environment variable and a key of the configuration file
//! (`/etc/meshd/meshd.toml`, see `mesh_cli::settings`). Errors go to stderr
//! with a non-zero exit status.

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mesh_cli::display::escaped;
use mesh_cli::settings::{Config, Location};

use crate::mail::{MailSettings, SmtpSettings, TlsMode};
use crate::state::Limits;
use crate::tls::Transport;

/// Settings whose values `config check` does not print.
const SECRET_SETTINGS: &[&str] = &["smtp-password"];

/// Where the configuration file is unless `--config` or `MESHD_CONFIG`
/// says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/meshd/meshd.toml";

const CONFIG_HELP: &str = "\
Configuration:
  Every setting can also be given in /etc/meshd/meshd.toml (or the file named by
  --config or MESHD_CONFIG), one `name = value` line per setting, named like its
  flag without the dashes, e.g.

      listen = \"0.0.0.0:7070\"
      data = \"/var/lib/meshd\"
      chunk-grace = 3600
      log = \"info\"
      smtp-host = \"smtp.example.org\"

  A flag beats its environment variable, which beats the file, which beats the
  built-in default. `meshd config check [FILE]` checks a file and names the line
  of each problem.";
use crate::store::{accounts, apps, totp, usage};
use mesh_protocol::api::{AppGrant, AppId, CreateApp};

#[derive(Parser)]
#[command(
    name = "meshd",
    version,
    about = "The Mesh server: devices, mesh objects, FeedSync feeds, chunks and the change stream",
    after_long_help = CONFIG_HELP
)]
struct Cli {
    /// The configuration file [default: /etc/meshd/meshd.toml, if it exists]
    #[arg(long, env = "MESHD_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// What to log, as a tracing filter (`info`, `meshd_server=debug,warn`)
    /// [default: info for `serve`, warn otherwise]
    #[arg(long, env = "RUST_LOG", global = true, value_name = "FILTER", value_parser = mesh_cli::logging::filter)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DataDir {
    /// The data directory (database and chunks) [default: $XDG_DATA_HOME/meshd]
    #[arg(long, env = "MESHD_DATA", global = true)]
    data: Option<PathBuf>,
}

impl DataDir {
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data {
            return Ok(d.clone());
        }
        directories::ProjectDirs::from("", "", "meshd")
            .map(|p| p.data_dir().to_owned())
            .context("no home directory to keep data in; give --data DIR")
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        data: DataDir,
        /// Address to listen on; port 0 picks a free port (printed on stdout).
        #[arg(long, env = "MESHD_LISTEN", default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        /// Seconds an uploaded chunk is kept while nothing refers to it.
        #[arg(
            long,
            env = "MESHD_CHUNK_GRACE",
            value_name = "SECONDS",
            default_value_t = Limits::DEFAULT.chunk_grace.as_secs()
        )]
        chunk_grace: u64,
        /// Seconds between collections of unreferenced chunks and old changes.
        #[arg(
            long,
            env = "MESHD_GC_INTERVAL",
            value_name = "SECONDS",
            default_value_t = Limits::DEFAULT.gc_interval.as_secs()
        )]
        gc_interval: u64,
        /// Seconds a deleted entry stays in its feed before its tombstone is
        /// compacted; a device or endpoint whose cursor is older then reads
        /// the whole feed again.
        #[arg(
            long,
            env = "MESHD_TOMBSTONE_RETENTION",
            value_name = "SECONDS",
            default_value_t = Limits::DEFAULT.tombstone_retention.as_secs()
        )]
        tombstone_retention: u64,
        /// Seconds the change log keeps changes; older cursors get a resync.
        #[arg(long, env = "MESHD_EVENT_RETENTION", value_name = "SECONDS", default_value_t = Limits::DEFAULT.event_retention.as_secs())]
        event_retention: u64,
        /// Seconds between heartbeats on the change stream.
        #[arg(
            long,
            env = "MESHD_HEARTBEAT",
            value_name = "SECONDS",
            default_value_t = Limits::DEFAULT.heartbeat.as_secs()
        )]
        heartbeat: u64,
        /// Seconds a device stays online after its last heartbeat (devices
        /// renew at half of it; a clean disconnect ends it at once).
        #[arg(
            long,
            env = "MESHD_PRESENCE_LEASE",
            value_name = "SECONDS",
            default_value_t = Limits::DEFAULT.presence_lease.as_secs()
        )]
        presence_lease: u64,
        /// Seconds after one person's last change to a folder in which a
        /// further change joins the same news item.
        #[arg(
            long,
            env = "MESHD_NEWS_WINDOW",
            value_name = "SECONDS",
            default_value_t = Limits::DEFAULT.news_window.as_secs()
        )]
        news_window: u64,
        #[command(flatten)]
        tls: TlsArgs,
        /// Largest request body in bytes (chunk uploads have their own limit).
        #[arg(long, env = "MESHD_MAX_BODY", value_name = "BYTES", default_value_t = Limits::DEFAULT.max_body)]
        max_body: usize,
        #[command(flatten)]
        default_quota: DefaultQuota,
        #[command(flatten)]
        sharing: Box<SharingArgs>,
        #[command(flatten)]
        strangers: Box<LimitArgs>,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage apps: principals a user owns, with a token scoped to named
    /// objects.
    #[command(subcommand)]
    App(AppCommand),
    /// FeedSync tools for testing other endpoints.
    #[command(subcommand)]
    Feedsync(FeedsyncCommand),
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// The quota of users without one of their own.
#[derive(Args, Clone, Copy)]
struct DefaultQuota {
    /// The storage quota of every user without one of their own (`meshd
    /// user quota`): a size like 50G, or none.
    #[arg(long, env = "MESHD_DEFAULT_QUOTA", value_name = "SIZE|none", default_value = "none", value_parser = default_quota)]
    default_quota: QuotaLimit,
}

/// A limit in bytes, or none.
#[derive(Clone, Copy)]
struct QuotaLimit(Option<u64>);

fn default_quota(s: &str) -> Result<QuotaLimit, String> {
    match s.trim() {
        "none" => Ok(QuotaLimit(None)),
        size => mesh_cli::size::parse(size)
            .map(|n| QuotaLimit(Some(n)))
            .map_err(|e| format!("{e}, or none")),
    }
}

/// A user's own quota: a size, `none` or `default`.
fn user_quota(s: &str) -> Result<usage::Quota, String> {
    match s.trim() {
        "none" => Ok(usage::Quota::Unlimited),
        "default" => Ok(usage::Quota::Default),
        size => mesh_cli::size::parse(size)
            .map(usage::Quota::Bytes)
            .map_err(|e| format!("{e}, or none, or default")),
    }
}

/// How clients' connections are secured.
#[derive(Args)]
struct TlsArgs {
    /// The TLS certificate chain to serve HTTPS with (PEM), with --tls-key
    /// [default off loopback: a self-signed certificate kept in the data
    /// directory]
    #[arg(long, env = "MESHD_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "MESHD_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP off loopback (behind a proxy that terminates TLS);
    /// warned about at every start.
    #[arg(long, env = "MESHD_INSECURE_HTTP")]
    insecure_http: bool,
}

/// Invitations and the e-mail that carries them.
#[derive(Args)]
struct SharingArgs {
    /// The address people reach this server at, for the links in
    /// invitation e-mail (`https://mesh.example.org`) [default: https://
    /// (http:// without TLS) and the listening address, or the host name
    /// when listening on every address]
    #[arg(long, env = "MESHD_PUBLIC_URL", value_name = "URL", value_parser = public_url)]
    public_url: Option<String>,
    /// Seconds an invitation can be accepted.
    #[arg(long, env = "MESHD_INVITATION_TTL", value_name = "SECONDS", default_value_t = Limits::DEFAULT.invitation_ttl.as_secs())]
    invitation_ttl: u64,
    /// The SMTP server that sends invitations; without one they are
    /// written to the outbox directory.
    #[arg(long, env = "MESHD_SMTP_HOST", value_name = "HOST")]
    smtp_host: Option<String>,
    /// The SMTP server's port [default: 25, 587 or 465, by --smtp-tls]
    #[arg(long, env = "MESHD_SMTP_PORT", value_name = "PORT")]
    smtp_port: Option<u16>,
    /// The user name to sign in to the SMTP server with, if it needs one.
    #[arg(long, env = "MESHD_SMTP_USERNAME", value_name = "NAME")]
    smtp_username: Option<String>,
    /// The password for --smtp-username (better in the environment or the
    /// configuration file than on the command line).
    #[arg(
        long,
        env = "MESHD_SMTP_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    smtp_password: Option<String>,
    /// The sender of invitation e-mail (`Mesh <mesh@example.org>`).
    #[arg(long, env = "MESHD_SMTP_FROM", value_name = "ADDRESS", default_value = "meshd@localhost", value_parser = mailbox)]
    smtp_from: lettre::message::Mailbox,
    /// How the connection to the SMTP server is secured.
    #[arg(long, env = "MESHD_SMTP_TLS", value_enum, default_value_t = TlsMode::Starttls)]
    smtp_tls: TlsMode,
    /// Where invitations are written as .eml files while no SMTP server is
    /// configured [default: DATA/outbox]
    #[arg(long, env = "MESHD_MAIL_OUTBOX", value_name = "DIR")]
    mail_outbox: Option<PathBuf>,
}

impl SharingArgs {
    fn mail(self) -> MailSettings {
        MailSettings {
            from: self.smtp_from,
            smtp: self.smtp_host.map(|host| SmtpSettings {
                host,
                port: self.smtp_port,
                username: self.smtp_username,
                password: self.smtp_password,
                tls: self.smtp_tls,
            }),
            outbox: self.mail_outbox,
        }
    }
}

/// What strangers may cost the server: connections, timeouts, event
/// streams, password checks, request rates and sign-in failures.
#[derive(Args)]
struct LimitArgs {
    /// Open connections at most; one beyond is closed at once.
    #[arg(long, env = "MESHD_MAX_CONNECTIONS", value_name = "N", default_value_t = Limits::DEFAULT.max_connections, value_parser = at_least_one)]
    max_connections: usize,
    /// Open connections at most from one client address.
    #[arg(long, env = "MESHD_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N", default_value_t = Limits::DEFAULT.max_connections_per_address, value_parser = at_least_one)]
    max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers (also the longest
    /// a kept-alive connection waits for its next request).
    #[arg(long, env = "MESHD_HEADER_TIMEOUT", value_name = "SECONDS", default_value_t = Limits::DEFAULT.header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a connection may move no byte either way before it is
    /// closed; longer than --heartbeat.
    #[arg(long, env = "MESHD_IDLE_TIMEOUT", value_name = "SECONDS", default_value_t = Limits::DEFAULT.idle_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Event streams one device may hold open at once.
    #[arg(long, env = "MESHD_MAX_STREAMS_PER_DEVICE", value_name = "N", default_value_t = Limits::DEFAULT.max_streams_per_device, value_parser = at_least_one)]
    max_streams_per_device: usize,
    /// Password checks (19 MiB of memory each) run at once [default: one
    /// per CPU]
    #[arg(long, env = "MESHD_PASSWORD_CHECKS", value_name = "N")]
    password_checks: Option<std::num::NonZeroUsize>,
    /// Seconds a sign-in waits for a password check before it is answered
    /// 503.
    #[arg(long, env = "MESHD_PASSWORD_QUEUE_WAIT", value_name = "SECONDS", default_value_t = Limits::DEFAULT.password_queue_wait.as_secs())]
    password_queue_wait: u64,
    /// Requests a minute one client address may make to sign-in and the
    /// invitation page.
    #[arg(long, env = "MESHD_PUBLIC_REQUESTS_PER_MINUTE", value_name = "N", default_value_t = Limits::DEFAULT.public_requests_per_minute, value_parser = clap::value_parser!(u32).range(1..))]
    public_requests_per_minute: u32,
    /// Wrong passwords for one account from one address before each
    /// further attempt waits (5 s, doubling, at most 15 min).
    #[arg(long, env = "MESHD_SIGN_IN_FAILURES", value_name = "N", default_value_t = Limits::DEFAULT.sign_in_failures)]
    sign_in_failures: u32,
    /// Wrong passwords from one address, whatever the accounts, before each
    /// further attempt from it waits likewise.
    #[arg(long, env = "MESHD_SIGN_IN_FAILURES_PER_ADDRESS", value_name = "N", default_value_t = Limits::DEFAULT.sign_in_failures_per_address)]
    sign_in_failures_per_address: u32,
    /// Hashes at most in one question about missing chunks.
    #[arg(long, env = "MESHD_MAX_MISSING_HASHES", value_name = "N", default_value_t = Limits::DEFAULT.max_missing_hashes, value_parser = at_least_one)]
    max_missing_hashes: usize,
}

impl LimitArgs {
    /// `limits` with these settings; an idle timeout that would cut event
    /// streams between heartbeats is refused.
    fn apply(&self, limits: Limits) -> anyhow::Result<Limits> {
        let limits = Limits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_timeout: Duration::from_secs(self.header_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_streams_per_device: self.max_streams_per_device,
            password_checks: self.password_checks,
            password_queue_wait: Duration::from_secs(self.password_queue_wait),
            public_requests_per_minute: self.public_requests_per_minute,
            sign_in_failures: self.sign_in_failures,
            sign_in_failures_per_address: self.sign_in_failures_per_address,
            max_missing_hashes: self.max_missing_hashes,
            ..limits
        };
        anyhow::ensure!(
            limits.idle_timeout > limits.heartbeat,
            "--idle-timeout ({} s) must be longer than --heartbeat ({} s), or event streams \
             would be cut between heartbeats",
            limits.idle_timeout.as_secs(),
            limits.heartbeat.as_secs()
        );
        Ok(limits)
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

/// Checks a public URL: `http://` or `https://` and a host.
fn public_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// URL"))?;
    if rest.is_empty()
        || rest.starts_with('/')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{s:?} is not a URL with a host"));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// Checks a sender: `address@example.org` or `Name <address@example.org>`.
fn mailbox(s: &str) -> Result<lettre::message::Mailbox, String> {
    s.parse()
        .map_err(|e| format!("{s:?} is not an e-mail address: {e}"))
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file and name the line of each problem.
    Check {
        /// The file [default: --config, MESHD_CONFIG or /etc/meshd/meshd.toml]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// The user's e-mail address: their account's name.
        email: String,
        /// Display name [default: the part of EMAIL before '@']
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Give a user a new password, read from standard input (typed twice on
    /// a terminal). Devices signed in stay signed in unless
    /// --revoke-devices.
    Passwd {
        /// The account's e-mail address.
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Sign every device of the account out as well (a password that
        /// may have leaked).
        #[arg(long)]
        revoke_devices: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Set a user's storage quota: what the objects they own may store
    /// (members' writes count against the owner). A write beyond it is
    /// refused; removing things always works.
    Quota {
        /// The account's e-mail address.
        email: String,
        /// A size like 50G or 500M, `none` for no limit, or `default` for
        /// the server's --default-quota.
        #[arg(value_name = "SIZE|none|default", value_parser = user_quota)]
        quota: usage::Quota,
        #[command(flatten)]
        data: DataDir,
    },
    /// List users, with the storage each uses and their quota.
    List {
        /// Print JSON: id, email, name, second factor, used (bytes), quota
        /// (bytes, null for none) and quota_from (user or default) of each
        /// user.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        default_quota: DefaultQuota,
        #[command(flatten)]
        data: DataDir,
    },
    /// A user's second factor: codes of an authenticator app (TOTP).
    #[command(subcommand)]
    Totp(TotpCommand),
}

#[derive(Subcommand)]
enum TotpCommand {
    /// Make signing in need a code of an authenticator app besides the
    /// password; prints the otpauth:// link to add to the app (a QR code
    /// on a terminal) and ten single-use recovery codes, shown only now.
    Enable {
        /// The account's e-mail address.
        email: String,
        /// Replace the account's authenticator key and recovery codes if it
        /// has them already (a lost phone).
        #[arg(long)]
        reset: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Let the account sign in with its password alone again; its
    /// authenticator key and recovery codes are forgotten.
    Disable {
        /// The account's e-mail address.
        email: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Add an app owned by a user and print its token (shown only once).
    Add {
        /// The app's name, as members see it.
        name: String,
        /// The e-mail address of the user who owns it.
        #[arg(long, value_name = "EMAIL")]
        owner: String,
        /// An object the app may use and its role there (at most the
        /// owner's), as OBJECT-ID:ROLE; repeat for several.
        #[arg(long = "object", value_name = "ID:ROLE", required = true, value_parser = grant)]
        objects: Vec<AppGrant>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List the live apps, with their owners and grants.
    List {
        /// Only the apps of this user.
        #[arg(long, value_name = "EMAIL")]
        owner: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke an app: its token is refused at once.
    Revoke {
        /// The app's id (see `meshd app list`).
        id: String,
        #[command(flatten)]
        data: DataDir,
    },
}

/// Parses `OBJECT-ID:ROLE`.
fn grant(s: &str) -> Result<AppGrant, String> {
    let (object, role) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not OBJECT-ID:ROLE"))?;
    Ok(AppGrant {
        object: object
            .parse()
            .map_err(|_| format!("{object:?} is not an object id"))?,
        role: mesh_protocol::api::Role::parse(role)
            .ok_or_else(|| format!("{role:?} is not a role (reader, editor or owner)"))?,
    })
}

#[derive(Subcommand)]
enum FeedsyncCommand {
    /// Merge two Atom feeds item by item and print the merged feed.
    Merge {
        /// One Atom feed (this endpoint's copy).
        local: PathBuf,
        /// The other Atom feed (the copy that arrived).
        incoming: PathBuf,
    },
}

/// meshd's command line, for its man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The configuration file this command line names, if it reads one.
fn locate(cli: &Cli) -> Option<Location> {
    match (&cli.command, &cli.config) {
        (Command::Config(_), _) => None,
        (_, Some(path)) => Some(Location {
            path: path.clone(),
            required: true,
        }),
        (_, None) => Some(Location {
            path: DEFAULT_CONFIG.into(),
            required: false,
        }),
    }
}

pub fn main() -> ExitCode {
    let cli: Cli = mesh_cli::settings::parse(command, "config", locate);
    let log = cli.log.as_deref();
    let init_logging = |default| mesh_cli::logging::init(log, default);
    let result = match cli.command {
        Command::Serve {
            data,
            listen,
            chunk_grace,
            gc_interval,
            tombstone_retention,
            event_retention,
            heartbeat,
            presence_lease,
            news_window,
            max_body,
            default_quota,
            tls,
            sharing,
            strangers,
        } => {
            init_logging("info");
            let limits = strangers.apply(Limits {
                chunk_grace: Duration::from_secs(chunk_grace),
                gc_interval: Duration::from_secs(gc_interval.max(1)),
                tombstone_retention: Duration::from_secs(tombstone_retention),
                event_retention: Duration::from_secs(event_retention),
                heartbeat: Duration::from_secs(heartbeat.max(1)),
                max_body,
                invitation_ttl: Duration::from_secs(sharing.invitation_ttl),
                presence_lease: Duration::from_secs(presence_lease.max(2)),
                news_window: Duration::from_secs(news_window),
                default_quota: default_quota.default_quota.0,
                ..Limits::DEFAULT
            });
            let public_url = sharing.public_url.clone();
            let mail = sharing.mail();
            let transport = Transport::choose(listen, tls.tls_cert, tls.tls_key, tls.insecure_http);
            limits
                .and_then(|limits| Ok((data.resolve()?, transport?, limits)))
                .and_then(|(dir, transport, limits)| {
                    tokio::runtime::Runtime::new()?.block_on(crate::server::serve(
                        &dir, listen, transport, limits, mail, public_url,
                    ))
                })
        }
        Command::User(cmd) => {
            init_logging("warn");
            user(cmd)
        }
        Command::App(cmd) => {
            init_logging("warn");
            app(cmd)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file.or(cli.config).unwrap_or_else(|| DEFAULT_CONFIG.into());
            return match Config::load(&command(), &path, "config") {
                Ok(config) => {
                    println!("{}: ok", escaped(&path.display().to_string()));
                    for (name, value) in config.values() {
                        let value = if SECRET_SETTINGS.contains(&name.as_str()) {
                            "(set, not shown)"
                        } else {
                            value
                        };
                        println!("  {name} = {}", escaped(value));
                    }
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    for problem in problems {
                        eprintln!("meshd: {}", escaped(&problem.to_string()));
                    }
                    ExitCode::FAILURE
                }
            };
        }
        Command::Feedsync(FeedsyncCommand::Merge { local, incoming }) => {
            init_logging("warn");
            return match crate::merge_tool::run(&local, &incoming) {
                Ok(xml) => {
                    print!("{xml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meshd: {}", escaped(&e));
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "the command failed");
            eprintln!("meshd: {}", mesh_cli::display::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            email,
            name,
            password_stdin,
            data,
        } => {
            let email = email.trim().to_owned();
            accounts::validate_email(&email).map_err(anyhow::Error::msg)?;
            if !password_stdin {
                anyhow::bail!("give the password on standard input with --password-stdin");
            }
            let password = mesh_cli::password::read(true)
                .context("reading the password from standard input")?;
            crate::auth::validate_password(&password).map_err(anyhow::Error::msg)?;
            let name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let hash = crate::auth::hash_password(&password)?;
            let db = crate::server::open_database(&data.resolve()?)?;
            let id = db.write_blocking(|tx| accounts::add_user(tx, &email, &name, &hash))?;
            println!("added user {} ({id})", escaped(&email));
            Ok(())
        }
        UserCommand::Passwd {
            email,
            password_stdin,
            revoke_devices,
            data,
        } => {
            let (db, user) = existing_user(&data, &email)?;
            let email = user.email.clone();
            let password =
                mesh_cli::password::read_new(password_stdin).context("reading the new password")?;
            crate::auth::validate_password(&password).map_err(anyhow::Error::msg)?;
            let hash = crate::auth::hash_password(&password)?;
            let revoked =
                db.write_blocking(|tx| accounts::set_password(tx, &user, &hash, revoke_devices))?;
            if revoke_devices {
                println!("changed the password of {email}; signed out its {revoked} device(s)");
            } else {
                println!(
                    "changed the password of {email}; its devices stay signed in \
                     (`meshfs devices` lists them, `meshfs devices remove NAME` signs one out)"
                );
            }
            Ok(())
        }
        UserCommand::Quota { email, quota, data } => {
            let email = email.trim().to_owned();
            let db = crate::server::open_database(&data.resolve()?)?;
            db.write_blocking(|tx| {
                let user = accounts::user_by_email(tx, &email)?.with_context(|| {
                    format!("there is no user {email}; add one with `meshd user add`")
                })?;
                usage::set_quota(tx, user.id, quota)?;
                Ok::<_, anyhow::Error>(())
            })?;
            let said = match quota {
                usage::Quota::Default => "the server's default-quota".to_owned(),
                usage::Quota::Unlimited => "no limit".to_owned(),
                usage::Quota::Bytes(n) => mesh_cli::size::show(n),
            };
            println!("the quota of {} is {said}", escaped(&email));
            Ok(())
        }
        UserCommand::List {
            json,
            default_quota,
            data,
        } => {
            let default = default_quota.default_quota.0;
            let db = crate::server::open_database(&data.resolve()?)?;
            let users = db.write_blocking(|tx| {
                let mut out = Vec::new();
                for u in accounts::list_users(tx)? {
                    let second_factor = totp::state(tx, u.id)?;
                    let own = usage::quota(tx, u.id)?;
                    let used = usage::of(tx, u.id, default)?;
                    out.push((u, second_factor, own, used));
                }
                Ok::<_, anyhow::Error>(out)
            })?;
            let from = |own: usage::Quota| {
                if own == usage::Quota::Default {
                    "default"
                } else {
                    "user"
                }
            };
            if json {
                let list: Vec<_> = users
                    .iter()
                    .map(|(u, second_factor, own, used)| {
                        serde_json::json!({
                            "id": u.id,
                            "email": u.email,
                            "name": u.name,
                            "totp": second_factor.is_some(),
                            "recovery_codes": second_factor.map(|s| s.recovery_codes),
                            "used": used.used,
                            "quota": used.quota,
                            "quota_from": from(*own),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for (u, second_factor, own, used) in users {
                    let second_factor = match second_factor {
                        Some(s) => format!("totp, {} recovery codes left", s.recovery_codes),
                        None => "password only".to_owned(),
                    };
                    let quota = used.quota.map_or("none".to_owned(), mesh_cli::size::show);
                    println!(
                        "{}\t{}\t{}\t{second_factor}\t{} used\tquota {quota} ({})",
                        escaped(&u.email),
                        escaped(&u.name),
                        u.id,
                        mesh_cli::size::show(used.used),
                        from(own)
                    );
                }
            }
            Ok(())
        }
        UserCommand::Totp(TotpCommand::Enable { email, reset, data }) => {
            let (db, user) = existing_user(&data, &email)?;
            let key = crate::totp::NewKey::generate(&user.email)?;
            let email = user.email.clone();
            db.write_blocking(|tx| {
                if !reset && totp::state(tx, user.id)?.is_some() {
                    anyhow::bail!(
                        "{email} has a second factor already; `meshd user totp enable {email} \
                         --reset` replaces it (its authenticator app and recovery codes stop \
                         working)"
                    );
                }
                Ok(totp::enable(tx, &user, &key.secret, &key.recovery_hashes)?)
            })?;
            print_enrollment(&email, &key.uri, &key.recovery_codes)
        }
        UserCommand::Totp(TotpCommand::Disable { email, data }) => {
            let (db, user) = existing_user(&data, &email)?;
            let email = user.email.clone();
            if db.write_blocking(|tx| totp::disable(tx, &user, None))? {
                println!("{email} signs in with the password alone again");
                Ok(())
            } else {
                anyhow::bail!("{email} has no second factor to turn off")
            }
        }
    }
}

/// The database of `data` and the account `email` names in it.
fn existing_user(data: &DataDir, email: &str) -> anyhow::Result<(crate::db::Db, accounts::User)> {
    let db = crate::server::open_database(&data.resolve()?)?;
    let user = user_by_email(&db, email)?;
    Ok((db, user))
}

/// Shows a new second factor: the link for the authenticator app (and
/// its QR code on a terminal) and the recovery codes, this once.
fn print_enrollment(email: &str, uri: &str, codes: &[String]) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let email = escaped(email);
    println!("{email} now needs a code of an authenticator app to sign in; add this to the app:");
    println!("{uri}");
    if std::io::stdout().is_terminal() {
        println!(
            "{}",
            mesh_cli::qr::for_terminal(uri).map_err(anyhow::Error::msg)?
        );
    }
    println!(
        "recovery codes, each good for one sign-in without the app (shown only now; keep them \
         somewhere safe):"
    );
    for code in codes {
        println!("  {code}");
    }
    Ok(())
}

/// The user with this e-mail address, or an error that says how to add one.
fn user_by_email(db: &crate::db::Db, email: &str) -> anyhow::Result<accounts::User> {
    let email = email.trim().to_owned();
    db.write_blocking(|tx| accounts::user_by_email(tx, &email))?
        .with_context(|| format!("there is no user {email}; add one with `meshd user add`"))
}

fn app(cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Add {
            name,
            owner,
            objects,
            data,
        } => {
            let (db, owner) = existing_user(&data, &owner)?;
            let token = crate::auth::new_app_token();
            let hash = crate::auth::TokenHash::of(&token);
            let req = CreateApp { name, objects };
            let app = db
                .write_blocking(|tx| crate::apps::create(tx, owner.id, None, &req, &hash))
                .with_context(|| format!("adding the app {:?}", req.name))?;
            println!(
                "added app {} ({}) of {}",
                escaped(&app.name),
                app.id,
                escaped(&owner.email)
            );
            println!("token (shown only now): {token}");
            Ok(())
        }
        AppCommand::List { owner, json, data } => {
            let db = crate::server::open_database(&data.resolve()?)?;
            let owner = owner.map(|o| user_by_email(&db, &o)).transpose()?;
            let apps = db.write_blocking(|tx| apps::list(tx, owner.map(|o| o.id)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&apps)?);
                return Ok(());
            }
            for a in apps {
                let grants: Vec<String> = a
                    .objects
                    .iter()
                    .map(|g| format!("{}:{}", g.object, g.role.as_str()))
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    a.id,
                    escaped(&a.name),
                    escaped(&a.owner_email),
                    grants.join(" ")
                );
            }
            Ok(())
        }
        AppCommand::Revoke { id, data } => {
            let app: AppId = id
                .parse()
                .with_context(|| format!("{id:?} is not an app id (see `meshd app list`)"))?;
            let db = crate::server::open_database(&data.resolve()?)?;
            if !db.write_blocking(|tx| apps::revoke(tx, None, None, app))? {
                anyhow::bail!("there is no live app {app} (see `meshd app list`)");
            }
            println!("revoked app {app}; its token is refused from now on");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help() {
        assert_eq!(
            mesh_cli::help::undocumented(&command()),
            Vec::<String>::new()
        );
    }

    use super::*;

    /// The settings whose line in the packaged configuration file shows an
    /// example rather than the built-in default.
    const EXAMPLES: &[&str] = &["smtp-from"];

    /// The configuration file the package installs shows each setting's
    /// built-in default, commented out: it must be the flag's default, which
    /// comes from `Limits::DEFAULT`.
    #[test]
    fn the_packaged_configuration_shows_the_built_in_defaults() {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/meshd.toml");
        let text = std::fs::read_to_string(shipped).unwrap();
        let settings = mesh_cli::settings::settings(&command());
        let mut checked = Vec::new();
        for line in text.lines() {
            let Some((name, value)) = line.strip_prefix('#').and_then(|l| l.split_once(" = "))
            else {
                continue;
            };
            if name.starts_with(' ') || EXAMPLES.contains(&name) {
                continue;
            }
            let arg = &settings[name];
            let Some(default) = arg.get_default_values().first() else {
                continue;
            };
            let value = value.trim_matches('"');
            assert_eq!(
                default.to_str(),
                Some(value),
                "{shipped} shows {name} = {value}, but its default is {default:?}"
            );
            checked.push(name);
        }
        for name in [
            "chunk-grace",
            "event-retention",
            "max-body",
            "invitation-ttl",
        ] {
            assert!(checked.contains(&name), "{name} is not shown in {shipped}");
        }
    }

    #[test]
    fn the_limit_flags_default_to_the_built_in_limits() {
        let cli = Cli::try_parse_from(["meshd", "serve"]).unwrap();
        let Command::Serve { strangers, .. } = cli.command else {
            unreachable!()
        };
        let limits = strangers.apply(Limits::DEFAULT).unwrap();
        assert_eq!(format!("{limits:?}"), format!("{:?}", Limits::DEFAULT));
        let cli = Cli::try_parse_from([
            "meshd",
            "serve",
            "--idle-timeout",
            "10",
            "--heartbeat",
            "10",
        ])
        .unwrap();
        let Command::Serve {
            strangers,
            heartbeat,
            ..
        } = cli.command
        else {
            unreachable!()
        };
        let limits = Limits {
            heartbeat: Duration::from_secs(heartbeat),
            ..Limits::DEFAULT
        };
        assert!(strangers.apply(limits).is_err(), "streams would be cut");
    }

    #[test]
    fn the_flags_default_to_the_built_in_limits() {
        let limits = Limits::DEFAULT;
        let serve = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["meshd", "serve"], args].concat()).unwrap();
            let Command::Serve {
                chunk_grace,
                gc_interval,
                tombstone_retention,
                event_retention,
                heartbeat,
                presence_lease,
                news_window,
                max_body,
                sharing,
                ..
            } = cli.command
            else {
                unreachable!()
            };
            (
                [
                    chunk_grace,
                    gc_interval,
                    tombstone_retention,
                    event_retention,
                    heartbeat,
                    presence_lease,
                    news_window,
                    sharing.invitation_ttl,
                ],
                max_body,
            )
        };
        assert_eq!(
            serve(&[]),
            (
                [
                    limits.chunk_grace,
                    limits.gc_interval,
                    limits.tombstone_retention,
                    limits.event_retention,
                    limits.heartbeat,
                    limits.presence_lease,
                    limits.news_window,
                    limits.invitation_ttl,
                ]
                .map(|d| d.as_secs()),
                limits.max_body
            )
        );
    }
}
