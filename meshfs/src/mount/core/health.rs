//! The connection's health as the mount sees it: whether the server is
//! reachable, since when, and the last fault — set by the syncer and by
//! the few operations that need the server, read by reads (an impatient
//! read when offline) and by `meshfs status`.

use std::sync::Mutex;

use super::now_ns;

/// What is known of the connection at one moment.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub online: bool,
    /// When `online` last changed (ns); 0 before the first attempt.
    pub since: i64,
    /// When and what last went wrong.
    pub last_error: Option<(i64, String)>,
}

/// The connection's health, shared by everything in the mount.
pub struct Health {
    /// The server, for log lines.
    server: String,
    reading: Mutex<Reading>,
}

impl Health {
    pub fn new(server: &str) -> Health {
        Health {
            server: server.to_owned(),
            reading: Mutex::default(),
        }
    }

    pub fn is_online(&self) -> bool {
        self.reading.lock().expect("health").online
    }

    /// Records whether the server is reachable, logging each change.
    pub fn set_online(&self, online: bool) {
        let mut reading = self.reading.lock().expect("health");
        if reading.online == online && reading.since != 0 {
            return;
        }
        reading.online = online;
        reading.since = now_ns();
        if online {
            tracing::info!(server = %self.server, "the server is reachable");
        } else {
            tracing::warn!(
                server = %self.server,
                "the server is unreachable; working offline"
            );
        }
    }

    /// Remembers a fault for `meshfs status` (the caller logs it).
    pub fn record_error(&self, error: &dyn std::fmt::Display) {
        self.reading.lock().expect("health").last_error = Some((now_ns(), error.to_string()));
    }

    pub fn read(&self) -> Reading {
        self.reading.lock().expect("health").clone()
    }
}
