//! The server: a real `meshd serve` on a temporary data directory and a
//! free port (run by `mesh-testkit`, which meshd's own tests share), and its
//! users.

use std::path::Path;

use mesh_testkit::Meshd;

use crate::env::{LOG_TAIL, meshd_bin, tail};

/// The password of every user the harness adds.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running `meshd` on a temporary data directory and a free port.
pub struct Server {
    meshd: Meshd,
}

impl Server {
    /// Starts `meshd serve --listen 127.0.0.1:0` and reads its address from
    /// the first line it prints. Its stderr goes to a log file.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// [`Server::start`] with extra arguments of `meshd serve`.
    pub fn start_with(args: &[&str]) -> Server {
        Server {
            meshd: Meshd::start(&meshd_bin(), args, &[("NO_COLOR", "1")]),
        }
    }

    /// Starts the server again after [`Server::stop`], on the same data and
    /// the same address, as after an outage.
    pub fn restart(&mut self) {
        self.meshd.restart();
    }

    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        self.meshd.url()
    }

    /// The server's data directory.
    pub fn data(&self) -> &Path {
        self.meshd.data()
    }

    /// Adds a user with [`PASSWORD`] (`meshd user add … --password-stdin`).
    pub fn add_user(&self, email: &str) {
        mesh_testkit::add_user(&meshd_bin(), self.data(), email, PASSWORD)
            .unwrap_or_else(|e| panic!("`meshd user add {email}` failed: {e}"));
    }

    /// Runs `meshd ARGS --data DATA` on the server's data, as its
    /// administrator would while it runs; returns what it printed (panics
    /// if it fails).
    pub fn run_meshd(&self, args: &[&str]) -> String {
        let out = mesh_testkit::meshd_command(&meshd_bin())
            .args(args)
            .arg("--data")
            .arg(self.data())
            .output()
            .expect("running meshd");
        assert!(
            out.status.success(),
            "`meshd {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.meshd.log()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.meshd.is_running()
    }

    /// Stops the server with SIGTERM, as an administrator would, and waits
    /// for it to exit (panics if it takes more than 10 s).
    pub fn stop(&mut self) {
        self.meshd.terminate();
    }

    /// Kills the server with SIGKILL, as a crash or a power cut of its
    /// machine would (what the kernel had written stays); start it again
    /// with [`Server::restart`].
    pub fn crash(&mut self) {
        let pid = self.meshd.pid().expect("the server is running");
        crate::env::signal(pid as i32, libc::SIGKILL);
        self.meshd.terminate();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.meshd.shut_down();
        if std::thread::panicking() {
            eprintln!(
                "----- meshd log ({}), last {LOG_TAIL} lines -----\n{}\n----- end of meshd log -----",
                self.url(),
                tail(&self.log(), LOG_TAIL)
            );
        }
    }
}
