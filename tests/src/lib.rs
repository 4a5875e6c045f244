//! End-to-end harness for Mesh: starts the real `meshd` server and mounts
//! real `meshfs` FUSE filesystems against it, one temporary home directory
//! and mountpoint per device, so tests act exactly as a user would — with
//! plain file system calls on the mountpoints and the real command lines.
//!
//! The binaries are not built by this crate: run `cargo build --workspace`
//! first. They are found next to the test executable
//! (`<target>/debug/{meshd,meshfs}`), or wherever `MESHD_BIN` / `MESHFS_BIN`
//! point.
//!
//! * [`Server::start`] runs `meshd serve` on a temporary data directory and
//!   a free port; dropping it stops the server (SIGTERM, then SIGKILL).
//! * [`Device::mount`] signs a new device in (`meshfs login`) and mounts it
//!   (`meshfs mount`); dropping it unmounts, by force if need be, even when
//!   the test panics. On a panic both drop handlers print the end of their
//!   logs, so a failure can be read from the test output alone.
//! * Changes travel between devices in the background: wait for them with
//!   [`wait_until`], never with a fixed sleep.
//!
//! Requires `/dev/fuse` and the rights to mount (the tests run as root).

pub mod smtp;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The password of every user the harness adds.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long a change may take to reach another device before a test gives
/// up. Generous on purpose: this is a deadline, not a speed requirement.
pub const SYNC: Duration = Duration::from_secs(20);

/// How long a command of the product (login, mount, unmount) may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// How many lines of a log a failing test prints.
const LOG_TAIL: usize = 150;

// ---------------------------------------------------------------------------
// Binaries and environment

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

/// Fails (never skips) when this machine cannot mount FUSE filesystems.
fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: these end-to-end tests mount real FUSE filesystems; \
         load the fuse module (or give the container /dev/fuse) and run them again"
    );
}

/// Runs a command to completion with `input` on stdin, or panics when it
/// takes longer than `limit` (killing it first).
fn run(mut command: Command, input: Option<&str>, limit: Duration) -> Output {
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
fn run_ok(command: Command, input: Option<&str>, limit: Duration) -> Output {
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

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits up to `limit` for process `pid` to end.
fn wait_gone(pid: i32, limit: Duration) -> bool {
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
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Waiting

/// Polls `done` every 50 ms until it holds, or panics with `what` once
/// `deadline` has passed (one last check is made at the deadline).
pub fn wait_until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if done() {
            return;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `probe` every 50 ms until it returns `want`, or panics after
/// `deadline` with `what`, the wanted value and the last one seen.
pub fn wait_for<T: PartialEq + std::fmt::Debug>(
    what: &str,
    deadline: Duration,
    want: &T,
    mut probe: impl FnMut() -> T,
) {
    let start = Instant::now();
    loop {
        let seen = probe();
        if &seen == want {
            return;
        }
        if start.elapsed() > deadline {
            panic!(
                "timed out after {deadline:?} waiting for {what}\n  wanted: {want:?}\n  last seen: {seen:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `rel` on `device` is `want` (`None`: gone), for [`SYNC`].
pub fn wait_for_entry(device: &Device, rel: &str, want: Option<Entry>) {
    wait_for(
        &format!("{rel} on device {}", device.name()),
        SYNC,
        &Ok(want),
        || entry(&device.path(rel)),
    );
}

// ---------------------------------------------------------------------------
// The server

/// A running `meshd` on a temporary data directory and a free port.
pub struct Server {
    child: Option<Child>,
    /// Extra arguments of `meshd serve`, kept for a restart.
    args: Vec<String>,
    url: String,
    data: PathBuf,
    log: PathBuf,
    /// Removed (with the data) when the server is dropped.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `meshd serve --listen 127.0.0.1:0` and reads its address from
    /// the first line it prints. Its stderr goes to a log file.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// [`Server::start`] with extra arguments of `meshd serve`.
    pub fn start_with(args: &[&str]) -> Server {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let dir = tempfile::Builder::new()
            .prefix("meshd-e2e.")
            .tempdir()
            .expect("a temporary directory");
        let data = dir.path().join("data");
        let log = dir.path().join("meshd.log");
        let (child, url) = Self::spawn(dir.path(), &data, &log, "127.0.0.1:0", &args);
        Server {
            child: Some(child),
            args,
            url,
            data,
            log,
            _dir: dir,
        }
    }

    /// Starts the server again after [`Server::stop`], on the same data and
    /// the same address, as after an outage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let listen = self
            .url
            .strip_prefix("http://")
            .expect("an http URL")
            .to_owned();
        let (child, url) =
            Self::spawn(self._dir.path(), &self.data, &self.log, &listen, &self.args);
        assert_eq!(url, self.url, "meshd came back on another address");
        self.child = Some(child);
    }

    /// Runs `meshd serve` and waits for the line with its URL.
    fn spawn(
        dir: &Path,
        data: &Path,
        log: &Path,
        listen: &str,
        args: &[String],
    ) -> (Child, String) {
        let mut child = Command::new(meshd_bin())
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .args(args)
            .env("NO_COLOR", "1")
            // Whatever /etc/meshd/meshd.toml this machine has, ignore it.
            .env("MESHD_CONFIG", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .expect("opening the server log"),
            ))
            .spawn()
            .expect("starting meshd");
        // A thread hands over the first line, then keeps draining stdout
        // into a file so that the server never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let rest = dir.join("meshd.stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            if let Ok(mut file) = std::fs::File::create(rest) {
                let _ = std::io::copy(&mut reader, &mut file);
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30));
        let url = match &first {
            Ok(Ok(line)) => line
                .trim()
                .strip_prefix("meshd listening on ")
                .map(str::to_owned),
            _ => None,
        };
        let Some(url) = url else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "meshd did not print `meshd listening on URL` (got {first:?}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        (child, url)
    }

    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Adds a user with [`PASSWORD`] (`meshd user add … --password-stdin`).
    pub fn add_user(&self, email: &str) {
        let mut command = Command::new(meshd_bin());
        command
            .args(["user", "add", email, "--password-stdin", "--data"])
            .arg(&self.data);
        run_ok(command, Some(PASSWORD), COMMAND_LIMIT);
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Stops the server with SIGTERM, as an administrator would, and waits
    /// for it to exit (panics if it takes more than 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id() as i32, libc::SIGTERM);
        let start = Instant::now();
        loop {
            if child.try_wait().expect("waiting for meshd").is_some() {
                return;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("meshd did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, libc::SIGTERM);
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "----- meshd log ({}), last {LOG_TAIL} lines -----\n{}\n----- end of meshd log -----",
                self.url,
                tail(&self.log(), LOG_TAIL)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Devices

/// One signed-in device with its own home directory and a mounted
/// `meshfs` — like one of the user's computers.
pub struct Device {
    name: String,
    /// Holds `home/` and `mnt/`; `None` once deliberately leaked.
    dir: Option<tempfile::TempDir>,
    home: PathBuf,
    mnt: PathBuf,
    /// The mount daemon's pid while mounted.
    pid: Option<i32>,
    /// Extra arguments of `meshfs mount` (e.g. `--cache-size`).
    mount_args: Vec<String>,
}

impl Device {
    /// Signs a new device called `device_name` in to `server` as `email`
    /// (who must exist: [`Server::add_user`]) and mounts it.
    pub fn mount(server: &Server, email: &str, device_name: &str) -> Device {
        require_fuse();
        let dir = tempfile::Builder::new()
            .prefix(&format!("meshfs-e2e-{device_name}."))
            .tempdir()
            .expect("a temporary directory");
        let home = dir.path().join("home");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("creating the mountpoint");
        let mut device = Device {
            name: device_name.to_owned(),
            dir: Some(dir),
            home,
            mnt,
            pid: None,
            mount_args: Vec::new(),
        };
        let mut login = device.meshfs();
        login
            .arg("login")
            .arg(server.url())
            .args(["--email", email, "--password-stdin", "--device-name"])
            .arg(device_name);
        run_ok(login, Some(PASSWORD), COMMAND_LIMIT);
        device.mount_again();
        device
    }

    /// A `meshfs` command for this device (`--home` set).
    pub fn meshfs(&self) -> Command {
        let mut command = Command::new(meshfs_bin());
        command.arg("--home").arg(&self.home);
        command
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mountpoint.
    pub fn mountpoint(&self) -> &Path {
        &self.mnt
    }

    /// The device's home directory (`--home`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `rel` inside the mount.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.mnt.join(rel)
    }

    /// What the mount daemon logged so far (`HOME/meshfs.log`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("meshfs.log")).unwrap_or_default()
    }

    /// The chunk files in the device's chunk cache (`HOME/cache/chunks`,
    /// without its `tmp/`).
    pub fn cached_chunks(&self) -> Vec<PathBuf> {
        let dir = self.home.join("cache").join("chunks");
        match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading {}: {e}", dir.display()),
        }
    }

    /// Whether this device is mounted now.
    pub fn is_mounted(&self) -> bool {
        is_mounted(&self.mnt)
    }

    /// Mounts the device (again) with `meshfs mount`, which returns once the
    /// mount is ready.
    pub fn mount_again(&mut self) {
        assert!(
            !self.is_mounted(),
            "{} is already mounted at {}",
            self.name,
            self.mnt.display()
        );
        let mut command = self.meshfs();
        command.arg("mount").args(&self.mount_args).arg(&self.mnt);
        let output = run(command, None, COMMAND_LIMIT);
        assert!(
            output.status.success(),
            "`meshfs mount` of device {} failed ({})\nstderr: {}\nlog:\n{}",
            self.name,
            output.status,
            String::from_utf8_lossy(&output.stderr),
            tail(&self.log(), LOG_TAIL)
        );
        self.pid = self.daemon_pid();
        assert!(
            self.pid.is_some(),
            "`meshfs mount` of device {} returned, but {} names no running daemon",
            self.name,
            self.home.join("meshfs.pid").display()
        );
        assert!(
            self.is_mounted(),
            "`meshfs mount` of device {} returned, but nothing is mounted at {}",
            self.name,
            self.mnt.display()
        );
    }

    /// The pid in `HOME/meshfs.pid` ("PID MOUNTPOINT"), if that process runs.
    fn daemon_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.home.join("meshfs.pid")).ok()?;
        let pid: i32 = text.split_whitespace().next()?.parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// `meshfs unmount`: pushes what is pending and unmounts; panics unless
    /// it succeeds, the mount is gone and the daemon has exited.
    pub fn unmount(&mut self) {
        let mut command = self.meshfs();
        command.arg("unmount").arg(&self.mnt);
        let output = run(command, None, COMMAND_LIMIT);
        assert!(
            output.status.success(),
            "`meshfs unmount` of device {} failed ({})\nstderr: {}",
            self.name,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !self.is_mounted(),
            "`meshfs unmount` of device {} succeeded, but {} is still mounted",
            self.name,
            self.mnt.display()
        );
        if let Some(pid) = self.pid.take() {
            assert!(
                wait_gone(pid, Duration::from_secs(5)),
                "`meshfs unmount` of device {} returned, but its daemon (pid {pid}) still runs",
                self.name
            );
        }
    }

    /// Unmounts (if mounted) and mounts again with these extra arguments
    /// of `meshfs mount`, kept for later mounts.
    pub fn remount_with(&mut self, args: &[&str]) {
        self.mount_args = args.iter().map(|a| a.to_string()).collect();
        self.remount();
    }

    /// Kills the mount daemon with SIGKILL, as a crash would, and waits
    /// until its mount is gone (auto-unmount, else a lazy unmount).
    pub fn kill(&mut self) {
        let pid = self.pid.take().expect("the device is mounted");
        signal(pid, libc::SIGKILL);
        assert!(
            wait_gone(pid, Duration::from_secs(5)),
            "the daemon of {} survived SIGKILL",
            self.name
        );
        let start = Instant::now();
        while self.is_mounted() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.is_mounted() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        assert!(
            !self.is_mounted(),
            "{} is still mounted",
            self.mnt.display()
        );
    }

    /// Stops the mount daemon with SIGSTOP, as a suspended laptop or a
    /// network that silently drops everything would: its connections stay
    /// open but nothing answers. It continues when the guard drops (also
    /// when a test fails). Touch nothing in its mount meanwhile.
    pub fn freeze(&self) -> Frozen {
        let pid = self.pid.expect("the device is mounted");
        signal(pid, libc::SIGSTOP);
        Frozen { pid }
    }

    /// Runs `meshfs ARGS` for this device; panics unless it succeeds and
    /// returns what it printed.
    pub fn run_meshfs<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let mut command = self.meshfs();
        command.args(args);
        let output = run(command, None, COMMAND_LIMIT);
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        assert!(
            output.status.success(),
            "`meshfs {}` of device {} failed: {}",
            shown.join(" "),
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("meshfs prints text")
    }

    /// `meshfs status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.run_meshfs(&["status", "--json"]))
            .expect("`meshfs status --json` prints JSON")
    }

    /// Unmounts (if mounted) and mounts again.
    pub fn remount(&mut self) {
        if self.is_mounted() {
            self.unmount();
        }
        self.mount_again();
    }

    /// Gets rid of the mount whatever state it is in: `meshfs unmount`
    /// first, then lazy unmounts and SIGKILL of the daemon. Never panics.
    fn force_unmount(&mut self) {
        let pid = self.daemon_pid().or(self.pid.take());
        if self.is_mounted() || pid.is_some() {
            let mut command = self.meshfs();
            command
                .arg("unmount")
                .arg(&self.mnt)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = command.spawn() {
                let start = Instant::now();
                while child.try_wait().ok().flatten().is_none() {
                    if start.elapsed() > Duration::from_secs(30) {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        if self.is_mounted() {
            eprintln!(
                "device {}: `meshfs unmount` left {} mounted; unmounting by force",
                self.name,
                self.mnt.display()
            );
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            if self.is_mounted() {
                let _ = Command::new("fusermount3")
                    .args(["-u", "-z"])
                    .arg(&self.mnt)
                    .status();
            }
        }
        if let Some(pid) = pid
            && alive(pid)
            && !wait_gone(pid, Duration::from_secs(2))
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("meshfs") {
                eprintln!("device {}: killing its daemon (pid {pid})", self.name);
                signal(pid, libc::SIGKILL);
                wait_gone(pid, Duration::from_secs(5));
            }
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- meshfs log of device {} (mounted at {}), last {LOG_TAIL} lines -----\n{}\n----- end of meshfs log of {} -----",
                self.name,
                self.mnt.display(),
                tail(&self.log(), LOG_TAIL),
                self.name
            );
        }
        self.force_unmount();
        if self.is_mounted() {
            // Removing the directory would walk into the mount: leave it.
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "device {}: {} is still mounted; leaving {} in place",
                    self.name,
                    self.mnt.display(),
                    kept.display()
                );
            }
        }
    }
}

/// A mount daemon stopped by [`Device::freeze`]; continued on drop.
pub struct Frozen {
    pid: i32,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.pid, libc::SIGCONT);
    }
}

/// The usual cast: one server, one user, two devices of that user
/// (`laptop` = `a`, `desktop` = `b`). Fields drop in order, so both devices
/// unmount before the server stops.
pub struct Pair {
    pub a: Device,
    pub b: Device,
    pub server: Server,
}

/// The user of [`Pair`].
pub const EMAIL: &str = "ann@example.org";

impl Pair {
    pub fn start() -> Pair {
        Pair::start_with(&[])
    }

    /// [`Pair::start`] with extra arguments of `meshd serve`.
    pub fn start_with(args: &[&str]) -> Pair {
        let server = Server::start_with(args);
        server.add_user(EMAIL);
        let a = Device::mount(&server, EMAIL, "laptop");
        let b = Device::mount(&server, EMAIL, "desktop");
        Pair { a, b, server }
    }

    /// Creates the Live Folder `name` on device a (`mkdir MNT/name`) and
    /// waits until device b lists it too.
    pub fn live_folder(&self, name: &str) {
        std::fs::create_dir(self.a.path(name))
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", self.a.path(name).display()));
        wait_for_entry(&self.b, name, Some(Entry::Dir));
    }
}

// ---------------------------------------------------------------------------
// Content

/// Pseudo-random bytes addressable by offset: byte `i` of the stream for
/// `seed` is always the same, so any part can be regenerated to check it.
pub fn pseudo_random(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = splitmix64(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let from = (pos % 8) as usize;
        let n = (8 - from).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[from..from + n]);
        i += n;
        pos += n as u64;
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` pseudo-random bytes of the stream for `seed` from `offset`.
pub fn pseudo_random_vec(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    pseudo_random(seed, offset, &mut out);
    out
}

/// Writes `len` bytes of the pseudo-random stream for `seed` to a new file
/// at `path` in 1 MiB writes, and closes it.
pub fn write_pseudo_random(path: &Path, seed: u64, len: u64) {
    let mut file =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let mut buf = vec![0; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        pseudo_random(seed, at, &mut buf[..n]);
        file.write_all(&buf[..n])
            .unwrap_or_else(|e| panic!("writing {} at {at}: {e}", path.display()));
        at += n as u64;
    }
    drop(file);
}

/// Reads as much of `buf` as the reader gives (short only at its end).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Compares two files byte for byte by streaming them, like `cmp`:
/// `Ok(())` when identical, else a description of the first difference.
pub fn cmp(a: &Path, b: &Path) -> Result<(), String> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let na =
            read_full(&mut fa, &mut ba).map_err(|e| format!("reading {}: {e}", a.display()))?;
        let nb =
            read_full(&mut fb, &mut bb).map_err(|e| format!("reading {}: {e}", b.display()))?;
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Err(format!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                offset + i as u64
            ));
        }
        if na != nb {
            let shorter = if na < nb { a } else { b };
            return Err(format!(
                "EOF on {} after byte {}",
                shorter.display(),
                offset + n as u64
            ));
        }
        if na == 0 {
            return Ok(());
        }
        offset += na as u64;
    }
}

/// Checks by streaming that the file at `path` holds exactly `len` bytes of
/// the pseudo-random stream for `seed`.
pub fn check_pseudo_random(path: &Path, seed: u64, len: u64) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut got, mut want) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut file, &mut got)
            .map_err(|e| format!("reading {} at {offset}: {e}", path.display()))?;
        let expected = (len - offset).min(want.len() as u64) as usize;
        pseudo_random(seed, offset, &mut want[..expected]);
        if let Some(i) = (0..n.min(expected)).find(|&i| got[i] != want[i]) {
            return Err(format!(
                "{} differs from what was written at byte {}",
                path.display(),
                offset + i as u64
            ));
        }
        if n != expected {
            return Err(format!(
                "{} holds {} bytes, {len} were written",
                path.display(),
                offset + n as u64
            ));
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

// ---------------------------------------------------------------------------
// Trees

/// What is at a path: a directory, a file with its bytes, or a symlink
/// with its target.
#[derive(Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Dir => write!(f, "Dir"),
            Entry::File(bytes) if bytes.len() <= 120 => {
                write!(f, "File(b\"{}\")", bytes.escape_ascii())
            }
            Entry::File(bytes) => write!(
                f,
                "File({} bytes starting b\"{}\")",
                bytes.len(),
                bytes[..40].escape_ascii()
            ),
            Entry::Symlink(target) => write!(f, "Symlink({})", target.display()),
        }
    }
}

/// What is at `path` now: `Ok(None)` when nothing is, `Err` with the error
/// when it cannot be read. Symlinks are not followed.
pub fn entry(path: &Path) -> Result<Option<Entry>, String> {
    let described = |e: std::io::Error| format!("{}: {e}", path.display());
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(described(e)),
    };
    Ok(Some(if meta.is_dir() {
        Entry::Dir
    } else if meta.file_type().is_symlink() {
        Entry::Symlink(std::fs::read_link(path).map_err(described)?)
    } else {
        Entry::File(std::fs::read(path).map_err(described)?)
    }))
}

/// Everything under `root` — directories, files with their bytes, symlinks
/// with their targets — by path relative to `root`. Meant for small trees.
pub fn snapshot(root: &Path) -> std::io::Result<BTreeMap<PathBuf, Entry>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let rel = path.strip_prefix(root).expect("below the root").to_owned();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                out.insert(rel, Entry::Dir);
                walk(root, &path, out)?;
            } else if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Symlink(std::fs::read_link(&path)?));
            } else {
                out.insert(rel, Entry::File(std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

/// Polls [`snapshot`] of `root` until it equals `expected`, or panics after
/// `deadline` naming the first differences.
pub fn wait_for_tree(
    what: &str,
    deadline: Duration,
    root: &Path,
    expected: &BTreeMap<PathBuf, Entry>,
) {
    let start = Instant::now();
    loop {
        let seen = snapshot(root);
        if seen.as_ref().is_ok_and(|seen| seen == expected) {
            return;
        }
        if start.elapsed() > deadline {
            let detail = match seen {
                Ok(seen) => tree_diff(expected, &seen),
                Err(e) => format!("listing {} failed: {e}", root.display()),
            };
            panic!("timed out after {deadline:?} waiting for {what}:\n{detail}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first differences between two snapshots, one a line.
pub fn tree_diff(expected: &BTreeMap<PathBuf, Entry>, seen: &BTreeMap<PathBuf, Entry>) -> String {
    let mut lines = Vec::new();
    let mut count = 0;
    for (path, want) in expected {
        match seen.get(path) {
            Some(got) if got == want => {}
            Some(got) => {
                count += 1;
                lines.push(format!(
                    "  {}: expected {want:?}, found {got:?}",
                    path.display()
                ));
            }
            None => {
                count += 1;
                lines.push(format!("  {}: missing (expected {want:?})", path.display()));
            }
        }
    }
    for (path, got) in seen {
        if !expected.contains_key(path) {
            count += 1;
            lines.push(format!("  {}: unexpected {got:?}", path.display()));
        }
    }
    lines.truncate(20);
    format!(
        "{count} difference(s) (expected {} entries, found {}), first ones:\n{}",
        expected.len(),
        seen.len(),
        lines.join("\n")
    )
}

/// How many regular files are below `root` (0 when it cannot be listed);
/// reads no content.
pub fn count_files(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// The names in directory `dir`, sorted; panics when it cannot be listed.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The errno of a failed call, or `None` when it succeeded.
pub fn errno_of<T>(result: std::io::Result<T>) -> Option<i32> {
    result.err().map(|e| e.raw_os_error().unwrap_or(-1))
}
