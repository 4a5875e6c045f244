//! The `meshd` command line: `serve`, `user add|list`, and the offline
//! `feedsync merge` tool. Errors go to stderr with a non-zero exit status.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::state::Limits;
use crate::store::accounts;

#[derive(Parser)]
#[command(
    name = "meshd",
    version,
    about = "The Mesh server: devices, mesh objects, FeedSync feeds, chunks and the change stream"
)]
struct Cli {
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
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        chunk_grace: u64,
        /// Seconds between collections of unreferenced chunks and old changes.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        gc_interval: u64,
        /// Seconds the change log keeps changes; older cursors get a resync.
        #[arg(long, value_name = "SECONDS", default_value_t = 30 * 24 * 3600)]
        event_retention: u64,
        /// Seconds between heartbeats on the change stream.
        #[arg(long, value_name = "SECONDS", default_value_t = 15)]
        heartbeat: u64,
        /// Largest request body in bytes (chunk uploads have their own limit).
        #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024 * 1024)]
        max_body: usize,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// FeedSync tools for testing other endpoints.
    #[command(subcommand)]
    Feedsync(FeedsyncCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
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
    /// List users.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum FeedsyncCommand {
    /// Merge two Atom feeds item by item and print the merged feed.
    Merge { local: PathBuf, incoming: PathBuf },
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            data,
            listen,
            chunk_grace,
            gc_interval,
            event_retention,
            heartbeat,
            max_body,
        } => {
            init_logging("info");
            let limits = Limits {
                chunk_grace: Duration::from_secs(chunk_grace),
                gc_interval: Duration::from_secs(gc_interval.max(1)),
                event_retention: Duration::from_secs(event_retention),
                heartbeat: Duration::from_secs(heartbeat.max(1)),
                max_body,
            };
            data.resolve().and_then(|dir| {
                tokio::runtime::Runtime::new()?.block_on(crate::server::serve(&dir, listen, limits))
            })
        }
        Command::User(cmd) => {
            init_logging("warn");
            user(cmd)
        }
        Command::Feedsync(FeedsyncCommand::Merge { local, incoming }) => {
            init_logging("warn");
            return match crate::merge_tool::run(&local, &incoming) {
                Ok(xml) => {
                    print!("{xml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meshd: {e}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshd: {e:#}");
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
            let (local, domain) = email.split_once('@').unwrap_or(("", ""));
            if local.is_empty() || domain.is_empty() || email.chars().any(char::is_whitespace) {
                anyhow::bail!("{email:?} is not an e-mail address");
            }
            if !password_stdin {
                anyhow::bail!("give the password on standard input with --password-stdin");
            }
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            crate::auth::validate_password(&password).map_err(anyhow::Error::msg)?;
            let name = name.unwrap_or_else(|| local.to_owned());
            let hash = crate::auth::hash_password(&password)?;
            let db = crate::server::open_database(&data.resolve()?)?;
            let id = db.write_blocking(|tx| accounts::add_user(tx, &email, &name, &hash))?;
            println!("added user {email} ({id})");
            Ok(())
        }
        UserCommand::List { json, data } => {
            let db = crate::server::open_database(&data.resolve()?)?;
            let users = db.write_blocking(|tx| accounts::list_users(tx))?;
            if json {
                let list: Vec<_> = users
                    .iter()
                    .map(|u| serde_json::json!({"id": u.id, "email": u.email, "name": u.name}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for u in users {
                    println!("{}\t{}\t{}", u.email, u.name, u.id);
                }
            }
            Ok(())
        }
    }
}
