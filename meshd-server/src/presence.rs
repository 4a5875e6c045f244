//! Device presence, by lease: a device is online from its first heartbeat
//! (`POST /v1/presence`, opening a change stream, or a WebSocket pong)
//! until its lease runs out without another, until it signs off
//! (`DELETE /v1/presence`), or until its last change stream closes. Going
//! offline also withdraws everything the device published to awareness
//! documents. Presence changes and "last seen" are written by one task in
//! the order they happen, so an online event can never land after the
//! offline event that followed it.

use mesh_protocol::api::DeviceId;
use mesh_protocol::live::PresenceLease;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

use crate::auth::Caller;
use crate::awareness::AwarenessDocs;
use crate::db::Db;
use crate::notify::ChangeNotifier;
use crate::store::{accounts, changes};

/// How often "last seen" is written for a device that keeps making requests.
const SEEN_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct DeviceState {
    streams: usize,
    /// When the device goes offline unless it renews; `None` while offline.
    lease_until: Option<Instant>,
    persisted: Option<Instant>,
}

#[derive(Clone)]
pub struct Presence {
    devices: Arc<Mutex<HashMap<DeviceId, (Caller, DeviceState)>>>,
    writes: mpsc::UnboundedSender<(Caller, Option<bool>)>,
    awareness: AwarenessDocs,
    lease: Duration,
}

/// Held by an open event stream; dropping the last one takes the device
/// offline.
pub struct StreamGuard {
    presence: Presence,
    caller: Caller,
}

impl Presence {
    /// Starts the task that persists presence and the one that ends
    /// lapsed leases; both stop when `shutdown` turns true.
    pub fn start(
        db: Db,
        notifier: Arc<dyn ChangeNotifier>,
        awareness: AwarenessDocs,
        lease: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Presence {
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
        let presence = Presence {
            devices: Arc::default(),
            writes: tx,
            awareness,
            lease,
        };
        let reaper = presence.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval((lease / 10).max(Duration::from_millis(100)));
            loop {
                tokio::select! {
                    _ = ticks.tick() => reaper.end_lapsed(),
                    _ = shutdown.changed() => return,
                }
            }
        });
        presence
    }

    fn send(&self, caller: Caller, online: Option<bool>) {
        let _ = self.writes.send((caller, online));
    }

    /// Notes a request by `caller`, writing "last seen" now and then.
    pub fn touch(&self, caller: Caller) {
        let mut devices = self.devices.lock().expect("presence");
        let (_, state) = devices
            .entry(caller.device)
            .or_insert((caller, DeviceState::default()));
        if state.persisted.is_none_or(|t| t.elapsed() >= SEEN_EVERY) {
            state.persisted = Some(Instant::now());
            self.send(caller, None);
        }
    }

    /// A heartbeat: `caller` is online for another lease.
    pub fn renew(&self, caller: Caller) -> PresenceLease {
        let mut devices = self.devices.lock().expect("presence");
        let (_, state) = devices
            .entry(caller.device)
            .or_insert((caller, DeviceState::default()));
        if state.lease_until.is_none() {
            state.persisted = Some(Instant::now());
            self.send(caller, Some(true));
        }
        state.lease_until = Some(Instant::now() + self.lease);
        PresenceLease {
            lease_ms: self.lease.as_millis() as u64,
            renew_ms: (self.lease / 2).as_millis() as u64,
        }
    }

    /// `caller` goes offline now (it signed off, or its last stream closed).
    pub fn end(&self, caller: Caller) {
        let mut devices = self.devices.lock().expect("presence");
        if let Some((_, state)) = devices.get_mut(&caller.device) {
            self.go_offline(caller, state);
        }
    }

    fn go_offline(&self, caller: Caller, state: &mut DeviceState) {
        if state.lease_until.take().is_some() {
            state.persisted = Some(Instant::now());
            self.send(caller, Some(false));
            self.awareness.forget_device(caller.device);
        }
    }

    /// Takes every device whose lease ran out offline.
    fn end_lapsed(&self) {
        let now = Instant::now();
        let mut devices = self.devices.lock().expect("presence");
        for (caller, state) in devices.values_mut() {
            if state.lease_until.is_some_and(|until| until <= now) {
                tracing::debug!(device = %caller.device, "presence lease lapsed");
                self.go_offline(*caller, state);
            }
        }
    }

    /// A change stream of `caller` opened; it counts as a heartbeat.
    pub fn connect(&self, caller: Caller) -> StreamGuard {
        self.renew(caller);
        let mut devices = self.devices.lock().expect("presence");
        if let Some((_, state)) = devices.get_mut(&caller.device) {
            state.streams += 1;
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
            .is_some_and(|(_, s)| s.lease_until.is_some())
    }
}

impl StreamGuard {
    /// The stream's client answered a ping: renew its lease.
    pub fn renew(&self) {
        self.presence.renew(self.caller);
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut devices = self.presence.devices.lock().expect("presence");
        if let Some((_, state)) = devices.get_mut(&self.caller.device) {
            state.streams -= 1;
            if state.streams == 0 {
                self.presence.go_offline(self.caller, state);
            }
        }
    }
}
