//! The `meshfs` command line as clap sees it: the subcommands, their flags
//! and how a flag's text becomes a value. Every setting is a flag, an
//! environment variable and a key of the device's `config.toml` (see
//! `mesh_cli::settings`). What each subcommand does lives in `crate::cmd`.

use clap::{CommandFactory, Parser, Subcommand};
use mesh_protocol::api::Role;
use std::path::PathBuf;

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
pub(crate) struct Cli {
    /// Directory holding this device's configuration, cache and credentials
    /// [default: the XDG directories]
    #[arg(long, env = "MESHFS_HOME", global = true)]
    pub home: Option<PathBuf>,
    /// What to log, as a tracing filter [default: meshfs=info,warn]
    #[arg(long, env = "RUST_LOG", global = true, value_name = "FILTER", value_parser = mesh_cli::logging::filter)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Sign this device in to a Mesh server.
    Login {
        /// The server, e.g. https://mesh.example.org:7070
        url: String,
        /// The account's e-mail address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        stdin: FromStdin,
        /// This device's name [default: the host name]
        #[arg(long, env = "MESHFS_DEVICE_NAME")]
        device_name: Option<String>,
        /// Trust only the server certificate with this SHA-256 fingerprint
        /// (hex, with or without colons), as meshd prints it at start;
        /// kept, and every later connection refuses another certificate.
        #[arg(long, value_name = "SHA256")]
        fingerprint: Option<mesh_cli::fingerprint::Fingerprint>,
    },
    /// Sign this device out: on the server (it leaves the account's
    /// devices) and here (its token is forgotten). Unmount first.
    Logout,
    /// Mount the mesh; returns once the mount is ready.
    Mount {
        /// An empty directory to show the mesh in.
        mountpoint: PathBuf,
        /// Stay attached instead of serving in the background.
        #[arg(long)]
        foreground: bool,
        /// Mount even over a directory that holds something (hidden until
        /// unmounted).
        #[arg(long)]
        nonempty: bool,
        /// Most bytes of file content kept on this device (K, M, G suffixes).
        #[arg(long, env = "MESHFS_CACHE_SIZE", default_value = "5G", value_parser = mesh_cli::size::parse)]
        cache_size: u64,
    },
    /// Finish pending work and unmount.
    Unmount {
        /// Where the mesh is mounted.
        mountpoint: PathBuf,
    },
    /// Show whether the mount runs and is online, the cache, pinned
    /// content, changes not yet on the server, conflicts and the last error.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Always keep a file, or everything in a folder, on this device
    /// (fetches it now, showing progress).
    Pin {
        /// A file or folder in the mount.
        path: PathBuf,
    },
    /// Let a pinned file's or folder's content leave this device again.
    Unpin {
        /// A pinned file or folder in the mount.
        path: PathBuf,
    },
    /// Share a Live Folder with someone (sharing again changes the role).
    Share {
        /// The Live Folder, at the top of the mount.
        path: PathBuf,
        /// Whom to share it with: their e-mail address (an invitation is
        /// sent to it).
        email: String,
        /// What they may do: reader, editor or owner.
        #[arg(long, default_value = "editor", value_parser = parse_role)]
        role: Role,
    },
    /// Stop sharing a Live Folder with someone (or revoke their invitation).
    Unshare {
        /// The Live Folder, at the top of the mount.
        path: PathBuf,
        /// The member's (or the invitation's) e-mail address.
        email: String,
    },
    /// List a Live Folder's members (and, for owners, pending invitations).
    Members {
        /// The Live Folder, at the top of the mount.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the invitations addressed to you, each with its id.
    Invitations {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Accept an invitation: its id, or the link from the e-mail.
    Accept {
        /// The invitation's id (`meshfs invitations`) or the link from its
        /// e-mail.
        invitation: String,
    },
    /// Decline an invitation.
    Decline {
        /// The invitation's id (`meshfs invitations`).
        id: String,
    },
    /// Show who is using a Live Folder now: each device there, and the
    /// files it has open at or below PATH.
    Who {
        /// A Live Folder, or a file or folder in one.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show what happened, newest first: in the Live Folder PATH is in, or
    /// across the whole mesh.
    News {
        /// A file or folder in a Live Folder: that folder's news [default:
        /// the whole mesh's].
        path: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many items to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=500))]
        limit: u16,
        /// Show the items older than this one (from a previous page).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
    },
    /// Show this account's audit log, newest first: sign-ins, devices
    /// signed out, password changes, and sharing by or for this account.
    Audit {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many entries to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Show the entries older than this one (from a previous page).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
    },
    /// List this account's devices: online or not, last seen, which is this.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<DevicesCommand>,
    },
    /// This account's second factor: codes of an authenticator app.
    #[command(subcommand)]
    Totp(TotpCommand),
}

#[derive(Subcommand)]
pub(crate) enum TotpCommand {
    /// Make signing in need a code of an authenticator app besides the
    /// password: shows the link to add to the app (a QR code on a
    /// terminal), asks for the code the app then shows to confirm, and
    /// shows ten single-use recovery codes.
    Enable {
        #[command(flatten)]
        stdin: FromStdin,
    },
    /// Let this account sign in with its password alone again (asks for
    /// the password and a current code).
    Disable {
        #[command(flatten)]
        stdin: FromStdin,
    },
}

/// What is read from standard input rather than typed on the terminal.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct FromStdin {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Read the account's authentication code (or a recovery code), if it
    /// needs one, from standard input: the line after the password with
    /// --password-stdin.
    #[arg(long)]
    pub totp_stdin: bool,
}

#[derive(Subcommand)]
pub(crate) enum DevicesCommand {
    /// Sign a device out everywhere (its mount stops syncing).
    Remove {
        /// The device's name, as `meshfs devices` lists it.
        name: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: use reader, editor or owner"))
}

/// The subcommands as `meshfs --help` groups them.
const GROUPS: &[mesh_cli::help::Group] = &[
    (
        "Mounting",
        &["login", "mount", "status", "unmount", "logout"],
    ),
    ("Files", &["pin", "unpin"]),
    (
        "Sharing",
        &[
            "share",
            "unshare",
            "members",
            "invitations",
            "accept",
            "decline",
        ],
    ),
    ("Devices and account", &["devices", "totp", "audit"]),
    ("News and presence", &["news", "who"]),
];

/// meshfs's command line: what it parses, its help, man pages and
/// completions.
pub fn command() -> clap::Command {
    mesh_cli::help::grouped(Cli::command(), GROUPS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_is_in_a_group_and_every_argument_has_help() {
        let cmd = super::Cli::command();
        assert_eq!(
            mesh_cli::help::ungrouped(&cmd, super::GROUPS),
            Vec::<String>::new()
        );
        assert_eq!(mesh_cli::help::undocumented(&cmd), Vec::<String>::new());
        super::command().debug_assert();
    }
}
