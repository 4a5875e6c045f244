//! Security end to end (#15), what stays on the machines: everything
//! `meshd` and `meshfs` keep on disk is private to their user whatever the
//! umask they run under (directories 0700, files 0600, the database's
//! `-wal`/`-shm` files and chunks written through a temporary file
//! included), and `meshfs logout` signs the device out on the server too,
//! so it is no longer listed among the account's devices.

use mesh_e2e::{Device, EMAIL, Entry, Pair, Server, wait_for_entry};
use serde_json::Value;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

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

/// `meshfs devices --json` of `device`: the names of the account's devices.
fn device_names(device: &Device) -> Vec<String> {
    let list: Vec<Value> =
        serde_json::from_str(&device.run_meshfs(&["devices", "--json"])).unwrap();
    let mut names: Vec<String> = list
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn logout_signs_the_device_out_on_the_server_as_well() {
    let mut mesh = Pair::start();
    assert_eq!(device_names(&mesh.a), ["desktop", "laptop"]);

    // While mounted, logging out is refused: the mount would lose what it
    // has not pushed yet.
    let refused = mesh.b.meshfs().arg("logout").output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("unmount"), "{said}");
    assert_eq!(device_names(&mesh.a), ["desktop", "laptop"]);

    mesh.b.unmount();
    let out = mesh.b.run_meshfs(&["logout"]);
    assert!(out.contains("signed out"), "{out}");
    assert_eq!(device_names(&mesh.a), ["laptop"]);
    assert!(!mesh.b.home().join("account.json").exists());
    assert!(!mesh.b.home().join("token").exists());

    // The account's audit log says so, newest first, as JSON and in words.
    let log: Vec<Value> = serde_json::from_str(&mesh.a.run_meshfs(&["audit", "--json"])).unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("device_revoked", "desktop"),
            ("device_enrolled", "desktop"),
            ("device_enrolled", "laptop"),
        ]
    );
    let human = mesh.a.run_meshfs(&["audit", "--limit", "1"]);
    assert!(
        human.contains(&format!("device \"desktop\" signed out by {EMAIL}"))
            && human.contains("meshfs audit --before"),
        "{human}"
    );
}

#[test]
fn logout_without_the_server_forgets_the_device_here_and_says_it_stays_listed() {
    let mut server = Server::start();
    server.add_user(EMAIL);
    let mut device = Device::mount(&server, EMAIL, "laptop");
    device.unmount();
    server.stop();
    let out = device
        .meshfs()
        .arg("logout")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("stays listed"), "{said}");
    assert!(said.contains("meshfs devices remove"), "{said}");
    assert!(!device.home().join("account.json").exists());
    assert!(!device.home().join("token").exists());
    // Signed out here: a second logout says so.
    let again = device.meshfs().arg("logout").output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not signed in"));
}
