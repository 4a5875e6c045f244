//! The device ring from the command line: `meshfs devices` lists a user's
//! devices with who is online and which one is this, a device that
//! unmounts turns offline, and `meshfs devices remove NAME` signs a device
//! out so that its mount stops syncing and says why.

use mesh_e2e::{Pair, SYNC, wait_until};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `meshfs devices --json` of `device`, as (name, online, current).
fn ring(device: &mesh_e2e::Device) -> Vec<(String, bool, bool)> {
    let list: Vec<Value> =
        serde_json::from_str(&device.run_meshfs(&["devices", "--json"])).unwrap();
    let mut ring: Vec<_> = list
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["online"].as_bool().unwrap(),
                d["current"].as_bool().unwrap(),
            )
        })
        .collect();
    ring.sort();
    ring
}

#[test]
fn devices_are_listed_turn_offline_when_unmounted_and_can_be_signed_out() {
    let mut mesh = Pair::start();
    wait_until("both devices online", SYNC, || {
        ring(&mesh.a)
            == [
                ("desktop".into(), true, false),
                ("laptop".into(), true, true),
            ]
    });

    mesh.b.unmount();
    wait_until("the desktop to turn offline", SYNC, || {
        ring(&mesh.a)
            == [
                ("desktop".into(), false, false),
                ("laptop".into(), true, true),
            ]
    });
    let human = mesh.a.run_meshfs(&["devices"]);
    assert!(human.contains("(this device)"), "{human}");
    assert!(human.contains("offline, last seen"), "{human}");

    mesh.b.mount_again();
    mesh.a.run_meshfs(&["devices", "remove", "desktop"]);
    assert_eq!(ring(&mesh.a), [("laptop".into(), true, true)]);
    wait_until("the desktop's mount to say it was signed out", SYNC, || {
        mesh.b.status()["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("signed out"))
    });
    let status = mesh.b.status();
    assert_eq!(status["online"], false, "{status:#}");
    // Removing a device that is not there is an error.
    let out = mesh
        .a
        .meshfs()
        .args(["devices", "remove", "desktop"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_device_that_stops_answering_turns_offline_within_its_lease() {
    // A short lease keeps the test quick; the rule is the same at 30 s.
    let mesh = Pair::start_with(&["--presence-lease", "4"]);
    wait_until("both devices online", SYNC, || {
        ring(&mesh.a).iter().all(|(_, online, _)| *online)
    });
    // The desktop's connections stay open, but it sends no heartbeat.
    let frozen = mesh.b.freeze();
    let stopped = Instant::now();
    wait_until("the frozen desktop to turn offline", SYNC, || {
        ring(&mesh.a)
            == [
                ("desktop".into(), false, false),
                ("laptop".into(), true, true),
            ]
    });
    let after = stopped.elapsed();
    assert!(
        after < Duration::from_secs(4 + 3),
        "offline only after {after:?} with a 4 s lease"
    );
    // The laptop keeps renewing: it stays online all along.
    std::thread::sleep(Duration::from_secs(5));
    assert!(ring(&mesh.a).contains(&("laptop".into(), true, true)));
    // Woken up, the desktop is back online by its next heartbeat.
    drop(frozen);
    wait_until("the desktop back online", SYNC, || {
        ring(&mesh.a).iter().all(|(_, online, _)| *online)
    });
}
