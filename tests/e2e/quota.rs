//! A storage quota through a mount: a copy beyond it ends with the file
//! on the device and pending (the log and `meshfs status` say why), `df`
//! of the mount shows the quota as the size and what is left as free, and
//! once the quota is raised the change goes through; meanwhile what she
//! writes into someone else's folder counts against theirs, and goes.

use mesh_e2e::{Device, Entry, SYNC, Server, df, wait_for_entry, wait_until};
use std::fs;

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";
const QUOTA: u64 = 256 * 1024;

/// `n` bytes that differ from those of another `seed`.
fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

#[test]
fn a_copy_beyond_the_quota_stays_pending_and_df_shows_the_quota() {
    let server = Server::start_with(&["--default-quota", "256K"]);
    server.add_user(ANN);
    let ann = Device::mount(&server, ANN, "laptop");
    fs::create_dir(ann.path("Files")).unwrap();
    fs::write(ann.path("Files/small.bin"), bytes(1, 100_000)).unwrap();
    let block = 4096;
    wait_until("df to show the quota and what is left", SYNC, || {
        df(ann.mountpoint()) == (QUOTA, (QUOTA - 100_000) / block * block)
    });

    // A copy that does not fit: the copy itself succeeds on the device.
    let source = ann.home().join("big.bin");
    let big = bytes(2, 400_000);
    fs::write(&source, &big).unwrap();
    fs::copy(&source, ann.path("Files/big.bin")).expect("copying into the mount");
    wait_until(
        "the mount to say the account is over its quota",
        SYNC,
        || ann.status()["over_quota"] == true,
    );
    let status = ann.status();
    assert_eq!(status["pending_changes"], 1, "{status:#}");
    assert_eq!(status["storage_quota"], QUOTA, "{status:#}");
    let said = ann.run_meshfs(&["status"]);
    assert!(said.contains("over its storage quota"), "{said}");
    let log = ann.log();
    assert_eq!(
        log.matches("the account is over its storage quota").count(),
        1,
        "said once in the log:\n{log}"
    );
    assert!(server.log().contains("507"), "the server refused with 507");
    assert_eq!(fs::read(ann.path("Files/big.bin")).unwrap(), big);
    assert_eq!(df(ann.mountpoint()).0, QUOTA);

    // Her full quota holds up only her own folders: what she writes into
    // Bob's goes to his storage, and through.
    server.add_user(BOB);
    let bob = Device::mount(&server, BOB, "desktop");
    fs::create_dir(bob.path("Team")).unwrap();
    bob.run_meshfs(&[
        "share",
        bob.path("Team").to_str().unwrap(),
        ANN,
        "--role",
        "editor",
    ]);
    let listed: serde_json::Value =
        serde_json::from_str(&ann.run_meshfs(&["invitations", "--json"])).unwrap();
    ann.run_meshfs(&["accept", listed[0]["id"].as_str().unwrap()]);
    let team = "Team";
    wait_until("Bob's folder to appear in Ann's mount", SYNC, || {
        ann.path(team).is_dir()
    });
    fs::write(ann.path(format!("{team}/notes.txt")), b"from ann\n").unwrap();
    wait_for_entry(
        &bob,
        "Team/notes.txt",
        Some(Entry::File(b"from ann\n".to_vec())),
    );
    assert_eq!(ann.status()["pending_changes"], 1, "only the copy waits");

    // Raised by the administrator: the pending copy goes through.
    server.run_meshd(&["user", "quota", ANN, "1G"]);
    wait_until("the copy to reach the server", SYNC * 2, || {
        ann.status()["pending_changes"] == 0
    });
    assert_eq!(ann.status()["over_quota"], false);
    wait_until("df to show the new quota", SYNC, || {
        df(ann.mountpoint()).0 == 1 << 30
    });
    let (_, free) = df(ann.mountpoint());
    assert_eq!(free, ((1 << 30) - 500_000) / block * block);
}
