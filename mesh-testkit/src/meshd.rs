//! A real `meshd serve` for a test: on a temporary data directory and a
//! free port, its stderr in a log file, stopped by process id (SIGTERM,
//! then SIGKILL) when dropped; and `meshd user add` on a data directory.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `meshd user add` may run.
const USER_ADD_LIMIT: Duration = Duration::from_secs(90);

/// A `meshd` command that reads no configuration file (not even
/// `/etc/meshd/meshd.toml`, should this machine have one).
pub fn meshd_command(bin: &Path) -> Command {
    let mut command = Command::new(bin);
    command.env("MESHD_CONFIG", "/dev/null");
    command
}

/// Runs `meshd user add EMAIL --password-stdin --data DATA` with `password`
/// on stdin; `Err` holds what it printed on stderr (or that it did not
/// finish within 90 s, when it is killed).
pub fn add_user(bin: &Path, data: &Path, email: &str, password: &str) -> Result<(), String> {
    let mut child = meshd_command(bin)
        .args(["user", "add", email, "--password-stdin", "--data"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    // meshd may refuse the e-mail address before it reads the password:
    // then the pipe is closed, and its answer on stderr is what counts.
    if let Err(e) = writeln!(child.stdin.take().expect("piped stdin"), "{password}")
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        panic!("writing the password to `meshd user add`: {e}");
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(USER_ADD_LIMIT) {
        Ok(out) => out.expect("waiting for `meshd user add`"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            return Err(format!(
                "`meshd user add {email}` did not finish within {USER_ADD_LIMIT:?}"
            ));
        }
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A running `meshd serve` on a temporary data directory and a free port.
pub struct Meshd {
    bin: PathBuf,
    child: Option<Child>,
    /// Extra arguments of `meshd serve`, kept for a restart.
    args: Vec<String>,
    /// Extra environment of `meshd serve`, kept for a restart.
    env: Vec<(String, String)>,
    /// The most file descriptors `meshd serve` may hold, when not the
    /// inherited limit.
    max_files: Option<u64>,
    url: String,
    data: PathBuf,
    log: PathBuf,
    /// Removed (with the data) when the server is dropped.
    dir: tempfile::TempDir,
}

impl Meshd {
    /// Starts `BIN serve --listen 127.0.0.1:0 --data DIR/data ARGS`, with
    /// `env` added to its environment and no configuration file, and reads
    /// its address from the first line it prints. Its stderr goes to
    /// `DIR/meshd.log`, the rest of its stdout to `DIR/meshd.stdout`.
    pub fn start(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Meshd {
        Meshd::start_limited(bin, args, env, None)
    }

    /// [`Meshd::start`], with the server's file descriptors limited to
    /// `max_files` (`RLIMIT_NOFILE`), as a service's `LimitNOFILE=` would.
    pub fn start_with_max_files(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        max_files: u64,
    ) -> Meshd {
        Meshd::start_limited(bin, args, env, Some(max_files))
    }

    fn start_limited(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        max_files: Option<u64>,
    ) -> Meshd {
        let dir = tempfile::Builder::new()
            .prefix("meshd-test.")
            .tempdir()
            .expect("a temporary directory");
        let mut meshd = Meshd {
            bin: bin.to_owned(),
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            max_files,
            url: String::new(),
            data: dir.path().join("data"),
            log: dir.path().join("meshd.log"),
            dir,
        };
        let (child, url) = meshd.spawn("127.0.0.1:0");
        meshd.child = Some(child);
        meshd.url = url;
        meshd
    }

    /// Starts the server again after [`Meshd::terminate`], on the same data
    /// and the same address, as after an outage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let listen = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"))
            .expect("an http or https URL")
            .to_owned();
        let (child, url) = self.spawn(&listen);
        assert_eq!(url, self.url, "meshd came back on another address");
        self.child = Some(child);
    }

    /// Runs `meshd serve` and waits for the line with its URL.
    fn spawn(&self, listen: &str) -> (Child, String) {
        let mut command = meshd_command(&self.bin);
        if let Some(max) = self.max_files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: max,
                rlim_max: max,
            };
            // SAFETY: setrlimit is async-signal-safe, and the closure
            // allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .args(["serve", "--listen", listen, "--data"])
            .arg(&self.data)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .expect("opening the server log"),
            ))
            .spawn()
            .expect("starting meshd");
        // A thread hands over the first line, then keeps draining stdout
        // into a file so that the server never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let rest = self.dir.path().join("meshd.stdout");
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
                self.log()
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

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Stops the server with SIGTERM, as an administrator would, and waits
    /// for its exit status (panics if it takes more than 10 s); `None` when
    /// it was not running.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal(child.id(), libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for meshd") {
                return Some(status);
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("meshd did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What dropping does, for a harness that has more to do after it:
    /// SIGTERM, and SIGKILL if the server is still there 5 s later. Never
    /// panics; does nothing when the server is not running.
    pub fn shut_down(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
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
    }
}

impl Drop for Meshd {
    fn drop(&mut self) {
        self.shut_down();
    }
}
