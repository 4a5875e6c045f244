//! The binaries under test and the machine they run on: where `meshd` and
//! `meshfs` are, whether FUSE is there, running a command with a time limit,
//! and checking on processes and mounts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a command of the product (login, mount, unmount) may run.
pub(crate) const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// How many lines of a log a failing test prints.
pub(crate) const LOG_TAIL: usize = 150;

/// The path of one of the workspace's binaries: `$ENV` if set, else next to
/// the test executable's `deps/` directory.
fn binary(name: &str, env: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env}={} does not name a file; unset it or point it at the `{name}` binary",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // <target>/debug/deps/<test exe>  ->  <target>/debug/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in <target>/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first (or set {env})",
        path.display()
    );
    path
}

/// The `meshd` binary under test.
pub fn meshd_bin() -> PathBuf {
    binary("meshd", "MESHD_BIN")
}

/// The `meshfs` binary under test.
pub fn meshfs_bin() -> PathBuf {
    binary("meshfs", "MESHFS_BIN")
}

/// The `xtask` binary (writes the man pages and completions).
pub fn xtask_bin() -> PathBuf {
    binary("xtask", "XTASK_BIN")
}

/// Fails (never skips) when this machine cannot mount FUSE filesystems.
pub(crate) fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: these end-to-end tests mount real FUSE filesystems; \
         load the fuse module (or give the container /dev/fuse) and run them again"
    );
}

/// Runs a command to completion with `input` on stdin, or panics when it
/// takes longer than `limit` (killing it first).
pub(crate) fn run(mut command: Command, input: Option<&str>, limit: Duration) -> Output {
    let what = format!("{command:?}");
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1");
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        writeln!(stdin, "{input}").unwrap_or_else(|e| panic!("writing to {what}: {e}"));
    }
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("{what} did not finish within {limit:?}")
        }
    }
}

/// Like [`run`], and panics unless the command succeeded.
pub(crate) fn run_ok(command: Command, input: Option<&str>, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let output = run(command, input, limit);
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits up to `limit` for process `pid` to end.
pub(crate) fn wait_gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Whether a filesystem is mounted at `path` (as `/proc/mounts` says).
pub fn is_mounted(path: &Path) -> bool {
    let target = path
        .to_string_lossy()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(target.as_str()))
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
