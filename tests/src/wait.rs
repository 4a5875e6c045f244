//! Waiting for changes to travel between devices: polling with a deadline,
//! never a fixed sleep.

use std::time::{Duration, Instant};

use crate::device::Device;
use crate::tree::{Entry, entry};

/// How long a change may take to reach another device before a test gives
/// up. Generous on purpose: this is a deadline, not a speed requirement.
pub const SYNC: Duration = Duration::from_secs(20);

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
