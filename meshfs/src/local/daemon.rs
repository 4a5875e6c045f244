//! The mount daemon of one device's home: whether it runs (its pid file,
//! checked against `/proc`), serving as that daemon in the foreground,
//! starting it detached and waiting until it says it is ready (or saying
//! why this attempt failed, from its own lines of the log), and stopping
//! it.

use anyhow::Context;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::local::home::Home;
use crate::mount::run::{self, MountOptions};

/// The pid and mountpoint of this home's running mount, if any.
pub fn running(home: &Home) -> Option<(i32, PathBuf)> {
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

/// Serves the mount in this process until it is unmounted, with the pid
/// file saying so while it runs.
pub fn serve(home: &Home, options: MountOptions) -> anyhow::Result<()> {
    if let Some((pid, at)) = running(home) {
        anyhow::bail!(
            "this device is already mounted at {} (process {pid})",
            at.display()
        );
    }
    home.create()?;
    let mountpoint = std::path::absolute(&options.mountpoint)?;
    let pid_file = home.pid_file();
    let result = run::run(home, options, || {
        let _ = mesh_cli::private::write_file(
            &pid_file,
            format!("{} {}\n", std::process::id(), mountpoint.display()).as_bytes(),
        );
        // The parent waiting in `meshfs mount` reads this line.
        println!("ready");
        mesh_cli::notify::ready();
        let _ = std::io::stdout().flush();
    });
    let _ = std::fs::remove_file(home.pid_file());
    result
}

/// How a detached daemon is started: the settings the command was given
/// that it must be given too.
pub struct Spawn<'a> {
    pub explicit_home: Option<&'a Path>,
    pub log_filter: Option<&'a str>,
    pub nonempty: bool,
}

/// Starts the daemon detached from this session (`meshfs mount
/// --foreground` in a new session, logging to the home's log file) and
/// waits until it is ready; returns its pid.
pub fn spawn(home: &Home, options: &MountOptions, how: Spawn<'_>) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    home.create()?;
    let log = mesh_cli::private::append_file(&home.log_file()).context("opening the log file")?;
    // Where this attempt's lines of the log begin.
    let start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut command = std::process::Command::new(std::env::current_exe()?);
    if let Some(h) = how.explicit_home {
        command.arg("--home").arg(std::path::absolute(h)?);
    }
    if let Some(filter) = how.log_filter {
        command.arg("--log").arg(filter);
    }
    command
        .arg("mount")
        .arg("--foreground")
        .arg("--cache-size")
        .arg(options.cache_size.to_string())
        .args(how.nonempty.then_some("--nonempty"))
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
        return Ok(child.id());
    }
    let status = child.wait()?;
    anyhow::bail!(
        "{}; the mount did not start (its log: {})",
        failure(&home.log_file(), start, status),
        home.log_file().display()
    )
}

/// Why the daemon failed to start: the error it printed last, in the
/// log's lines from `start` on (this attempt's).
fn failure(log: &Path, start: u64, status: std::process::ExitStatus) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log)
        && file.seek(std::io::SeekFrom::Start(start)).is_ok()
    {
        let _ = file.read_to_string(&mut text);
    }
    // The daemon's `main` writes its error as the line `meshfs: CAUSE`.
    match text.lines().rev().find_map(|l| l.strip_prefix("meshfs: ")) {
        Some(cause) => cause.to_owned(),
        None => format!("the mount stopped before it was ready ({status})"),
    }
}

/// Asks the daemon `pid` to finish and waits up to `limit` for it to end.
pub fn stop(pid: i32, limit: Duration) -> anyhow::Result<()> {
    // SAFETY: sending SIGTERM to the mount daemon we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + limit;
    while alive(pid) {
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the mount (process {pid}) did not stop within {} s",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
