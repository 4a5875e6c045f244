//! What each `meshfs` subcommand does, one file per subcommand (or per
//! family: `share` holds sharing, members and invitations), plus the two
//! things several of them need: a `session::Session` with the server and
//! a `place::Place` in the mount. [`main`] parses the command line
//! (`crate::cli`) and hands over; errors go to stderr with a non-zero
//! status.

mod audit;
mod devices;
mod login;
mod mount;
mod news;
mod pin;
mod place;
mod session;
mod share;
mod status;
mod totp;
mod trust;
mod who;

use std::process::ExitCode;

use crate::cli::{Cli, Command, DevicesCommand, TotpCommand};
use crate::local::daemon;
use crate::local::home::Home;

pub fn main() -> ExitCode {
    let cli: Cli = mesh_cli::settings::parse(crate::cli::command, "home", |cli: &Cli| {
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
            tracing::debug!(error = ?e, "the command failed");
            eprintln!("meshfs: {}", mesh_cli::display::error_line(e.as_ref()));
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
            stdin,
            device_name,
            fingerprint,
        } => login::login(&home, &url, &email, stdin, device_name, fingerprint),
        Command::Logout => login::logout(&home),
        Command::Mount {
            mountpoint,
            foreground,
            nonempty,
            cache_size,
        } => mount::mount(
            &home,
            mount::Request {
                mountpoint,
                cache_size,
                foreground,
                nonempty,
                explicit_home: cli.home.as_deref(),
                log_filter: cli.log.as_deref(),
            },
        ),
        Command::Unmount { mountpoint } => mount::unmount(&home, &mountpoint),
        Command::Status { json } => status::status(&home, daemon::running(&home), json),
        Command::Pin { path } => pin::pin(&path),
        Command::Unpin { path } => pin::unpin(&path),
        Command::Share { path, email, role } => share::share(&home, &path, &email, role),
        Command::Unshare { path, email } => share::unshare(&home, &path, &email),
        Command::Members { path, json } => share::members(&home, &path, json),
        Command::Invitations { json } => share::invitations(&home, json),
        Command::Accept { invitation } => share::accept(&home, &invitation),
        Command::Decline { id } => share::decline(&home, &id),
        Command::Who { path, json } => who::who(&home, &path, json),
        Command::News {
            path,
            json,
            limit,
            before,
        } => news::news(
            &home,
            news::NewsQuery {
                path: path.as_deref(),
                limit: limit.into(),
                before,
                json,
            },
        ),
        Command::Audit {
            json,
            limit,
            before,
        } => audit::audit(&home, before, limit, json),
        Command::Devices { json, command } => match command {
            None => devices::list(&home, json),
            Some(DevicesCommand::Remove { name }) => devices::remove(&home, &name),
        },
        Command::Totp(TotpCommand::Enable { stdin }) => totp::enable(&home, stdin),
        Command::Totp(TotpCommand::Disable { stdin }) => totp::disable(&home, stdin),
    }
}
