//! Devices: signed-in `meshfs` mounts, each with its own home directory and
//! mountpoint, and [`Pair`], the usual cast of one server and two devices.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{
    COMMAND_LIMIT, LOG_TAIL, alive, is_mounted, meshfs_bin, require_fuse, run, run_ok, signal,
    tail, wait_gone,
};
use crate::server::{PASSWORD, Server};
use crate::tree::Entry;
use crate::wait::wait_for_entry;

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
        Device::mount_via(server.url(), email, device_name)
    }

    /// [`Device::mount`], signed in to the server at `url` (a
    /// [`crate::FaultProxy`] in front of it, say).
    pub fn mount_via(url: &str, email: &str, device_name: &str) -> Device {
        Device::mount_with_home(url, email, device_name, None)
    }

    /// [`Device::mount_via`] with its home at `home` (on a
    /// [`crate::SmallDisk`], say) rather than in its temporary directory.
    pub fn mount_with_home(
        url: &str,
        email: &str,
        device_name: &str,
        home: Option<PathBuf>,
    ) -> Device {
        Device::mount_signed_in(url, email, device_name, home, &[])
    }

    /// [`Device::mount_via`] for an `https://` server, trusting only the
    /// certificate with SHA-256 `fingerprint` (`meshfs login --fingerprint`).
    pub fn mount_pinned(url: &str, email: &str, device_name: &str, fingerprint: &str) -> Device {
        Device::mount_signed_in(
            url,
            email,
            device_name,
            None,
            &["--fingerprint", fingerprint],
        )
    }

    /// Signs in with `login_args` added to `meshfs login`, then mounts.
    fn mount_signed_in(
        url: &str,
        email: &str,
        device_name: &str,
        home: Option<PathBuf>,
        login_args: &[&str],
    ) -> Device {
        require_fuse();
        let dir = tempfile::Builder::new()
            .prefix(&format!("meshfs-e2e-{device_name}."))
            .tempdir()
            .expect("a temporary directory");
        let home = home.unwrap_or_else(|| dir.path().join("home"));
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
            .arg(url)
            .args(["--email", email, "--password-stdin", "--device-name"])
            .arg(device_name)
            .args(login_args);
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
