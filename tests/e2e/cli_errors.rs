//! What the command line says when something goes wrong: one sentence about
//! the user's action on standard error, a non-zero exit, and no numbers
//! meant for programmers (`os error 61`); and its help, grouped.

use mesh_e2e::{Device, PASSWORD, Server, is_mounted, meshfs_bin, wait_until};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// Runs `command` with standard input from /dev/null, or `input` piped;
/// its exit success and stderr.
fn outcome(mut command: Command, input: Option<&str>) -> (bool, String) {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running meshfs");
    if let Some(text) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().expect("waiting for meshfs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that a command failed with one line, `meshfs: ` then `want`
/// somewhere, and nothing of fusermount's or an errno.
fn assert_refused((ok, stderr): (bool, String), want: &str) {
    assert!(!ok, "the command succeeded; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(lines[0].starts_with("meshfs: "), "{stderr}");
    assert!(lines[0].contains(want), "{want:?} not in: {stderr}");
    for noise in ["fusermount", "Invalid argument", "os error", "the end of"] {
        assert!(!stderr.contains(noise), "{noise:?} in: {stderr}");
    }
}

#[test]
fn login_without_a_password_says_so_and_asks_the_server_nothing() {
    let server = Server::start();
    server.add_user("ann@example.org");
    let home = tempfile::tempdir().unwrap();
    let login = || {
        let mut command = Command::new(meshfs_bin());
        command.arg("--home").arg(home.path()).args([
            "login",
            server.url(),
            "--email",
            "ann@example.org",
        ]);
        command
    };
    const REFUSED: &str = "sign-in refused";

    // Standard input from /dev/null, and an empty pipe with --password-stdin.
    assert_refused(outcome(login(), None), "no password could be read");
    let mut stdin_flag = login();
    stdin_flag.arg("--password-stdin");
    let (ok, stderr) = outcome(stdin_flag, Some(""));
    assert_refused((ok, stderr.clone()), "--password-stdin");
    assert!(!server.log().contains(REFUSED), "{}", server.log());
    assert!(!home.path().join("account.json").exists());

    // The server's log would show a sign-in attempt: a wrong password does.
    assert_refused(
        outcome(login(), Some("wrong password\n")),
        "wrong e-mail address or password",
    );
    wait_until(
        "the server logs the refused sign-in",
        Duration::from_secs(5),
        || server.log().contains(REFUSED),
    );
    // And the right one, piped without --password-stdin, signs in.
    let (ok, stderr) = outcome(login(), Some(&format!("{PASSWORD}\n")));
    assert!(ok, "{stderr}");
}

#[test]
fn mount_and_unmount_mistakes_are_one_sentence_each() {
    let server = Server::start();
    server.add_user("ann@example.org");
    let mut a = Device::mount(&server, "ann@example.org", "a");
    let b = Device::mount(&server, "ann@example.org", "b");
    let dir = tempfile::tempdir().unwrap();
    let mount = |device: &Device, at: &Path, extra: &[&str]| {
        let mut command = device.meshfs();
        command.arg("mount").args(extra).arg(at);
        outcome(command, None)
    };
    let unmount = |device: &Device, at: &Path| {
        let mut command = device.meshfs();
        command.arg("unmount").arg(at);
        outcome(command, None)
    };
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();

    // Twice: this device is mounted already.
    assert_refused(
        mount(&a, &empty, &[]),
        &format!(
            "this device is already mounted at {}",
            a.mountpoint().display()
        ),
    );
    assert!(!is_mounted(&empty));
    // Unmounting a directory nothing is mounted on.
    assert_refused(
        unmount(&a, &empty),
        &format!("{} is not mounted", empty.display()),
    );
    assert!(a.is_mounted());
    a.unmount();

    let missing = dir.path().join("missing");
    assert_refused(mount(&a, &missing, &[]), "does not exist");
    assert!(!missing.exists());
    let file = dir.path().join("file");
    std::fs::write(&file, b"a file").unwrap();
    assert_refused(mount(&a, &file, &[]), "is not a directory");
    // On another mount (device b's).
    assert_refused(
        mount(&a, b.mountpoint(), &[]),
        &format!("{} is already a mount point", b.mountpoint().display()),
    );
    assert_refused(unmount(&a, a.mountpoint()), "is not mounted");

    // Over a directory that holds something: refused, its file untouched;
    // with --nonempty, mounted (and the file hidden until unmounted).
    let kept = a.mountpoint().join("kept.txt");
    std::fs::write(&kept, b"mine").unwrap();
    assert_refused(mount(&a, a.mountpoint(), &[]), "is not empty");
    assert!(!a.is_mounted());
    assert_eq!(std::fs::read(&kept).unwrap(), b"mine");
    a.remount_with(&["--nonempty"]);
    assert!(!kept.exists(), "the mount shows the directory's own file");
    a.unmount();
    assert_eq!(std::fs::read(&kept).unwrap(), b"mine");
}

#[test]
fn a_mount_that_fails_in_its_daemon_says_why_this_attempt_failed() {
    let server = Server::start();
    server.add_user("ann@example.org");
    let mut a = Device::mount(&server, "ann@example.org", "a");
    a.unmount();
    // A stale failure from an earlier attempt, and a database the daemon
    // cannot open.
    let log = a.home().join("meshfs.log");
    let mut old = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(
        old,
        "meshfs: this device is already mounted at /elsewhere (process 1)"
    )
    .unwrap();
    // The write-ahead log goes too: SQLite reads the pages it holds (page 1
    // among them) in place of the file's, which would hide the damage.
    std::fs::write(a.home().join("meta.sqlite3"), vec![0x5a; 8192]).unwrap();
    for stale in ["meta.sqlite3-wal", "meta.sqlite3-shm"] {
        let _ = std::fs::remove_file(a.home().join(stale));
    }

    let mut command = a.meshfs();
    command.arg("mount").arg(a.mountpoint());
    let (ok, stderr) = outcome(command, None);
    assert!(!ok, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("meshfs: "), "{stderr}");
    assert!(
        !stderr.contains("/elsewhere"),
        "an old attempt's line: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "the mount did not start (its log: {})",
            log.display()
        )),
        "{stderr}"
    );
    assert!(!a.is_mounted());
}

#[test]
fn help_groups_the_commands_and_says_what_each_argument_is() {
    let help = |args: &[&str]| {
        let output = Command::new(meshfs_bin()).args(args).output().unwrap();
        assert!(output.status.success(), "meshfs {args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let top = help(&["--help"]);
    let mut at = 0;
    for (heading, command) in [
        ("Mounting:", "mount"),
        ("Files:", "pin"),
        ("Sharing:", "share"),
        ("Devices and account:", "devices"),
        ("News and presence:", "news"),
    ] {
        let found = top[at..]
            .find(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("no {heading} after the ones before:\n{top}"));
        at += found;
        assert!(top[at..].contains(&format!("\n  {command} ")), "{top}");
    }
    let unmount = help(&["unmount", "--help"]);
    assert!(
        unmount.contains("<MOUNTPOINT>  Where the mesh is mounted"),
        "{unmount}"
    );
    let share = help(&["share", "--help"]);
    assert!(share.contains("<EMAIL>  Whom to share it with"), "{share}");
}
