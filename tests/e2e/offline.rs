//! Offline is a state, not an error: with the server gone a mount keeps
//! reading what it has and accepting changes, says it is offline, fails at
//! once for content it does not have, survives unmounts and crashes, and
//! when the server returns every change arrives; two devices that changed
//! one file while apart both end with the winner and one conflicted copy;
//! the cache limit holds while pinned files stay on the device.

use mesh_e2e::{
    Entry, Pair, SYNC, check_pseudo_random, names, snapshot, wait_for, wait_for_entry,
    wait_for_tree, wait_until, write_pseudo_random,
};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// How long a device may take to notice that the server is back: it backs
/// off while the server is away.
const RECONNECT: Duration = Duration::from_secs(60);

fn file(bytes: &[u8]) -> Option<Entry> {
    Some(Entry::File(bytes.to_vec()))
}

/// The value of extended attribute `name` of `path`, as text.
fn xattr(path: &Path, name: &str) -> String {
    let value = meshfs::local::xattr::get(path, name)
        .unwrap_or_else(|e| panic!("getxattr {name} of {}: {e}", path.display()));
    String::from_utf8(value).expect("a text value")
}

/// Reading `path` fails with EIO at once (no hang, no retries).
fn assert_fails_fast(path: &Path) {
    let start = Instant::now();
    let result = fs::read(path);
    let took = start.elapsed();
    let errno = result.as_ref().err().and_then(|e| e.raw_os_error());
    assert_eq!(
        errno,
        Some(libc::EIO),
        "reading {} offline: {result:?}",
        path.display()
    );
    assert!(
        took < Duration::from_secs(2),
        "reading {} offline took {took:?}",
        path.display()
    );
}

fn online(status: &serde_json::Value) -> Option<bool> {
    status["online"].as_bool()
}

fn pending(status: &serde_json::Value) -> u64 {
    status["pending_changes"].as_u64().expect("pending_changes")
}

#[test]
fn offline_the_mount_keeps_working_and_every_change_arrives_when_the_server_returns() {
    let mut mesh = Pair::start();
    mesh.live_folder("Work");
    let a = &mesh.a;
    fs::create_dir(a.path("Work/docs")).unwrap();
    fs::write(a.path("Work/notes.txt"), b"first draft\n").unwrap();
    fs::write(a.path("Work/old.txt"), b"to be removed\n").unwrap();
    fs::write(a.path("Work/docs/plan.txt"), b"the plan\n").unwrap();
    write_pseudo_random(&a.path("Work/far.bin"), 7, 2 * MIB);
    let b = &mesh.b;
    // Read on b, so cached there ...
    wait_for_entry(b, "Work/notes.txt", file(b"first draft\n"));
    wait_for_entry(b, "Work/old.txt", file(b"to be removed\n"));
    wait_for_entry(b, "Work/docs/plan.txt", file(b"the plan\n"));
    // ... but this one only listed.
    wait_for("Work/far.bin listed on b", SYNC, &Some(2 * MIB), || {
        fs::metadata(b.path("Work/far.bin")).ok().map(|m| m.len())
    });

    mesh.server.stop();
    let b = &mesh.b;
    wait_until("device b to say it is offline", SYNC, || {
        online(&b.status()) == Some(false)
    });
    assert!(
        b.log()
            .contains("the server is unreachable; working offline"),
        "b's log says nothing of going offline"
    );
    assert_eq!(
        fs::read(b.path("Work/notes.txt")).unwrap(),
        b"first draft\n",
        "a cached file reads offline"
    );
    assert_fails_fast(&b.path("Work/far.bin"));

    // Every kind of change, offline.
    fs::write(b.path("Work/notes.txt"), b"second draft, written offline\n").unwrap();
    fs::write(b.path("Work/offline.txt"), b"new while offline\n").unwrap();
    fs::set_permissions(
        b.path("Work/offline.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::create_dir(b.path("Work/docs/drafts")).unwrap();
    fs::write(b.path("Work/docs/drafts/d1.txt"), b"d1\n").unwrap();
    fs::rename(
        b.path("Work/docs/plan.txt"),
        b.path("Work/docs/plan-v2.txt"),
    )
    .unwrap();
    fs::remove_file(b.path("Work/old.txt")).unwrap();
    let status = b.status();
    assert!(pending(&status) >= 6, "{status:#}");
    assert!(status["oldest_pending"].is_string(), "{status:#}");
    assert!(status["last_error"]["message"].is_string(), "{status:#}");
    assert_eq!(
        xattr(&b.path("Work/offline.txt"), "user.mesh.state"),
        "pending"
    );

    // Unmount and mount again, still offline: the changes are all there.
    mesh.b.unmount();
    mesh.b.mount_again();
    let b = &mesh.b;
    assert_eq!(
        names(&b.path("Work")),
        ["docs", "far.bin", "notes.txt", "offline.txt"]
    );
    assert_eq!(names(&b.path("Work/docs")), ["drafts", "plan-v2.txt"]);
    assert_eq!(
        fs::read(b.path("Work/notes.txt")).unwrap(),
        b"second draft, written offline\n"
    );
    assert!(pending(&b.status()) >= 6);
    assert_fails_fast(&b.path("Work/far.bin"));

    mesh.server.restart();
    let b = &mesh.b;
    wait_until("device b to push every change", RECONNECT, || {
        let status = b.status();
        online(&status) == Some(true) && pending(&status) == 0
    });
    // The fault of the time offline is shown as over, not as news.
    wait_until(
        "device b's status to call the last error resolved",
        SYNC,
        || b.status()["last_error"]["resolved"].is_string(),
    );
    let said = b.run_meshfs(&["status"]);
    let line = said
        .lines()
        .find(|l| l.starts_with("last error"))
        .unwrap_or_else(|| panic!("no last error in:\n{said}"));
    assert!(line.contains("ago, resolved"), "{said}");
    let expected = snapshot(&b.path("Work")).unwrap();
    assert_eq!(expected.len(), 7, "{:?}", expected.keys());
    wait_for_tree(
        "device a to have every change b made offline",
        SYNC,
        &mesh.a.path("Work"),
        &expected,
    );
    let mode = fs::metadata(mesh.a.path("Work/offline.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    check_pseudo_random(&b.path("Work/far.bin"), 7, 2 * MIB).unwrap();
}

#[test]
fn two_devices_that_edit_one_file_apart_end_with_the_winner_and_one_conflicted_copy() {
    let mut mesh = Pair::start();
    mesh.live_folder("Shared");
    fs::write(mesh.a.path("Shared/doc.txt"), b"as both had it\n").unwrap();
    fs::create_dir(mesh.a.path("Shared/dir")).unwrap();
    fs::write(mesh.a.path("Shared/dir/inside.txt"), b"inside\n").unwrap();
    fs::create_dir(mesh.a.path("Shared/gone")).unwrap();
    fs::write(mesh.a.path("Shared/gone/kept.txt"), b"before\n").unwrap();
    wait_for_entry(&mesh.b, "Shared/doc.txt", file(b"as both had it\n"));
    wait_for_entry(&mesh.b, "Shared/dir/inside.txt", file(b"inside\n"));
    wait_for_entry(&mesh.b, "Shared/gone/kept.txt", file(b"before\n"));

    mesh.server.stop();
    for device in [&mesh.a, &mesh.b] {
        wait_until("both devices to say they are offline", SYNC, || {
            online(&device.status()) == Some(false)
        });
    }
    fs::write(mesh.a.path("Shared/doc.txt"), b"the laptop's words\n").unwrap();
    fs::write(mesh.b.path("Shared/doc.txt"), b"the desktop's words\n").unwrap();
    // A directory renamed two ways: a name-only conflict loses nothing.
    fs::rename(mesh.a.path("Shared/dir"), mesh.a.path("Shared/dir-a")).unwrap();
    fs::rename(mesh.b.path("Shared/dir"), mesh.b.path("Shared/dir-b")).unwrap();
    // A directory removed on one device while a file in it is edited on
    // the other: the edit is not lost.
    fs::remove_dir_all(mesh.a.path("Shared/gone")).unwrap();
    fs::write(mesh.b.path("Shared/gone/kept.txt"), b"edited while apart\n").unwrap();

    mesh.server.restart();
    let (a, b) = (&mesh.a, &mesh.b);
    wait_until("both devices to agree", RECONNECT, || {
        let (sa, sb) = (a.status(), b.status());
        pending(&sa) == 0
            && pending(&sb) == 0
            && names(&a.path("Shared"))
                .iter()
                .any(|n| n.starts_with("doc (conflict from "))
            && snapshot(&a.path("Shared")).ok() == snapshot(&b.path("Shared")).ok()
    });
    let tree = snapshot(&a.path("Shared")).unwrap();
    let listed = names(&a.path("Shared"));
    let copy = listed
        .iter()
        .find(|n| n.starts_with("doc (conflict from "))
        .unwrap_or_else(|| panic!("no conflicted copy in {listed:?}"));
    let dir = listed
        .iter()
        .find(|n| n.starts_with("dir-"))
        .unwrap_or_else(|| panic!("no directory in {listed:?}"));
    assert!(listed.contains(&"doc.txt".to_owned()), "{listed:?}");
    assert_eq!(
        tree[Path::new(dir).join("inside.txt").as_path()],
        Entry::File(b"inside\n".to_vec())
    );
    // Nothing lost: the winner under the name, the loser beside it, named
    // after the device whose words it keeps.
    let Entry::File(winner) = &tree[Path::new("doc.txt")] else {
        panic!("doc.txt is not a file")
    };
    let Entry::File(loser) = &tree[Path::new(copy.as_str())] else {
        panic!("{copy} is not a file")
    };
    let (laptop, desktop) = (
        b"the laptop's words\n".to_vec(),
        b"the desktop's words\n".to_vec(),
    );
    assert!(
        (winner, loser) == (&laptop, &desktop) || (winner, loser) == (&desktop, &laptop),
        "doc.txt holds {:?}, {copy} holds {:?}",
        String::from_utf8_lossy(winner),
        String::from_utf8_lossy(loser)
    );
    let loser_device = if *loser == laptop {
        "laptop"
    } else {
        "desktop"
    };
    assert!(
        copy.starts_with(&format!("doc (conflict from {loser_device} ")),
        "{copy}"
    );
    for device in [a, b] {
        assert_eq!(
            xattr(&device.path("Shared").join(copy), "user.mesh.state"),
            "conflict"
        );
    }
    let edited: Vec<_> = tree
        .iter()
        .filter(|(_, e)| **e == Entry::File(b"edited while apart\n".to_vec()))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(edited.len(), 1, "the edit in a removed directory: {tree:?}");
    // Each conflicted copy was made once, by the device that lost.
    let made: u64 = [a, b]
        .iter()
        .map(|d| d.status()["conflicts_created"].as_u64().unwrap())
        .sum();
    let copies = tree
        .keys()
        .filter(|p| p.to_string_lossy().contains(" (conflict from "))
        .count();
    assert_eq!(made as usize, copies, "{tree:?}");
}

#[test]
fn a_device_away_longer_than_the_tombstone_retention_drops_what_was_deleted_meanwhile() {
    let mut mesh = Pair::start_with(&["--tombstone-retention", "1", "--gc-interval", "1"]);
    mesh.live_folder("Work");
    let a = &mesh.a;
    fs::create_dir(a.path("Work/old")).unwrap();
    fs::write(a.path("Work/old/draft.txt"), b"draft\n").unwrap();
    fs::write(a.path("Work/gone.txt"), b"to be removed\n").unwrap();
    fs::write(a.path("Work/keep.txt"), b"kept\n").unwrap();
    wait_for_entry(&mesh.b, "Work/old/draft.txt", file(b"draft\n"));
    wait_for_entry(&mesh.b, "Work/gone.txt", file(b"to be removed\n"));
    wait_for_entry(&mesh.b, "Work/keep.txt", file(b"kept\n"));
    mesh.b.unmount();

    // While b is away, a removes a file and a folder, and the server
    // compacts their tombstones once the retention has passed.
    fs::remove_file(a.path("Work/gone.txt")).unwrap();
    fs::remove_dir_all(a.path("Work/old")).unwrap();
    fs::write(a.path("Work/new.txt"), b"new\n").unwrap();
    let compacted = || -> usize {
        let log = mesh.server.log();
        log.split("tombstones=")
            .skip(1)
            .filter_map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum()
    };
    wait_until("the server compacted the three tombstones", SYNC, || {
        compacted() >= 3
    });

    // b's cursor is older than them: it reads the whole feed again, and
    // what it was not sent is gone.
    mesh.b.mount_again();
    let b = &mesh.b;
    wait_for_entry(b, "Work/new.txt", file(b"new\n"));
    wait_for_entry(b, "Work/gone.txt", None);
    wait_for_entry(b, "Work/old", None);
    wait_for_entry(b, "Work/keep.txt", file(b"kept\n"));
    assert!(
        b.log().contains("reading the folder's whole feed"),
        "{}",
        b.log()
    );
    assert_eq!(
        snapshot(&a.path("Work")).unwrap(),
        snapshot(&b.path("Work")).unwrap()
    );
}

#[test]
fn changes_closed_before_a_crash_reach_the_server_after_the_next_mount() {
    let mut mesh = Pair::start();
    mesh.live_folder("Crash");
    // Written and closed, then killed at once while online.
    for i in 0..20 {
        fs::write(
            mesh.a.path(format!("Crash/f{i}.txt")),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    mesh.a.kill();
    // Written and closed while the server is away, so nothing can have
    // been pushed, then killed.
    mesh.server.stop();
    mesh.a.mount_again();
    fs::write(mesh.a.path("Crash/f0.txt"), b"changed offline\n").unwrap();
    fs::write(mesh.a.path("Crash/offline.txt"), b"made offline\n").unwrap();
    mesh.a.kill();

    mesh.server.restart();
    mesh.a.mount_again();
    let expected = snapshot(&mesh.a.path("Crash")).unwrap();
    assert_eq!(expected.len(), 21);
    assert_eq!(
        expected[Path::new("f0.txt")],
        Entry::File(b"changed offline\n".to_vec())
    );
    wait_for_tree(
        "every change made before the crashes to reach device b",
        RECONNECT,
        &mesh.b.path("Crash"),
        &expected,
    );
}

#[test]
fn the_cache_limit_holds_and_pinned_files_stay_on_the_device() {
    let mut mesh = Pair::start();
    mesh.live_folder("Media");
    let a = &mesh.a;
    fs::create_dir(a.path("Media/keep")).unwrap();
    let kept = [("keep/k1.bin", 11), ("keep/k2.bin", 12)];
    let others: Vec<(String, u64)> = (0..6).map(|i| (format!("o{i}.bin"), 20 + i)).collect();
    for (name, seed) in kept
        .iter()
        .map(|(n, s)| (n.to_string(), *s))
        .chain(others.clone())
    {
        write_pseudo_random(&a.path(format!("Media/{name}")), seed, 3 * MIB);
    }
    mesh.b.remount_with(&["--cache-size", "8M"]);
    let b = &mesh.b;
    wait_for("every file listed on b", SYNC, &8, || {
        ["Media", "Media/keep"]
            .iter()
            .flat_map(|d| fs::read_dir(b.path(d)).into_iter().flatten())
            .filter_map(Result::ok)
            .filter(|e| e.metadata().is_ok_and(|m| m.len() == 3 * MIB))
            .count()
    });

    let said = b.run_meshfs(&[OsStr::new("pin"), b.path("Media/keep").as_os_str()]);
    assert!(said.contains("2 files"), "{said}");
    assert_eq!(
        xattr(&b.path("Media/keep/k1.bin"), "user.mesh.state"),
        "pinned"
    );
    assert_eq!(xattr(&b.path("Media/keep"), "user.mesh.pinned"), "1");

    // A read workload three times the limit.
    for (name, seed) in &others {
        check_pseudo_random(&b.path(format!("Media/{name}")), *seed, 3 * MIB).unwrap();
        let status = b.status();
        assert!(
            status["cache_used"].as_u64() <= status["cache_limit"].as_u64(),
            "after reading {name}: {status:#}"
        );
    }
    let status = b.status();
    assert_eq!(status["cache_limit"].as_u64(), Some(8 * MIB));
    assert!(
        status["pinned_bytes"].as_u64() >= Some(6 * MIB),
        "{status:#}"
    );
    let on_disk: u64 = b
        .cached_chunks()
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= 8 * MIB + status["pinned_bytes"].as_u64().unwrap());

    // A file added to the pinned folder later comes to this device by itself.
    write_pseudo_random(&mesh.a.path("Media/keep/k3.bin"), 13, 3 * MIB);
    wait_until("k3.bin to be fetched on b", SYNC, || {
        b.status()["pinned_bytes"].as_u64() >= Some(9 * MIB)
    });

    // Offline, after a remount (so nothing comes from the kernel's cache):
    // pinned files read, the evicted first file fails at once.
    mesh.server.stop();
    mesh.b.remount();
    let b = &mesh.b;
    for (name, seed) in [
        ("keep/k1.bin", 11),
        ("keep/k2.bin", 12),
        ("keep/k3.bin", 13),
    ] {
        check_pseudo_random(&b.path(format!("Media/{name}")), seed, 3 * MIB).unwrap();
    }
    assert_fails_fast(&b.path("Media/o0.bin"));

    // Unpinned, the content counts against the limit again.
    b.run_meshfs(&[OsStr::new("unpin"), b.path("Media/keep").as_os_str()]);
    let status = b.status();
    assert_eq!(status["pinned_bytes"].as_u64(), Some(0), "{status:#}");
    assert!(status["cache_used"].as_u64() <= Some(8 * MIB), "{status:#}");
    assert_eq!(xattr(&b.path("Media/keep/k1.bin"), "user.mesh.pinned"), "0");
}
