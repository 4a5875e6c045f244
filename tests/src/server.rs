//! The server: a real `meshd serve` on a temporary data directory and a
//! free port, and its users.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::env::{COMMAND_LIMIT, LOG_TAIL, meshd_bin, run_ok, signal, tail};

/// The password of every user the harness adds.
pub const PASSWORD: &str = "correct horse battery staple";

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
