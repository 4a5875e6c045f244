//! What ships: the mount helper, the Debian packages, and the systemd units.
//!
//! * `mount_helper_*` runs `packaging/mount.meshfs` as `mount(8)` would,
//!   against a real meshd, with the binaries of this build. It runs in the
//!   normal suite.
//! * The `installed_*` tests check the packages that `scripts/test-packages`
//!   built with cargo-deb and installed with `dpkg -i`: the binaries, man
//!   pages and completions, `mount -t meshfs` and an fstab line, and both
//!   units. There is no systemd PID 1 on the test machines, so a unit is
//!   exercised by doing what systemd would: its `ExecStart` runs with the
//!   unit's user and a notification socket, must report `READY=1`, and must
//!   exit cleanly on the unit's `KillSignal` (SIGTERM) within its
//!   `TimeoutStopSec`; `ExecStartPre`/`ExecStopPost` run around it; and
//!   `systemd-analyze verify` checks each unit. They are ignored unless
//!   asked for (`--ignored`), since they need the packages installed.

use mesh_e2e::{PASSWORD, Server, is_mounted, meshfs_bin, wait_until};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EMAIL: &str = "ann@example.org";

/// A directory with a signed-in device's home and a mountpoint, unmounted
/// (by force if need be) when dropped.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new(server: &Server, meshfs: &Path) -> Place {
        let dir = tempfile::Builder::new()
            .prefix("meshfs-packaging.")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let place = Place { dir };
        let out = run_with_input(
            Command::new(meshfs)
                .arg("--home")
                .arg(place.home())
                .args(["login", server.url(), "--email", EMAIL, "--password-stdin"])
                .args(["--device-name", "packaging"]),
            PASSWORD,
        );
        assert!(out.status.success(), "login failed: {}", text(&out.stderr));
        place
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// The mount daemon's pid, while one runs for this home.
    fn daemon(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.home().join("meshfs.pid")).ok()?;
        let pid: i32 = text.split_whitespace().next()?.parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Unmounts with umount(8), as an administrator would, and waits for
    /// the daemon to push what is pending and exit.
    fn umount(&self) {
        let out = Command::new("umount").arg(self.mnt()).output().unwrap();
        assert!(out.status.success(), "umount: {}", text(&out.stderr));
        wait_until("the mount daemon to exit", Duration::from_secs(30), || {
            self.daemon().is_none()
        });
        assert!(!is_mounted(&self.mnt()));
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if is_mounted(&self.mnt()) {
            let path = std::ffi::CString::new(self.mnt().into_os_string().into_encoded_bytes())
                .expect("a path without NUL");
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
        if let Some(pid) = self.daemon() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.home().join("meshfs.log")).unwrap_or_default();
            eprintln!("----- meshfs log -----\n{log}\n----- end of meshfs log -----");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    writeln!(child.stdin.take().unwrap(), "{input}").unwrap();
    child.wait_with_output().unwrap()
}

/// Writes a file in a new Live Folder of the mount and reads it back.
fn write_and_read(mnt: &Path, folder: &str) {
    let dir = mnt.join(folder);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from a mount helper\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.txt")).unwrap(),
        "hello from a mount helper\n"
    );
}

#[test]
fn mount_helper_mounts_with_fstab_options_and_refuses_what_it_cannot_do() {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/mount.meshfs");
    let meshfs = meshfs_bin();
    // The helper finds meshfs on PATH, as the installed one is found in /usr/bin.
    let path = format!(
        "{}:{}",
        meshfs.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let server = Server::start();
    server.add_user(EMAIL);
    let place = Place::new(&server, &meshfs);
    let helper_run = |args: &[&str]| {
        Command::new(&helper)
            .arg(place.home())
            .arg(place.mnt())
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap()
    };

    let out = helper_run(&["-o", "ro"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("read-write"),
        "{}",
        text(&out.stderr)
    );
    let out = helper_run(&["-o", "nofail,colour=red"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown option colour=red"));
    // Sloppy (-s) ignores what it does not know; fake (-f) mounts nothing.
    let out = helper_run(&["-sf", "-o", "nofail,colour=red"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!is_mounted(&place.mnt()));

    let options = "rw,_netdev,nofail,x-systemd.automount,cache-size=64M,log=meshfs=debug";
    let out = helper_run(&["-o", options]);
    assert!(out.status.success(), "mount.meshfs: {}", text(&out.stderr));
    assert!(is_mounted(&place.mnt()));
    write_and_read(&place.mnt(), "Helper");
    // log= reached the mount daemon (the default filter logs no DEBUG).
    let log = std::fs::read_to_string(place.home().join("meshfs.log")).unwrap();
    assert!(log.contains("DEBUG"), "{log}");
    // Mounting what is mounted changes nothing and succeeds (`mount -a`).
    let out = helper_run(&["-o", options]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    place.umount();
    let out = helper_run(&["-o", "_netdev,nofail"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(place.mnt().join("Helper/hello.txt")).unwrap(),
        "hello from a mount helper\n"
    );
    place.umount();

    // Over a directory that holds a file: refused, unless `nonempty`.
    let kept = place.mnt().join("kept.txt");
    std::fs::write(&kept, "mine").unwrap();
    let out = helper_run(&["-o", "_netdev"]);
    assert!(!out.status.success());
    assert!(!is_mounted(&place.mnt()));
    assert!(
        text(&out.stderr).contains("is not empty"),
        "{}",
        text(&out.stderr)
    );
    let out = helper_run(&["-o", "_netdev,nonempty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(is_mounted(&place.mnt()) && !kept.exists());
    place.umount();
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "mine");
    std::fs::remove_file(&kept).unwrap();
}

// ---------------------------------------------------------------------------
// The installed packages

const MESHD: &str = "/usr/bin/meshd";
const MESHFS: &str = "/usr/bin/meshfs";
const MESHD_UNIT: &str = "/usr/lib/systemd/system/meshd.service";
const MESHFS_UNIT: &str = "/usr/lib/systemd/user/meshfs@.service";

fn run_ok(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
#[ignore = "checks the installed packages; run by scripts/test-packages"]
fn installed_binaries_man_pages_completions_and_configuration() {
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        run_ok(Command::new(MESHD).arg("--version")).trim(),
        format!("meshd {version}")
    );
    assert_eq!(
        run_ok(Command::new(MESHFS).arg("--version")).trim(),
        format!("meshfs {version}")
    );
    for (program, pages) in [
        (
            "meshd",
            &[
                "meshd",
                "meshd-serve",
                "meshd-config-check",
                "meshd-user-add",
            ][..],
        ),
        ("meshfs", &["meshfs", "meshfs-mount", "meshfs-login"][..]),
    ] {
        for page in pages {
            let path = format!("/usr/share/man/man1/{page}.1.gz");
            assert!(Path::new(&path).is_file(), "{path} is missing");
        }
        // man(1) finds the page and it renders.
        let page = run_ok(
            Command::new("man")
                .args(["-P", "cat", program])
                .env("MANWIDTH", "80"),
        );
        assert!(page.contains(&format!("{program} {version}")), "{page}");
        for completion in [
            format!("/usr/share/bash-completion/completions/{program}"),
            format!("/usr/share/zsh/vendor-completions/_{program}"),
            format!("/usr/share/fish/vendor_completions.d/{program}.fish"),
        ] {
            let script = std::fs::read_to_string(&completion)
                .unwrap_or_else(|e| panic!("{completion}: {e}"));
            assert!(script.contains(program), "{completion}");
        }
    }
    // bash loads the completion and completes a subcommand with it.
    let words = run_ok(Command::new("bash").arg("-c").arg(
        "source /usr/share/bash-completion/completions/meshd; \
         COMP_WORDS=(meshd con); COMP_CWORD=1; COMP_LINE='meshd con'; COMP_POINT=9; \
         _meshd meshd con meshd; echo \"${COMPREPLY[@]}\"",
    ));
    assert_eq!(words.trim(), "config");

    // The shipped configuration file is valid and is a conffile.
    let out = run_ok(Command::new(MESHD).args(["config", "check"]));
    assert!(out.contains("/etc/meshd/meshd.toml: ok"), "{out}");
    let conffiles = run_ok(Command::new("dpkg-query").args(["-W", "-f", "${Conffiles}", "meshd"]));
    assert!(conffiles.contains("/etc/meshd/meshd.toml"), "{conffiles}");
    // The service's user exists; the mount helper is where mount(8) looks.
    run_ok(Command::new("id").arg("meshd"));
    let helper = std::fs::metadata("/sbin/mount.meshfs").expect("/sbin/mount.meshfs");
    assert!(helper.permissions().mode() & 0o111 != 0);
    let depends = run_ok(Command::new("dpkg-query").args(["-W", "-f", "${Depends}", "meshfs"]));
    assert!(depends.contains("fuse3"), "{depends}");

    // systemd checks both units (the user unit as one instance of it).
    run_ok(Command::new("systemd-analyze").args(["verify", MESHD_UNIT]));
    let runtime = tempfile::tempdir().unwrap();
    let instance = runtime.path().join("meshfs@home-ann-Mesh.service");
    std::fs::copy(MESHFS_UNIT, &instance).unwrap();
    run_ok(
        Command::new("systemd-analyze")
            .args(["--user", "verify"])
            .arg(&instance)
            .env("XDG_RUNTIME_DIR", runtime.path()),
    );
}

#[test]
#[ignore = "checks the installed packages; run by scripts/test-packages"]
fn installed_mount_t_meshfs_and_an_fstab_line() {
    let server = Server::start();
    server.add_user(EMAIL);
    let place = Place::new(&server, Path::new(MESHFS));

    run_ok(
        Command::new("mount")
            .args(["-t", "meshfs", "-o", "_netdev,nofail"])
            .arg(place.home())
            .arg(place.mnt()),
    );
    assert!(is_mounted(&place.mnt()));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(place.mnt().to_str().unwrap()))
        .unwrap();
    // fusermount3 mounted it (found on PATH although mount(8) gives the
    // helper none), so a crashed daemon leaves no dead mount behind.
    assert!(
        line.starts_with("meshfs ") && line.contains(" fuse.meshfs "),
        "{line}"
    );
    write_and_read(&place.mnt(), "Typed");
    place.umount();

    let fstab = place.dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# an /etc/fstab line\n{}  {}  meshfs  _netdev,nofail,cache-size=1G  0  0\n",
            place.home().display(),
            place.mnt().display()
        ),
    )
    .unwrap();
    run_ok(Command::new("mount").arg("-T").arg(&fstab).arg(place.mnt()));
    assert!(is_mounted(&place.mnt()));
    assert_eq!(
        std::fs::read_to_string(place.mnt().join("Typed/hello.txt")).unwrap(),
        "hello from a mount helper\n"
    );
    // `mount -a` with the line mounted already succeeds and mounts nothing twice.
    run_ok(Command::new("mount").arg("-a").arg("-T").arg(&fstab));
    place.umount();
}

/// The values of `key=` lines in a unit file, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// One `Exec*=` command line as argv: `%f` becomes `mountpoint`, and a
/// leading `-` (failure is ignored) is dropped and returned.
fn exec_argv(line: &str, mountpoint: &Path) -> (bool, Vec<String>) {
    let (ignore_failure, line) = match line.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let argv = line
        .split_whitespace()
        .map(|w| w.replace("%f", mountpoint.to_str().unwrap()))
        .collect();
    (ignore_failure, argv)
}

fn seconds(unit: &str, key: &str) -> Duration {
    let value = unit_values(unit, key)
        .pop()
        .unwrap_or_else(|| panic!("no {key}"));
    Duration::from_secs(value.parse().unwrap())
}

/// A notification socket like systemd's, writable by any user.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    /// Waits for `READY=1`, as systemd does for `Type=notify`.
    fn wait_ready(&self, limit: Duration) {
        self.socket.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 256];
        let n = self
            .socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no READY=1 within {limit:?}: {e}"));
        let message = text(&buf[..n]);
        assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");
    }
}

/// Sends the unit's KillSignal and waits, as systemd would, for the main
/// process to exit within TimeoutStopSec; it must exit successfully.
fn stop(child: &mut std::process::Child, unit: &str) {
    assert_eq!(unit_values(unit, "KillSignal"), ["SIGTERM"]);
    let limit = seconds(unit, "TimeoutStopSec");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the service ended with {status}");
            return;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the service did not stop within TimeoutStopSec ({limit:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The uid and gid of a user.
fn ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        run_ok(Command::new("id").arg(flag).arg(user))
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

#[test]
#[ignore = "checks the installed packages; run by scripts/test-packages"]
fn installed_meshd_unit_starts_and_stops_cleanly() {
    let unit = std::fs::read_to_string(MESHD_UNIT).unwrap();
    assert_eq!(unit_values(&unit, "Type"), ["notify"]);
    let user = unit_values(&unit, "User").pop().expect("User=");
    let (uid, gid) = ids(&user);
    let [start] = unit_values(&unit, "ExecStart")
        .try_into()
        .expect("one ExecStart");
    let (_, argv) = exec_argv(&start, Path::new("/"));

    // What a drop-in would change: a free port, and a scratch state
    // directory owned by the unit's user instead of /var/lib/meshd.
    // Everything else comes from the unit and /etc/meshd/meshd.toml.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = scratch.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    let notify = NotifySocket::new();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("NOTIFY_SOCKET", &notify.path)
        .env("MESHD_LISTEN", "127.0.0.1:0")
        .env("MESHD_DATA", &state)
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    notify.wait_ready(Duration::from_secs(30));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("meshd listening on http://")
        .unwrap_or_else(|| panic!("{first:?}"));
    // It answers, as the unit's user, from its state directory.
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /v1/devices HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let database = std::fs::metadata(state.join("meshd.sqlite3")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&database), uid);

    stop(&mut child, &unit);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("stopped"), "{log}");
}

#[test]
#[ignore = "checks the installed packages; run by scripts/test-packages"]
fn installed_meshfs_user_unit_mounts_and_unmounts_cleanly() {
    let server = Server::start();
    server.add_user(EMAIL);
    let place = Place::new(&server, Path::new(MESHFS));
    let unit = std::fs::read_to_string(MESHFS_UNIT).unwrap();
    assert_eq!(unit_values(&unit, "Type"), ["notify"]);
    // The instance: a mountpoint that does not exist yet (ExecStartPre
    // makes it).
    let mountpoint = place.dir.path().join("Mesh");
    let run_all = |key: &str| {
        for line in unit_values(&unit, key) {
            let (ignore_failure, argv) = exec_argv(&line, &mountpoint);
            let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
            assert!(
                ignore_failure || out.status.success(),
                "{key}={line}: {}: {}",
                out.status,
                text(&out.stderr)
            );
        }
    };

    run_all("ExecStartPre");
    let [start] = unit_values(&unit, "ExecStart")
        .try_into()
        .expect("one ExecStart");
    let (_, argv) = exec_argv(&start, &mountpoint);
    let notify = NotifySocket::new();
    // A user unit runs with the user's environment; this one's home is
    // the test's (MESHFS_HOME), so its settings would be read from there.
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("MESHFS_HOME", place.home())
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    notify.wait_ready(Duration::from_secs(60));
    assert!(is_mounted(&mountpoint));
    write_and_read(&mountpoint, "Unit");

    stop(&mut child, &unit);
    assert!(!is_mounted(&mountpoint), "the mount outlived its service");
    run_all("ExecStopPost");
    assert!(!is_mounted(&mountpoint));
}
