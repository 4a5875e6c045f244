//! Security end to end (#15 item 9), TLS: devices signed in to an
//! `https://` meshd with `meshfs login --fingerprint` sync through it; a
//! wrong fingerprint refuses the sign-in; and once the server's
//! certificate is replaced, a mounted device refuses to talk to it (its
//! log and `meshfs status` say why) instead of trusting the new one.

use mesh_e2e::{Device, EMAIL, Entry, PASSWORD, Server, wait_for_entry, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Writes a new certificate for 127.0.0.1 and its key into `dir`.
fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// The fingerprint meshd logged at its last start.
fn logged_fingerprint(server: &Server) -> String {
    let log = server.log();
    let at = log
        .rfind("fingerprint=")
        .unwrap_or_else(|| panic!("meshd logged no fingerprint:\n{log}"));
    log[at + "fingerprint=".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn tls_server(dir: &Path) -> Server {
    let (cert, key) = write_certificate(dir);
    let server = Server::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.url().starts_with("https://"), "{}", server.url());
    server.add_user(EMAIL);
    server
}

#[test]
fn devices_pinned_to_the_server_s_certificate_sync_and_refuse_a_replaced_one() {
    let certs = tempfile::tempdir().unwrap();
    let mut server = tls_server(certs.path());
    let fingerprint = logged_fingerprint(&server);
    // With colons on one device, without them on the other.
    let a = Device::mount_pinned(server.url(), EMAIL, "a", &fingerprint);
    let b = Device::mount_pinned(server.url(), EMAIL, "b", &fingerprint.replace(':', ""));
    std::fs::create_dir(a.path("docs")).unwrap();
    wait_for_entry(&b, "docs", Some(Entry::Dir));
    std::fs::write(a.path("docs/note.txt"), b"over TLS").unwrap();
    wait_for_entry(&b, "docs/note.txt", Some(Entry::File(b"over TLS".to_vec())));

    // The administrator (or someone in between) replaces the certificate.
    server.stop();
    write_certificate(certs.path());
    server.restart();
    assert_ne!(logged_fingerprint(&server), fingerprint);
    std::fs::write(a.path("docs/after.txt"), b"not for a stranger").unwrap();
    wait_until(
        "device a refuses the new certificate",
        Duration::from_secs(30),
        || a.log().contains("the server's certificate changed"),
    );
    let status = a.status();
    let said = status["last_error"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("the server's certificate changed"),
        "{status}"
    );
    // Nothing reached the server: a device signed in afresh, trusting the
    // new certificate, does not see the file.
    let fresh = Device::mount_pinned(server.url(), EMAIL, "c", &logged_fingerprint(&server));
    wait_for_entry(
        &fresh,
        "docs/note.txt",
        Some(Entry::File(b"over TLS".to_vec())),
    );
    assert!(!fresh.path("docs/after.txt").exists());
}

#[test]
fn a_wrong_fingerprint_or_none_without_a_terminal_refuses_the_sign_in() {
    let certs = tempfile::tempdir().unwrap();
    let server = tls_server(certs.path());
    let right = logged_fingerprint(&server);
    let wrong = format!(
        "{}{}",
        if right.starts_with("00") { "11" } else { "00" },
        &right[2..]
    );
    let home = tempfile::tempdir().unwrap();
    let login = |extra: &[&str]| {
        let mut child = Command::new(mesh_e2e::meshfs_bin())
            .arg("--home")
            .arg(home.path())
            .args(["login", server.url(), "--email", EMAIL, "--password-stdin"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let refused = login(&["--fingerprint", &wrong]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("the server's certificate changed"), "{said}");
    assert!(!home.path().join("account.json").exists());

    let refused = login(&[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        said.contains("--fingerprint") && said.contains(&right),
        "{said}"
    );
    assert!(!home.path().join("account.json").exists());
}
