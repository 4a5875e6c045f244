//! Crashes: `kill -9` of meshfs at random points while files are written,
//! closed and fsynced, and of meshd while a big upload is under way.
//! Afterwards every file whose close returned has its content — and its
//! size — on the crashed device after it mounts again and, once synced, on
//! the other device; and the server has no entry whose chunks it lacks
//! (the other device can read every file).

use mesh_e2e::{Device, Entry, Pair, Rng, SYNC, pseudo_random_vec, wait_for_entry, wait_until};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Files whose close returned, by path in the mount, with their content.
type Closed = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// Writes, overwrites and fsyncs files in `dir` of `device`'s mount until
/// a call fails (the daemon was killed) or `stop` is set; records each
/// file once its close returned. A file being replaced is forgotten first:
/// once it is opened with O_TRUNC its old content may be gone.
fn write_until_killed(
    mnt: std::path::PathBuf,
    dir: &str,
    seed: u64,
    closed: Closed,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed);
    for round in 0u64.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let name = format!("{dir}/f{}.bin", rng.below(12));
        let len = match rng.below(3) {
            0 => rng.below(4 * KIB as u64) as usize,
            1 => rng.below(300 * KIB as u64) as usize,
            _ => MIB + rng.below(5 * MIB as u64) as usize,
        };
        let content = pseudo_random_vec(seed * 1_000_000 + round, 0, len);
        closed.lock().unwrap().remove(&name);
        let written = (|| -> std::io::Result<()> {
            let mut file = fs::File::create(mnt.join(&name))?;
            // In pieces, as applications write.
            for piece in content.chunks(64 * KIB) {
                file.write_all(piece)?;
            }
            if rng.below(3) == 0 {
                file.sync_all()?;
            }
            Ok(())
        })();
        match written {
            Ok(()) => {
                closed.lock().unwrap().insert(name, content);
            }
            Err(_) => return,
        }
    }
}

/// Checks that every closed file reads back whole, with its size, on
/// `device`.
fn check_closed(device: &Device, closed: &BTreeMap<String, Vec<u8>>, when: &str) {
    for (name, content) in closed {
        let path = device.path(name);
        let size = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{when}: {name} on {}: {e}", device.name()))
            .len();
        assert_eq!(
            size,
            content.len() as u64,
            "{when}: the size of {name} on {}",
            device.name()
        );
        let read = fs::read(&path).unwrap();
        assert!(
            read == *content,
            "{when}: the content of {name} on {} differs ({} bytes read)",
            device.name(),
            read.len()
        );
    }
}

#[test]
fn kill_9_of_meshfs_while_files_are_written_loses_no_closed_file() {
    let mut mesh = Pair::start();
    mesh.live_folder("Crash");
    let (mut rng, _) = Rng::from_env("crash");
    let closed: Closed = Arc::default();
    for round in 0..6 {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (mnt, closed, stop) =
                (mesh.a.mountpoint().to_owned(), closed.clone(), stop.clone());
            let seed = rng.below(1 << 30);
            std::thread::spawn(move || write_until_killed(mnt, "Crash", seed, closed, stop))
        };
        std::thread::sleep(Duration::from_millis(200 + rng.below(1500)));
        mesh.a.kill();
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        mesh.a.mount_again();
        let snapshot = closed.lock().unwrap().clone();
        check_closed(
            &mesh.a,
            &snapshot,
            &format!("after crash {round}, remounted"),
        );
    }
    let snapshot = closed.lock().unwrap().clone();
    assert!(!snapshot.is_empty(), "some file was closed before a crash");
    wait_until("device a's outbox drains", SYNC * 3, || {
        mesh.a.status()["pending_changes"] == 0
    });
    for (name, content) in &snapshot {
        wait_for_entry(&mesh.b, name, Some(Entry::File(content.clone())));
    }
    check_closed(&mesh.b, &snapshot, "on the other device");
}

#[test]
fn kill_9_of_meshd_during_a_big_upload_loses_nothing() {
    let mut mesh = Pair::start();
    mesh.live_folder("Big");
    let content = pseudo_random_vec(64, 0, 64 * MIB);
    fs::write(mesh.a.path("Big/video.bin"), &content).unwrap();
    // Killed while the chunks go up.
    std::thread::sleep(Duration::from_millis(300));
    mesh.server.crash();
    fs::write(
        mesh.a.path("Big/while-down.txt"),
        b"written while the server was down",
    )
    .unwrap();
    mesh.server.restart();
    wait_until("device a's outbox drains", SYNC * 3, || {
        mesh.a.status()["pending_changes"] == 0
    });
    wait_for_entry(
        &mesh.b,
        "Big/while-down.txt",
        Some(Entry::File(b"written while the server was down".to_vec())),
    );
    wait_until("the big file reads whole on device b", SYNC * 3, || {
        fs::read(mesh.b.path("Big/video.bin")).is_ok_and(|read| read == content)
    });
}
