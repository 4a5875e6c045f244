//! The connection's health as the mount sees it: whether the server is
//! reachable, since when, and the last fault and whether what failed has
//! worked again since — set by the syncer, read by reads (an impatient
//! read when offline) and by `meshfs status`.

use std::sync::Mutex;

use super::now_ns;

/// What is known of the connection at one moment.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub online: bool,
    /// When `online` last changed (ns); 0 before the first attempt.
    pub since: i64,
    pub last_error: Option<Fault>,
}

/// What the mount does in the background, each of which can fail and
/// recover on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Following the change stream and catching up.
    Following,
    Pushing,
    FetchingPinned,
}

impl Activity {
    pub fn doing(self) -> &'static str {
        match self {
            Activity::Following => "keeping up with the server",
            Activity::Pushing => "pushing changes",
            Activity::FetchingPinned => "fetching pinned content",
        }
    }
}

/// The last thing that went wrong.
#[derive(Debug, Clone)]
pub struct Fault {
    /// When (ns).
    pub at: i64,
    pub activity: Activity,
    pub message: String,
    /// When the activity that failed worked again (ns), if it has.
    pub resolved: Option<i64>,
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

    /// Remembers a fault of `activity` for `meshfs status` (the caller
    /// logs it).
    pub fn record_error(&self, activity: Activity, error: &dyn std::fmt::Display) {
        self.reading.lock().expect("health").last_error = Some(Fault {
            at: now_ns(),
            activity,
            message: error.to_string(),
            resolved: None,
        });
    }

    /// Notes that `activity` worked: the last fault, if it was its own,
    /// is resolved.
    pub fn worked(&self, activity: Activity) {
        let mut reading = self.reading.lock().expect("health");
        if let Some(fault) = &mut reading.last_error
            && fault.activity == activity
            && fault.resolved.is_none()
        {
            fault.resolved = Some(now_ns());
        }
    }

    pub fn read(&self) -> Reading {
        self.reading.lock().expect("health").clone()
    }
}
