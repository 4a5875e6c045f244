//! A full disk under a device's home: the device's home on a small tmpfs
//! made by the test. Applications get `ENOSPC` — for data and metadata
//! alike, never `EIO` — the daemon stays up although its log cannot be
//! written, nothing whose close returned is lost, the outbox drains once
//! the server is up, and the device mounts again without a hand-emptied
//! cache.

use mesh_e2e::{
    Device, EMAIL, Entry, SYNC, Server, SmallDisk, errno_of, pseudo_random_vec, wait_for_entry,
    wait_until,
};
use std::fs;
use std::io::Write;

const MIB: usize = 1 << 20;

/// Writes `content` to `path` as an application saves: create, write,
/// close.
fn save(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(content)?;
    file.sync_all()
}

/// The answer to a call on a full disk must be success or `ENOSPC`.
fn success_or_enospc<T>(what: &str, result: std::io::Result<T>) {
    match errno_of(result) {
        None | Some(libc::ENOSPC) => {}
        Some(errno) => panic!(
            "{what} on a full disk answered {} instead of ENOSPC",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}

#[test]
fn a_full_disk_under_the_home_is_enospc_and_the_mount_survives_drains_and_mounts_again() {
    let mut server = Server::start();
    server.add_user(EMAIL);
    let disk = SmallDisk::new(40);
    let mut laptop = Device::mount_with_home(
        server.url(),
        EMAIL,
        "laptop",
        Some(disk.path().join("home")),
    );
    let desk = Device::mount(&server, EMAIL, "desk");
    fs::create_dir(laptop.path("Docs")).unwrap();
    wait_for_entry(&desk, "Docs", Some(Entry::Dir));

    // With the server away nothing drains, and the disk fills with what
    // the laptop writes.
    server.stop();
    let mut closed = Vec::new();
    let full = (0..100u64).find_map(|i| {
        let content = pseudo_random_vec(i, 0, 2 * MIB);
        let name = format!("Docs/f{i}.bin");
        match save(&laptop.path(&name), &content) {
            Ok(()) => {
                closed.push((name, content));
                None
            }
            Err(e) => Some(e),
        }
    });
    let full = full.expect("the small disk filled up");
    assert_eq!(full.raw_os_error(), Some(libc::ENOSPC), "{full}");
    assert!(!closed.is_empty());
    // Whatever room is left goes too.
    let filler = disk.fill();

    // Every kind of change answers, with success or ENOSPC.
    success_or_enospc(
        "creating a file",
        fs::File::create(laptop.path("Docs/new.txt")),
    );
    success_or_enospc("mkdir", fs::create_dir(laptop.path("Docs/dir")));
    success_or_enospc(
        "rename",
        fs::rename(laptop.path(&closed[0].0), laptop.path("Docs/renamed.bin")),
    );
    let renamed = fs::metadata(laptop.path("Docs/renamed.bin")).is_ok();
    if renamed {
        closed[0].0 = "Docs/renamed.bin".into();
    }
    success_or_enospc(
        "chmod",
        fs::set_permissions(
            laptop.path(&closed[0].0),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        ),
    );
    success_or_enospc(
        "symlink",
        std::os::unix::fs::symlink("f0.bin", laptop.path("Docs/link")),
    );
    success_or_enospc(
        "a write",
        save(&laptop.path("Docs/more.bin"), &vec![1u8; MIB]),
    );
    // Reads of what is here still work, and the daemon is still up
    // although its log is on the full disk.
    for (name, content) in &closed {
        assert_eq!(&fs::read(laptop.path(name)).unwrap(), content, "{name}");
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(laptop.is_mounted(), "the mount survived the full disk");
    fs::read_dir(laptop.path("Docs")).unwrap().count();

    // The server comes back while the disk is still full: the outbox
    // drains, and every file whose close returned reaches the desk.
    server.restart();
    wait_until("the laptop's outbox drains", SYNC * 3, || {
        laptop.status()["pending_changes"] == 0
    });
    for (name, content) in &closed {
        wait_for_entry(&desk, name, Some(Entry::File(content.clone())));
    }

    // With the disk still full, the device unmounts and mounts again,
    // and shows the same.
    laptop.unmount();
    laptop.mount_again();
    for (name, content) in &closed {
        assert_eq!(&fs::read(laptop.path(name)).unwrap(), content, "{name}");
    }
    fs::remove_file(filler).unwrap();
    save(&laptop.path("Docs/after.txt"), b"room again").unwrap();
    wait_for_entry(
        &desk,
        "Docs/after.txt",
        Some(Entry::File(b"room again".to_vec())),
    );
}
