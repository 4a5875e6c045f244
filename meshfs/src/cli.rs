//! The `meshfs` command line. Every setting is a flag, an environment
//! variable and a key of the device's `config.toml` (see
//! `mesh_cli::settings`). Errors go to stderr with a non-zero status.

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use mesh_protocol::api::Role;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use crate::home::{Account, Home};
use crate::mount::{self, MountOptions};
use crate::remote::Remote;
use crate::sharing;
use crate::{credentials, devices};

const CONFIG_HELP: &str = "\
Configuration:
  Every setting can also be given in ~/.config/meshfs/config.toml, or in
  config.toml inside the directory that --home or MESHFS_HOME names, one
  `name = value` line per setting, named like its flag without the dashes:

      cache-size = \"20G\"
      log = \"meshfs=debug,warn\"

  A flag beats its environment variable, which beats the file, which beats the
  built-in default.";

#[derive(Parser)]
#[command(
    name = "meshfs",
    version,
    about = "Mount your Mesh as a drive",
    after_long_help = CONFIG_HELP
)]
struct Cli {
    /// Directory holding this device's configuration, cache and credentials
    /// [default: the XDG directories]
    #[arg(long, env = "MESHFS_HOME", global = true)]
    home: Option<PathBuf>,
    /// What to log, as a tracing filter [default: meshfs=info,warn]
    #[arg(long, env = "RUST_LOG", global = true, value_name = "FILTER", value_parser = mesh_cli::logging::filter)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign this device in to a Mesh server.
    Login {
        /// The server, e.g. http://127.0.0.1:7070
        url: String,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// This device's name [default: the host name]
        #[arg(long, env = "MESHFS_DEVICE_NAME")]
        device_name: Option<String>,
    },
    /// Forget this device's token everywhere it is kept.
    Logout,
    /// Mount the mesh; returns once the mount is ready.
    Mount {
        mountpoint: PathBuf,
        /// Stay attached instead of serving in the background.
        #[arg(long)]
        foreground: bool,
        /// Most bytes of file content kept on this device (K, M, G suffixes).
        #[arg(long, env = "MESHFS_CACHE_SIZE", default_value = "5G", value_parser = parse_size)]
        cache_size: u64,
    },
    /// Finish pending work and unmount.
    Unmount { mountpoint: PathBuf },
    /// Show whether the mount runs and is online, the cache, pinned
    /// content, changes not yet on the server, conflicts and the last error.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Always keep a file, or everything in a folder, on this device
    /// (fetches it now, showing progress).
    Pin { path: PathBuf },
    /// Let a pinned file's or folder's content leave this device again.
    Unpin { path: PathBuf },
    /// Share a Live Folder with someone (sharing again changes the role).
    Share {
        /// The Live Folder, at the top of the mount.
        path: PathBuf,
        email: String,
        #[arg(long, default_value = "editor", value_parser = parse_role)]
        role: Role,
    },
    /// Stop sharing a Live Folder with someone (or revoke their invitation).
    Unshare { path: PathBuf, email: String },
    /// List a Live Folder's members (and, for owners, pending invitations).
    Members {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the invitations addressed to you, each with its id.
    Invitations {
        #[arg(long)]
        json: bool,
    },
    /// Accept an invitation: its id, or the link from the e-mail.
    Accept { invitation: String },
    /// Decline an invitation.
    Decline { id: String },
    /// Show who is using a Live Folder now: each device there, and the
    /// files it has open at or below PATH.
    Who {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show what happened, newest first: in the Live Folder PATH is in, or
    /// across the whole mesh.
    News {
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// How many items to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=500))]
        limit: u16,
        /// Show the items older than this one (from a previous page).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
    },
    /// List this account's devices: online or not, last seen, which is this.
    Devices {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<DevicesCommand>,
    },
}

#[derive(Subcommand)]
enum DevicesCommand {
    /// Sign a device out everywhere (its mount stops syncing).
    Remove { name: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: use reader, editor or owner"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 500M or 5G"))?;
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("{s:?} is not a size like 500M or 5G")),
    };
    Ok(n * factor)
}

/// meshfs's command line, for its man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn main() -> ExitCode {
    let cli: Cli = mesh_cli::settings::parse("home", |cli: &Cli| {
        let home = Home::resolve(cli.home.as_deref()).ok()?;
        Some(mesh_cli::settings::Location {
            path: home.config_file(),
            required: false,
        })
    });
    mesh_cli::logging::init(cli.log.as_deref(), "meshfs=info,warn");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshfs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home.as_deref())?;
    match cli.command {
        Command::Login {
            url,
            email,
            password_stdin,
            device_name,
        } => login(&home, &url, &email, password_stdin, device_name),
        Command::Logout => {
            let account = home.require_account()?;
            credentials::forget(&home, &account)?;
            std::fs::remove_file(home.account_file())?;
            println!("signed out {} from {}", account.email, account.server);
            Ok(())
        }
        Command::Mount {
            mountpoint,
            foreground,
            cache_size,
        } => {
            let options = MountOptions {
                mountpoint,
                cache_size,
            };
            if foreground {
                run_daemon(&home, options)
            } else {
                spawn_daemon(&home, &options, cli.home.as_deref(), cli.log.as_deref())
            }
        }
        Command::Unmount { mountpoint } => unmount(&home, &mountpoint),
        Command::Status { json } => crate::report::status(&home, running(&home), json),
        Command::Pin { path } => crate::pinning::pin(&path),
        Command::Unpin { path } => crate::pinning::unpin(&path),
        Command::Share { path, email, role } => sharing::share(&home, &path, &email, role),
        Command::Unshare { path, email } => sharing::unshare(&home, &path, &email),
        Command::Members { path, json } => sharing::members(&home, &path, json),
        Command::Invitations { json } => sharing::invitations(&home, json),
        Command::Accept { invitation } => sharing::accept(&home, &invitation),
        Command::Decline { id } => sharing::decline(&home, &id),
        Command::Who { path, json } => crate::who::who(&home, &path, json),
        Command::News {
            path,
            json,
            limit,
            before,
        } => crate::news::news(
            &home,
            crate::news::NewsQuery {
                path: path.as_deref(),
                limit: limit.into(),
                before,
                json,
            },
        ),
        Command::Devices { json, command } => match command {
            None => devices::list(&home, json),
            Some(DevicesCommand::Remove { name }) => devices::remove(&home, &name),
        },
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let mut line = String::new();
    if from_stdin || !std::io::stdin().is_terminal() {
        std::io::stdin().lock().read_line(&mut line)?;
    } else {
        eprint!("Password: ");
        std::io::stderr().flush()?;
        line = read_hidden_line()?;
        eprintln!();
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a line from the terminal without echoing it.
fn read_hidden_line() -> anyhow::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is the terminal on standard input; term is valid memory.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        anyhow::bail!("cannot read the terminal's settings");
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    // SAFETY: as above, with settings derived from the current ones.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    let mut line = String::new();
    let result = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result?;
    Ok(line)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end])
            && !name.is_empty()
        {
            return name.to_owned();
        }
    }
    "this device".into()
}

fn login(
    home: &Home,
    url: &str,
    email: &str,
    password_stdin: bool,
    device_name: Option<String>,
) -> anyhow::Result<()> {
    let password = read_password(password_stdin)?;
    let device_name = device_name.unwrap_or_else(hostname);
    let request = mesh_protocol::api::TokenRequest {
        email: email.to_owned(),
        password,
        device_name: device_name.clone(),
        public_key: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime
        .block_on(Remote::enroll(url, &request))
        .with_context(|| format!("signing in to {url}"))?;
    home.create()?;
    let account = Account {
        server: url.trim_end_matches('/').to_owned(),
        email: email.to_owned(),
        user_id: answer.user_id.to_string(),
        device_id: answer.device_id.to_string(),
        device_name: device_name.clone(),
    };
    let vault = credentials::store(home, &account, &answer.token)?;
    home.save_account(&account)?;
    println!("signed in to {url} as {email}, device {device_name:?}; token kept in {vault}");
    Ok(())
}

/// The pid and mountpoint of this home's running mount, if any.
fn running(home: &Home) -> Option<(i32, PathBuf)> {
    let text = std::fs::read_to_string(home.pid_file()).ok()?;
    let (pid, mountpoint) = text.trim_end().split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    alive(pid).then(|| (pid, PathBuf::from(mountpoint)))
}

/// Whether process `pid` runs (a killed daemon nobody reaped yet is a
/// zombie: it does not).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (NAME) STATE ...": the name may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

fn run_daemon(home: &Home, options: MountOptions) -> anyhow::Result<()> {
    if let Some((pid, at)) = running(home) {
        anyhow::bail!(
            "this device is already mounted at {} (process {pid})",
            at.display()
        );
    }
    home.create()?;
    let mountpoint = std::path::absolute(&options.mountpoint)?;
    let pid_file = home.pid_file();
    let result = mount::run(home, options, || {
        let _ = std::fs::write(
            &pid_file,
            format!("{} {}\n", std::process::id(), mountpoint.display()),
        );
        // The parent waiting in `meshfs mount` reads this line.
        println!("ready");
        mesh_cli::notify::ready();
        let _ = std::io::stdout().flush();
    });
    let _ = std::fs::remove_file(home.pid_file());
    result
}

fn spawn_daemon(
    home: &Home,
    options: &MountOptions,
    explicit_home: Option<&Path>,
    log_filter: Option<&str>,
) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    home.create()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.log_file())
        .context("opening the log file")?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    if let Some(h) = explicit_home {
        command.arg("--home").arg(std::path::absolute(h)?);
    }
    if let Some(filter) = log_filter {
        command.arg("--log").arg(filter);
    }
    command
        .arg("mount")
        .arg("--foreground")
        .arg("--cache-size")
        .arg(options.cache_size.to_string())
        .arg(std::path::absolute(&options.mountpoint)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our
    // session so that it outlives this command.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().context("starting the mount")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
    if line.trim() == "ready" {
        println!(
            "mounted at {} (process {}); `meshfs unmount {}` unmounts",
            options.mountpoint.display(),
            child.id(),
            options.mountpoint.display()
        );
        return Ok(());
    }
    let _ = child.wait();
    let log = std::fs::read_to_string(home.log_file()).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    anyhow::bail!(
        "the mount did not start; the end of {}:\n{}",
        home.log_file().display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

fn unmount(home: &Home, mountpoint: &Path) -> anyhow::Result<()> {
    let mountpoint = std::path::absolute(mountpoint)?;
    match running(home) {
        Some((pid, at)) if at == mountpoint => {
            // SAFETY: sending SIGTERM to the mount daemon we started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while alive(pid) {
                if std::time::Instant::now() > deadline {
                    anyhow::bail!("the mount (process {pid}) did not stop within 60 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            println!("unmounted {}", mountpoint.display());
            Ok(())
        }
        _ => {
            // No daemon of ours: clear a mount whose daemon died.
            mount::unmount(&mountpoint).with_context(|| {
                format!("{} is not mounted by this device", mountpoint.display())
            })?;
            println!("unmounted {}", mountpoint.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("5G"), Ok(5 << 30));
        assert_eq!(super::parse_size("500M"), Ok(500 << 20));
        assert_eq!(super::parse_size("1024"), Ok(1024));
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("5X").is_err());
    }
}
