//! POSIX conformance: the whole pjdfstest suite (the Rust rewrite) against a
//! Live Folder in a real mount. The pass count is recorded in the README;
//! this test fails if anything fails or fewer tests pass than recorded.

use mesh_e2e::{Device, EMAIL, Server};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// What the README records: passed out of 398; the other 16 are skipped
/// because they need a read-only or second filesystem.
const PASSED: usize = 382;

const CONFIG: &str = r#"
[features]
posix_fallocate = {}
utime_now = {}
utimensat = {}
rename_ctime = {}

[settings]
naptime = 0.05

[dummy_auth]
entries = [["nobody", "nogroup"], ["daemon", "daemon"]]
"#;

fn count(summary: &str, what: &str) -> usize {
    summary
        .split(',')
        .find_map(|part| part.trim().strip_suffix(what)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {what:?} count in {summary:?}"))
}

#[test]
fn pjdfstest_passes_in_a_live_folder() {
    let server = Server::start();
    server.add_user(EMAIL);
    let device = Device::mount(&server, EMAIL, "laptop");
    // pjdfstest switches to other users, who must be able to reach the mount.
    let parent = device
        .mountpoint()
        .parent()
        .expect("the mountpoint has a parent");
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let folder = device.path("Conformance");
    std::fs::create_dir(&folder).unwrap();
    let config = parent.join("pjdfstest.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let output = Command::new("pjdfstest")
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .arg(&folder)
        .current_dir(&folder)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running pjdfstest ({e}); scripts/test installs it with `cargo install pjdfstest`"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .lines()
        .chain(stderr.lines())
        .find_map(|l| l.strip_prefix("Summary: "))
        .unwrap_or_else(|| panic!("pjdfstest printed no summary:\n{stdout}\n{stderr}"));
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_end().ends_with("FAILED"))
        .collect();
    println!("pjdfstest: {summary}");
    assert_eq!(
        count(summary, "failed"),
        0,
        "failed tests:\n{}",
        failed.join("\n")
    );
    assert!(
        count(summary, "passed") >= PASSED,
        "fewer tests pass than the README records: {summary}"
    );
}
