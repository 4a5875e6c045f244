//! Device presence: a device is online while it holds at least one event
//! stream. Changes of presence and "last seen" are written by one task in
//! the order they happen, so an online event can never land after the
//! offline event that followed it.

use mesh_protocol::api::DeviceId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::db::Db;
use crate::notify::ChangeNotifier;
use crate::store::{accounts, changes};

/// How often "last seen" is written for a device that keeps making requests.
const SEEN_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct DeviceState {
    streams: usize,
    persisted: Option<Instant>,
}

#[derive(Clone)]
pub struct Presence {
    devices: Arc<Mutex<HashMap<DeviceId, DeviceState>>>,
    writes: mpsc::UnboundedSender<(Caller, Option<bool>)>,
}

/// Held by an open event stream; dropping it may take the device offline.
pub struct StreamGuard {
    presence: Presence,
    caller: Caller,
}

impl Presence {
    /// Starts the task that persists presence.
    pub fn start(db: Db, notifier: Arc<dyn ChangeNotifier>) -> Presence {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Caller, Option<bool>)>();
        tokio::spawn(async move {
            while let Some((caller, online)) = rx.recv().await {
                let result = db
                    .write(move |tx| {
                        accounts::seen(tx, caller, online)?;
                        changes::head(tx).map_err(anyhow::Error::from)
                    })
                    .await;
                match result {
                    Ok(head) => notifier.publish(head),
                    Err(e) => tracing::warn!(error = %e, "recording presence failed"),
                }
            }
        });
        Presence {
            devices: Arc::default(),
            writes: tx,
        }
    }

    fn send(&self, caller: Caller, online: Option<bool>) {
        let _ = self.writes.send((caller, online));
    }

    /// Notes a request by `caller`, writing "last seen" now and then.
    pub fn touch(&self, caller: Caller) {
        let mut devices = self.devices.lock().expect("presence");
        let state = devices.entry(caller.device).or_default();
        if state.persisted.is_none_or(|t| t.elapsed() >= SEEN_EVERY) {
            state.persisted = Some(Instant::now());
            self.send(caller, None);
        }
    }

    /// An event stream of `caller` opened.
    pub fn connect(&self, caller: Caller) -> StreamGuard {
        let mut devices = self.devices.lock().expect("presence");
        let state = devices.entry(caller.device).or_default();
        state.streams += 1;
        if state.streams == 1 {
            state.persisted = Some(Instant::now());
            self.send(caller, Some(true));
        }
        StreamGuard {
            presence: self.clone(),
            caller,
        }
    }

    pub fn is_online(&self, device: DeviceId) -> bool {
        self.devices
            .lock()
            .expect("presence")
            .get(&device)
            .is_some_and(|s| s.streams > 0)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut devices = self.presence.devices.lock().expect("presence");
        if let Some(state) = devices.get_mut(&self.caller.device) {
            state.streams -= 1;
            if state.streams == 0 {
                state.persisted = Some(Instant::now());
                self.presence.send(self.caller, Some(false));
            }
        }
    }
}
