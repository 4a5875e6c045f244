//! What applications do to a file, through real mounts: SQLite in its
//! default rollback-journal mode beside another file (a hot journal left
//! behind would roll back committed rows on the next device that opens
//! the database) and in each journal mode while the other device reads
//! the database (compared with a reader beside the writer on a local
//! directory), the same pattern without SQLite (pages rewritten in place,
//! fsync after each version, read whole on the other device), the
//! journal's churn of one name as plain system calls,
//! and renames over existing targets back and forth, compared with a
//! local directory. Afterwards both devices show the same tree and nothing
//! is pending.

use mesh_e2e::{Pair, SYNC, errno_of, snapshot, wait_for_tree, wait_until};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Transactions [`fill_database`] commits, of [`ROWS_PER_TRANSACTION`]
/// rows each.
const TRANSACTIONS: i64 = 100;
const ROWS_PER_TRANSACTION: i64 = 100;

/// 10,000 rows in 100 transactions, in SQLite's journal mode `mode`, or in
/// its default mode (`delete`, checked) when `None`.
fn fill_database(path: &Path, mode: Option<&str>) {
    let db = Connection::open(path).expect("opening the database");
    let pragma = match mode {
        Some(mode) => format!("PRAGMA journal_mode = {mode}"),
        None => "PRAGMA journal_mode".to_owned(),
    };
    let set: String = db
        .query_row(&pragma, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{pragma}: {e}"));
    assert_eq!(
        set,
        mode.unwrap_or("delete").to_lowercase(),
        "SQLite's journal mode"
    );
    db.execute("CREATE TABLE t (i INTEGER, s TEXT)", [])
        .unwrap();
    for tx in 0..TRANSACTIONS {
        db.execute_batch("BEGIN").unwrap();
        for i in 0..ROWS_PER_TRANSACTION {
            db.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                rusqlite::params![
                    tx * ROWS_PER_TRANSACTION + i,
                    format!("row {i} of transaction {tx}")
                ],
            )
            .unwrap_or_else(|e| panic!("insert in transaction {tx}: {e}"));
        }
        db.execute_batch("COMMIT")
            .unwrap_or_else(|e| panic!("commit of transaction {tx}: {e}"));
    }
}

fn try_rows_and_integrity(path: &Path) -> rusqlite::Result<(i64, String)> {
    Connection::open(path).and_then(|db| {
        let rows = db.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        let integrity = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok((rows, integrity))
    })
}

fn rows_and_integrity(path: &Path) -> (i64, String) {
    try_rows_and_integrity(path).unwrap_or_else(|e| {
        let dir = path.parent().expect("a file in a folder");
        panic!(
            "reading {}: {e} (beside it: {:?})",
            path.display(),
            mesh_e2e::names(dir)
        )
    })
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
    fill_database(&a.path("Db/x.db"), None);
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

/// What the other device's reader saw while the database was written.
#[derive(Default, Debug)]
struct Reads {
    /// Opened and read: `integrity_check` said ok, whole transactions.
    consistent: u32,
    /// Not yet there, busy, locked or a hot journal it may not roll back.
    turned_away: u32,
    /// Anything else: a corrupt database, an I/O error, torn transactions.
    problems: Vec<String>,
}

/// `PRAGMA integrity_check` and the row count of the database at `path`,
/// opened read-only.
fn read_only_check(path: &Path) -> rusqlite::Result<(String, i64)> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    let rows: i64 = db.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    Ok((integrity, rows))
}

/// What copies of the database at `path` hold — read at once, then read
/// again after dropping the pages the kernel cached —, so that a broken
/// read tells a broken file from stale cached pages from a file that
/// changed while SQLite read it.
fn copy_check(path: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    // A journal that starts with SQLite's magic number is hot (its
    // transaction is under way); a committed one is empty, gone or zeroed.
    const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    let journal = match fs::read(path.with_extension("db-journal")) {
        Ok(bytes) if bytes.starts_with(&MAGIC) => {
            format!("a {}-byte hot journal beside it", bytes.len())
        }
        Ok(bytes) => format!("a {}-byte journal of no transaction beside it", bytes.len()),
        Err(_) => "no journal beside it".to_owned(),
    };
    let mut said = vec![journal];
    for (i, how) in ["read at once", "read again without cached pages"]
        .into_iter()
        .enumerate()
    {
        if i == 1 {
            let file = fs::File::open(path).unwrap();
            // SAFETY: advice on an open descriptor; no memory involved.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
        let copy = dir.path().join(format!("copy{i}.db"));
        let checked = fs::read(path).map_err(|e| e.to_string()).and_then(|bytes| {
            fs::write(&copy, bytes).unwrap();
            read_only_check(&copy).map_err(|e| e.to_string())
        });
        said.push(match checked {
            Ok((integrity, rows)) => format!("a copy {how}: {integrity:?} with {rows} rows"),
            Err(e) => format!("a copy {how}: {e}"),
        });
    }
    said.join(", ")
}

/// Opens the database at `path` read-only (a reader must not roll back a
/// journal that is another device's transaction in progress) and reads
/// it, until `done`.
fn read_repeatedly(path: &Path, done: &AtomicBool) -> Reads {
    let mut reads = Reads::default();
    while !done.load(Ordering::Acquire) {
        match read_only_check(path) {
            Ok((integrity, rows)) if integrity == "ok" && rows % ROWS_PER_TRANSACTION == 0 => {
                reads.consistent += 1
            }
            Ok((integrity, rows)) => reads.problems.push(format!(
                "integrity_check said {integrity:?} with {rows} rows; {}",
                copy_check(path)
            )),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::CannotOpen
                        | ErrorCode::ReadOnly
                ) =>
            {
                reads.turned_away += 1
            }
            // The table is not on this device yet.
            Err(rusqlite::Error::SqliteFailure(_, Some(message)))
                if message.starts_with("no such table") =>
            {
                reads.turned_away += 1
            }
            Err(e) => reads.problems.push(format!("{e}; {}", copy_check(path))),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    reads
}

/// Fills the database at `writer` in journal mode `mode` while another
/// thread reads it at `reader` (the same file, or its copy on another
/// device) until the writer is done, however it ends.
fn write_while_reading(writer: &Path, reader: &Path, mode: &str) -> Reads {
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reads = s.spawn(|| read_repeatedly(reader, &done));
        let stop = Done(&done);
        fill_database(writer, Some(mode));
        drop(stop);
        reads.join().expect("the reader thread")
    })
}

/// SQLite in journal mode `mode`: 10,000 rows in 100 transactions on
/// device a beside a 2 MiB file while device b reads the database again
/// and again; b never sees a corrupt database or half a transaction, and
/// once sync settles both devices hold every row and the same files. The
/// same on a local directory, with the reader beside the writer, is the
/// control.
fn sqlite_in_journal_mode(mode: &str) {
    let local = tempfile::tempdir().unwrap();
    let db = local.path().join("x.db");
    let control = write_while_reading(&db, &db, mode);
    eprintln!("journal mode {mode}: a reader beside the writer on a local directory: {control:?}");
    assert!(control.problems.is_empty(), "the control: {control:?}");

    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Db");
    fs::write(a.path("Db/other.bin"), vec![7u8; 2 << 20]).unwrap();
    let reads = write_while_reading(&a.path("Db/x.db"), &b.path("Db/x.db"), mode);
    eprintln!("journal mode {mode}: device b's reads while a wrote: {reads:?}");
    settle(&mesh, "Db");
    for device in [a, b] {
        // The last pulls may still be arriving (settle waits for the
        // outboxes and equal trees, and a WAL's -shm is written by
        // readers too): wait for the answer rather than take the first.
        let path = device.path("Db/x.db");
        let start = std::time::Instant::now();
        let want = (TRANSACTIONS * ROWS_PER_TRANSACTION, "ok".to_owned());
        while start.elapsed() < SYNC {
            match try_rows_and_integrity(&path) {
                Ok(seen) if seen == want => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        }
        assert_eq!(
            rows_and_integrity(&path),
            want,
            "the database on device {} in journal mode {mode}",
            device.name()
        );
    }
    settle(&mesh, "Db");
    assert!(
        reads.problems.is_empty(),
        "device b read a broken database while a wrote in journal mode {mode} \
         (all rows are there once sync settled): {:?}",
        reads.problems
    );
}

/// Waits until neither device has anything pending and both show the same
/// tree under `folder`.
fn settle(mesh: &Pair, folder: &str) {
    nothing_pending(mesh);
    let (a, b) = (mesh.a.path(folder), mesh.b.path(folder));
    let start = std::time::Instant::now();
    loop {
        // A listing can race with a change still being applied (a file
        // listed, then removed before it is read): that is not settled yet.
        let difference = match (snapshot(&a), snapshot(&b)) {
            (Ok(seen_a), Ok(seen_b)) if seen_a == seen_b => return,
            (Ok(seen_a), Ok(seen_b)) => mesh_e2e::tree_diff(&seen_a, &seen_b),
            (Err(e), _) => format!("listing device a's {folder}: {e}"),
            (_, Err(e)) => format!("listing device b's {folder}: {e}"),
        };
        assert!(
            start.elapsed() < SYNC,
            "both devices to show the same {folder}, after {SYNC:?}: device a as expected, b: {difference}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn sqlite_in_delete_journal_mode_keeps_every_row_while_the_other_device_reads() {
    sqlite_in_journal_mode("DELETE");
}

#[test]
fn sqlite_in_truncate_journal_mode_keeps_every_row_while_the_other_device_reads() {
    sqlite_in_journal_mode("TRUNCATE");
}

#[test]
fn sqlite_in_persist_journal_mode_keeps_every_row_while_the_other_device_reads() {
    sqlite_in_journal_mode("PERSIST");
}

#[test]
fn sqlite_in_wal_journal_mode_keeps_every_row_while_the_other_device_reads() {
    sqlite_in_journal_mode("WAL");
}

/// Page size and versions of [`a_file_rewritten_in_place_reads_as_whole_versions_on_the_other_device`].
const PAGE: usize = 4096;
const VERSIONS: u32 = 40;

/// Version `v` of a file rewritten in place as a database is: page 0 says
/// `v`; each page holds the version that last wrote it and its index; the
/// file grows by a page every version and every version rewrites page 0
/// and every third page after its own number.
fn version_content(v: u32) -> Vec<u8> {
    let pages = 8 + v as usize;
    let mut content = vec![0; pages * PAGE];
    for (i, page) in content.chunks_mut(PAGE).enumerate() {
        // The last version up to `v` that wrote page i.
        let wrote = (1..=v)
            .rev()
            .find(|&w| i == 0 || i == 7 + w as usize || (i + w as usize).is_multiple_of(3))
            .unwrap_or(0);
        page.fill(wrote as u8);
        page[..4].copy_from_slice(&wrote.to_le_bytes());
        page[4..8].copy_from_slice(&(i as u32).to_le_bytes());
    }
    content
}

/// What a read of the whole file saw, if it is not one whole version:
/// the version page 0 claims and the pages that differ from it, with the
/// version each of those holds.
fn torn(seen: &[u8]) -> Option<String> {
    if seen.is_empty() {
        // Not written yet, or not on this device yet.
        return None;
    }
    let claimed = u32::from_le_bytes(seen.get(..4)?.try_into().unwrap());
    let want = version_content(claimed);
    if seen == want {
        return None;
    }
    let odd: Vec<String> = seen
        .chunks(PAGE)
        .zip(want.chunks(PAGE))
        .enumerate()
        .filter(|(_, (s, w))| s != w)
        .take(8)
        .map(|(i, (s, _))| format!("page {i} holds version {}", s[0]))
        .collect();
    Some(format!(
        "{} bytes, page 0 says version {claimed} ({} bytes): {}",
        seen.len(),
        want.len(),
        odd.join(", ")
    ))
}

/// Writes [`VERSIONS`] versions of the file at `writer` in place (only the
/// pages that change, then `fsync`, one every 150 ms) while another thread
/// reads the whole file at `reader` (the same file, or its copy on another
/// device) again and again; returns every read that was not one whole
/// version.
fn rewrite_while_reading(writer: &Path, reader: &Path) -> Vec<String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(writer)
        .unwrap();
    file.write_all_at(&version_content(0), 0).unwrap();
    file.sync_all().unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reads = s.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(Ordering::Acquire) {
                if let Ok(bytes) = fs::read(reader)
                    && let Some(torn) = torn(&bytes)
                {
                    seen.push(torn);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            seen
        });
        for v in 1..=VERSIONS {
            let (old, new) = (version_content(v - 1), version_content(v));
            for (i, page) in new.chunks(PAGE).enumerate() {
                if old.get(i * PAGE..(i + 1) * PAGE) != Some(page) {
                    file.write_all_at(page, (i * PAGE) as u64).unwrap();
                }
            }
            file.sync_all().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        done.store(true, Ordering::Release);
        reads.join().expect("the reader thread")
    })
}

/// A database's pattern without the database: pages rewritten in place
/// under one open descriptor, `fsync` after each version. The other
/// device may lag, but what it reads is always a version the writer
/// synced, never a mix.
#[test]
fn a_file_rewritten_in_place_reads_as_whole_versions_on_the_other_device() {
    // The check itself: every whole version passes, a mix is caught. (A
    // reader beside the writer on a local disk is no control here: it may
    // read between two pwrites of one version, as POSIX allows; a device
    // must only ever receive what the writer synced.)
    for v in 0..=VERSIONS {
        assert_eq!(torn(&version_content(v)), None, "version {v}");
    }
    let mut mix = version_content(VERSIONS - 1);
    mix[..PAGE].copy_from_slice(&version_content(VERSIONS)[..PAGE]);
    assert!(torn(&mix).is_some(), "a mix of two versions is caught");

    let mesh = Pair::start();
    let (a, b) = (&mesh.a, &mesh.b);
    mesh.live_folder("Pages");
    let seen = rewrite_while_reading(&a.path("Pages/x.db"), &b.path("Pages/x.db"));
    settle(&mesh, "Pages");
    assert_eq!(
        fs::read(b.path("Pages/x.db")).unwrap(),
        version_content(VERSIONS)
    );
    assert!(
        seen.is_empty(),
        "device b read {} mixes of versions while a wrote one every 150 ms, the first ones: {:#?}",
        seen.len(),
        &seen[..seen.len().min(10)]
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
