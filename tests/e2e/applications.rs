//! What applications do to a file, through real mounts: SQLite in its
//! default rollback-journal mode beside another file (a hot journal left
//! behind would roll back committed rows on the next device that opens
//! the database), the journal's churn of one name as plain system calls,
//! and renames over existing targets back and forth, compared with a
//! local directory. Afterwards both devices show the same tree and nothing
//! is pending.

use mesh_e2e::{Pair, SYNC, errno_of, snapshot, wait_for_tree, wait_until};
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// 10,000 rows in 100 transactions, in SQLite's default journal mode.
fn fill_database(path: &Path) {
    let db = rusqlite::Connection::open(path).expect("opening the database");
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "SQLite's default rollback journal");
    db.execute("CREATE TABLE t (i INTEGER, s TEXT)", [])
        .unwrap();
    for tx in 0..100 {
        db.execute_batch("BEGIN").unwrap();
        for i in 0..100 {
            db.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                rusqlite::params![tx * 100 + i, format!("row {i} of transaction {tx}")],
            )
            .unwrap_or_else(|e| panic!("insert in transaction {tx}: {e}"));
        }
        db.execute_batch("COMMIT")
            .unwrap_or_else(|e| panic!("commit of transaction {tx}: {e}"));
    }
}

fn rows_and_integrity(path: &Path) -> (i64, String) {
    let db = rusqlite::Connection::open(path).expect("opening the database");
    let rows = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    let integrity = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (rows, integrity)
}

fn nothing_pending(mesh: &Pair) {
    for device in [&mesh.a, &mesh.b] {
        wait_until(
            &format!("{} has nothing pending", device.name()),
            SYNC,
            || device.status()["pending_changes"] == 0,
        );
    }
}

#[test]
fn sqlite_in_its_default_journal_mode_keeps_every_committed_row_on_both_devices() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Db");
    fs::write(a.path("Db/other.bin"), vec![7u8; 2 << 20]).unwrap();
    fill_database(&a.path("Db/x.db"));
    assert_eq!(
        rows_and_integrity(&a.path("Db/x.db")),
        (10_000, "ok".into())
    );
    let expected = snapshot(&a.path("Db")).unwrap();
    assert!(
        !expected
            .keys()
            .any(|p| p.to_string_lossy().contains("journal")),
        "no journal is left behind: {:?}",
        expected.keys().collect::<Vec<_>>()
    );
    wait_for_tree(
        "device b to show the database",
        SYNC,
        &b.path("Db"),
        &expected,
    );
    nothing_pending(&mesh);
    // The other device opens it: no hot journal, nothing rolled back.
    assert_eq!(
        rows_and_integrity(&b.path("Db/x.db")),
        (10_000, "ok".into())
    );
    assert_eq!(snapshot(&a.path("Db")).unwrap(), expected);
    assert!(
        !a.log().contains("concurrent change won"),
        "a single writer never conflicts with itself"
    );
}

#[test]
fn a_journal_created_written_synced_and_unlinked_300_times_leaves_the_same_tree_everywhere() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Churn");
    fs::write(a.path("Churn/big.bin"), vec![1u8; 2 << 20]).unwrap();
    let db = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(a.path("Churn/x.db"))
        .unwrap();
    let dir = fs::File::open(a.path("Churn")).unwrap();
    let journal = a.path("Churn/x.db-journal");
    for round in 0..300u64 {
        let j = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&journal)
            .unwrap_or_else(|e| panic!("round {round}: opening the journal: {e}"));
        j.write_all_at(&[round as u8; 4096], 0).unwrap();
        j.sync_data().unwrap();
        // SAFETY: fsync on a descriptor this test owns.
        assert_eq!(unsafe { libc::fsync(dir.as_raw_fd()) }, 0);
        j.write_all_at(&[0xd9; 512], 0).unwrap();
        j.sync_data().unwrap();
        db.write_all_at(&[round as u8; 1024], 4096 * (round % 8))
            .unwrap_or_else(|e| panic!("round {round}: writing the open database: {e}"));
        db.sync_data().unwrap();
        drop(j);
        fs::remove_file(&journal)
            .unwrap_or_else(|e| panic!("round {round}: unlinking the journal: {e}"));
    }
    drop(db);
    let expected = snapshot(&a.path("Churn")).unwrap();
    assert_eq!(
        expected
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        ["big.bin", "x.db"]
    );
    wait_for_tree(
        "device b to show the same",
        SYNC,
        &b.path("Churn"),
        &expected,
    );
    nothing_pending(&mesh);
    assert_eq!(snapshot(&a.path("Churn")).unwrap(), expected);
}

/// Makes `path` a file, a directory or a symlink.
fn make(path: &Path, kind: usize) {
    match kind {
        0 => fs::write(path, b"file").unwrap(),
        1 => fs::create_dir(path).unwrap(),
        _ => std::os::unix::fs::symlink("target", path).unwrap(),
    }
}

fn clear(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir(path).unwrap(),
        Ok(_) => fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// Renames between two directories, each over an existing target of some
/// kind and back; returns every answer and listing in order.
fn rename_round_trips(root: &Path) -> Vec<String> {
    let (p, q) = (root.join("p"), root.join("q"));
    fs::create_dir_all(&p).unwrap();
    fs::create_dir_all(&q).unwrap();
    let mut seen = Vec::new();
    for i in 0..360usize {
        let name = format!("n{}", i % 5);
        let (a, b) = (p.join(&name), q.join(&name));
        clear(&a);
        clear(&b);
        make(&a, i % 3);
        make(&b, (i / 3) % 3);
        for (from, to) in [(&a, &b), (&b, &a)] {
            seen.push(format!("{i}: {:?}", errno_of(fs::rename(from, to))));
        }
        let mut listing = mesh_e2e::names(&p);
        listing.extend(mesh_e2e::names(&q).into_iter().map(|n| format!("q/{n}")));
        seen.push(format!("{i}: {listing:?}"));
    }
    seen
}

#[test]
fn renames_over_existing_targets_back_and_forth_answer_as_a_local_directory_does() {
    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Ren");
    let local = tempfile::tempdir().unwrap();
    let expected = rename_round_trips(local.path());
    let seen = rename_round_trips(&a.path("Ren"));
    if let Some(i) = (0..expected.len()).find(|&i| expected.get(i) != seen.get(i)) {
        panic!(
            "step {i}: the mount says {:?}, a local directory {:?}",
            seen.get(i),
            expected.get(i)
        );
    }
    let tree = snapshot(&a.path("Ren")).unwrap();
    assert_eq!(tree, snapshot(local.path()).unwrap());
    wait_for_tree("device b to show the same", SYNC, &b.path("Ren"), &tree);
    nothing_pending(&mesh);
}
