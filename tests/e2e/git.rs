//! Git works in a Live Folder: a clone into the mount has a clean status
//! and passes `git fsck`.

use mesh_e2e::{Entry, Pair, snapshot};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs git with no user or system configuration, failing the test (never
/// skipping it) when git is not installed or the command fails.
fn git(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "init.defaultBranch=main"])
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `git` ({e}): this test needs git installed and on PATH")
        });
    assert!(
        output.status.success(),
        "git -C {} {} failed ({})\nstdout: {}\nstderr: {}",
        dir.display(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_git_clone_into_the_mount_is_clean_and_passes_fsck() {
    // A small repository outside the mount.
    let source = tempfile::tempdir().unwrap();
    let src = source.path();
    git(src, &["init", "-q"]);
    let files: [(&str, &[u8]); 5] = [
        ("README.md", b"# demo\n\nA small repository.\n"),
        ("src/main.rs", b"fn main() {\n    println!(\"hi\");\n}\n"),
        (
            "src/util/mod.rs",
            b"pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n",
        ),
        ("docs/guide/intro.md", b"Intro\n=====\n"),
        ("data/blob.bin", &[0, 1, 2, 3, 255, 254, 0, 0, 10, 13]),
    ];
    for (path, bytes) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    // An executable script too: git records the mode.
    let script = src.join("run.sh");
    std::fs::write(&script, b"#!/bin/sh\necho run\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    git(src, &["add", "-A"]);
    git(src, &["commit", "-q", "-m", "initial commit"]);

    let mesh = Pair::start();
    let a = &mesh.a;
    mesh.live_folder("Code");
    let clone = a.path("Code/demo");
    git(
        &a.path("Code"),
        &["clone", "-q", src.to_str().unwrap(), "demo"],
    );

    let status = git(&clone, &["status", "--porcelain"]);
    assert!(
        status.stdout.is_empty(),
        "`git status --porcelain` in the clone on the mount is not clean:\n{}",
        String::from_utf8_lossy(&status.stdout)
    );
    git(&clone, &["fsck", "--full", "--strict"]);

    // The checked-out files are the committed ones.
    let work_tree = |root: &Path| {
        snapshot(root)
            .unwrap()
            .into_iter()
            .filter(|(p, _)| !p.starts_with(".git"))
            .collect::<std::collections::BTreeMap<PathBuf, Entry>>()
    };
    assert_eq!(work_tree(&clone), work_tree(src), "the clone's work tree");
    let mode = std::fs::metadata(clone.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "run.sh in the clone is executable");
}
