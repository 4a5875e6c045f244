//! What the command line says when something goes wrong: one sentence about
//! the user's action on standard error, a non-zero exit, and no numbers
//! meant for programmers (`os error 61`).

use mesh_e2e::meshfs_bin;
use std::process::Command;

/// Runs `meshfs ARGS` with a fresh home; its exit success and stderr.
fn meshfs(args: &[&str]) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(meshfs_bin())
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .expect("running meshfs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn pinning_a_file_outside_the_mesh_says_so_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.tar");
    std::fs::write(&file, b"not in a mesh").unwrap();
    let (ok, stderr) = meshfs(&["pin", file.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        format!("meshfs: {} is not in a mounted mesh", file.display())
    );

    let missing = dir.path().join("missing");
    let (ok, stderr) = meshfs(&["unpin", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
}
