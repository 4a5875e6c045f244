//! Security end to end (#15), what stays on the machines: everything
//! `meshd` and `meshfs` keep on disk is private to their user whatever the
//! umask they run under (directories 0700, files 0600, the database's
//! `-wal`/`-shm` files and chunks written through a temporary file
//! included).

use mesh_e2e::{Entry, Pair, wait_for_entry};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Gives this test process, and so every `meshd` and `meshfs` it starts,
/// the umask most systems give their users, under which files are created
/// readable by all unless a program says otherwise.
fn usual_umask() {
    // SAFETY: umask has no preconditions; every test of this file wants 022.
    unsafe { libc::umask(0o022) };
}

/// Everything under `root` (itself included) that is not private: a
/// directory not 0700, a file or socket not 0600, anything else at all.
fn not_private(root: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(path) = todo.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Removed meanwhile (a temporary file of a running program).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        let wanted = if kind.is_dir() {
            0o700
        } else if kind.is_file() || kind.is_socket() {
            0o600
        } else {
            found.push((path, format!("{kind:?}")));
            continue;
        };
        if mode != wanted {
            found.push((path.clone(), format!("{mode:o}, not {wanted:o}")));
        }
        if kind.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
        }
    }
    found
}

#[test]
fn what_meshd_and_meshfs_keep_on_disk_is_private_under_umask_022() {
    usual_umask();
    // The umask is in force: a file this test makes is readable by all.
    let probe = tempfile::tempdir().unwrap();
    std::fs::write(probe.path().join("probe"), b"x").unwrap();
    let probe_mode = std::fs::metadata(probe.path().join("probe"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(probe_mode & 0o777, 0o644);

    let mesh = Pair::start();
    mesh.live_folder("Docs");
    // Content on both devices: staged and pushed by a, fetched into b's
    // chunk cache, kept as chunks by meshd.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(mesh.a.path("Docs/report.bin"), &content).unwrap();
    wait_for_entry(&mesh.b, "Docs/report.bin", Some(Entry::File(content)));
    // An invitation: meshd writes it to its outbox (no SMTP server).
    let folder = mesh.a.path("Docs");
    let said = mesh.a.run_meshfs(&[
        "share",
        folder.to_str().unwrap(),
        "bob@example.org",
        "--role",
        "reader",
    ]);
    assert!(said.contains("invited"), "{said}");
    for dir in ["chunks", "outbox"] {
        assert!(
            mesh.server.data().join(dir).is_dir(),
            "meshd made no {dir} directory"
        );
    }
    let found: Vec<_> = [mesh.server.data(), mesh.a.home(), mesh.b.home()]
        .into_iter()
        .flat_map(not_private)
        .collect();
    assert!(
        found.is_empty(),
        "meshd's data directory or a device's home holds what other users can read: {found:#?}"
    );
}
