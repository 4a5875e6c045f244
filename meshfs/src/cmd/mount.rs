//! `meshfs mount` and `meshfs unmount`: starting this device's mount daemon
//! (or serving in the foreground) and stopping it once its outbox is sent.
//! Both check first what they were asked to act on (`local::mountpoint`),
//! so that a mistake is one sentence, and nothing is started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::local::daemon::{self, Spawn};
use crate::local::home::Home;
use crate::local::mountpoint;
use crate::mount::run::{self, MountOptions};

/// How long `meshfs unmount` waits for the daemon to push and stop.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// A `meshfs mount` as it was asked for.
pub struct Request<'a> {
    pub mountpoint: PathBuf,
    pub cache_size: u64,
    /// Stay attached instead of serving in the background.
    pub foreground: bool,
    /// `--nonempty`: mount over a directory that holds something.
    pub nonempty: bool,
    /// `--home`, passed on to the daemon.
    pub explicit_home: Option<&'a Path>,
    /// `--log`, passed on to the daemon.
    pub log_filter: Option<&'a str>,
}

pub fn mount(home: &Home, request: Request<'_>) -> anyhow::Result<()> {
    home.require_account()?;
    if let Some((pid, at)) = daemon::running(home) {
        let at = at.display();
        anyhow::bail!(
            "this device is already mounted at {at} (process {pid}); unmount it first with `meshfs unmount {at}`"
        );
    }
    let options = MountOptions {
        mountpoint: mountpoint::check(&request.mountpoint, request.nonempty)?,
        cache_size: request.cache_size,
    };
    if request.foreground {
        return daemon::serve(home, options);
    }
    let how = Spawn {
        explicit_home: request.explicit_home,
        log_filter: request.log_filter,
        nonempty: request.nonempty,
    };
    let pid = daemon::spawn(home, &options, how)?;
    let at = options.mountpoint.display().to_string();
    let at = mesh_cli::display::escaped(&at);
    println!("mounted at {at} (process {pid}); `meshfs unmount {at}` unmounts");
    Ok(())
}

pub fn unmount(home: &Home, mountpoint: &Path) -> anyhow::Result<()> {
    let mountpoint = std::path::absolute(mountpoint)?;
    match daemon::running(home) {
        Some((pid, at)) if at == mountpoint => daemon::stop(pid, STOP_LIMIT)?,
        ours if !mountpoint::is_mounted(&mountpoint) => {
            let elsewhere = ours
                .map(|(_, at)| format!(" (this device is mounted at {})", at.display()))
                .unwrap_or_default();
            anyhow::bail!("{} is not mounted{elsewhere}", mountpoint.display());
        }
        // No daemon of ours: clear a mount whose daemon died.
        _ => run::unmount(&mountpoint)?,
    }
    println!(
        "unmounted {}",
        mesh_cli::display::escaped(&mountpoint.display().to_string())
    );
    Ok(())
}
