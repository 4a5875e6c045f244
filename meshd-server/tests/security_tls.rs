//! TLS (#15 item 9), against the real `meshd`: HTTPS with a certificate
//! and key given as files (calls and the event stream work for a client
//! that trusts it, plain HTTP to the port fails, a stalled handshake holds
//! up no one else); off loopback without one, a self-signed certificate
//! made on first start, its fingerprint printed and logged, the same one
//! again after a restart; plain HTTP off loopback only with
//! `--insecure-http`, and a contradictory setting refused at start.

use mesh_cli::fingerprint::Fingerprint;
use mesh_testkit::Meshd;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn meshd_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_meshd"))
}

/// A certificate for 127.0.0.1 and localhost, written as PEM files.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    pem: String,
    _dir: tempfile::TempDir,
}

fn cert_files() -> CertFiles {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    CertFiles {
        cert,
        key,
        pem: made.cert.pem(),
        _dir: dir,
    }
}

/// A client that trusts exactly the certificate `pem`.
fn trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn start_with_files(files: &CertFiles, extra: &[&str]) -> Meshd {
    let mut args = vec![
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Meshd::start(
        meshd_bin(),
        &args,
        &[("RUST_LOG", "meshd_server=debug,info")],
    )
}

/// Enrolls a device over `client`; its token.
async fn enroll(server: &Meshd, client: &reqwest::Client) -> String {
    mesh_testkit::add_user(meshd_bin(), server.data(), "ann@example.org", PASSWORD).unwrap();
    let response = client
        .post(format!("{}/v1/tokens", server.url()))
        .json(&json!({"email": "ann@example.org", "password": PASSWORD, "device_name": "laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn meshd_serves_https_with_the_given_certificate_and_plain_http_to_it_fails() {
    let files = cert_files();
    let server = start_with_files(&files, &[]);
    assert!(
        server.url().starts_with("https://127.0.0.1:"),
        "{}",
        server.url()
    );
    let client = trusting(&files.pem);
    let token = enroll(&server, &client).await;
    let objects = client
        .get(format!("{}/v1/objects", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(objects.status(), StatusCode::OK);

    // The event stream over TLS: its answer starts, and its first event
    // arrives.
    let mut events = client
        .get(format!("{}/v1/events", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(10), events.chunk())
        .await
        .expect("the event stream said nothing within 10 s")
        .unwrap()
        .expect("the event stream ended");
    assert!(!first.is_empty());

    // A client that trusts only the system's roots refuses it.
    let system = reqwest::Client::new()
        .get(format!("{}/v1/objects", server.url()))
        .send()
        .await;
    assert!(system.is_err(), "{system:?}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain_url = server.url().replacen("https://", "http://", 1);
    let plain = reqwest::Client::new()
        .get(format!("{plain_url}/v1/objects"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn a_stalled_tls_handshake_holds_up_no_one_and_is_closed_after_the_header_timeout() {
    let files = cert_files();
    let server = start_with_files(&files, &["--header-timeout", "2"]);
    let address = server.url().strip_prefix("https://").unwrap().to_owned();
    // Half a ClientHello record header, then silence.
    let mut stalled = std::net::TcpStream::connect(&address).unwrap();
    stalled.write_all(&[0x16, 0x03]).unwrap();
    let client = trusting(&files.pem);
    let answer = client
        .get(format!("{}/v1/objects", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    // The server closes the stalled connection (end of file, or a reset).
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    match stalled.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the stalled connection got {n} bytes"),
        Err(e) => assert_ne!(
            e.kind(),
            std::io::ErrorKind::WouldBlock,
            "still open after 20 s"
        ),
    }
}

/// `meshd serve ARGS` on a data directory, outside the test kit (which
/// listens on 127.0.0.1 only); killed when dropped.
struct Raw {
    child: Child,
    lines: BufReader<std::process::ChildStdout>,
    log: PathBuf,
}

impl Raw {
    fn start(data: &Path, args: &[&str]) -> Raw {
        let log = data.with_extension("log");
        let mut child = mesh_testkit::meshd_command(meshd_bin())
            .args(["serve", "--data"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        Raw { child, lines, log }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn off_loopback_meshd_makes_a_self_signed_certificate_prints_its_fingerprint_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut fingerprints = Vec::new();
    for _start in 0..2 {
        let mut meshd = Raw::start(&data, &["--listen", "0.0.0.0:0"]);
        let listening = meshd.line();
        let port = listening
            .strip_prefix("meshd listening on https://0.0.0.0:")
            .unwrap_or_else(|| panic!("{listening:?}; log:\n{}", meshd.log()))
            .to_owned();
        let said = meshd.line();
        let printed: Fingerprint = said
            .strip_prefix("meshd certificate SHA-256 fingerprint ")
            .unwrap_or_else(|| panic!("{said:?}"))
            .parse()
            .unwrap();
        let cert = data.join("tls-cert.pem");
        for file in [&cert, &data.join("tls-key.pem")] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        let pem = std::fs::read_to_string(&cert).unwrap();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
            .unwrap();
        assert_eq!(Fingerprint::of(&der), printed);
        // Made for localhost too: a client that trusts it reaches it there.
        let answer = trusting(&pem)
            .get(format!("https://localhost:{port}/v1/objects"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert!(
            meshd.log().contains(&printed.to_string()),
            "{}",
            meshd.log()
        );
        fingerprints.push(printed);
    }
    assert_eq!(
        fingerprints[0], fingerprints[1],
        "a restart made a new certificate"
    );
}

#[test]
fn plain_http_off_loopback_needs_insecure_http_and_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut meshd = Raw::start(&data, &["--listen", "0.0.0.0:0", "--insecure-http"]);
    let listening = meshd.line();
    assert!(
        listening.starts_with("meshd listening on http://0.0.0.0:"),
        "{listening:?}"
    );
    let port = listening.rsplit(':').next().unwrap().to_owned();
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port.parse().unwrap())).unwrap();
    plain
        .write_all(b"GET /v1/objects HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let log = meshd.log();
    assert!(
        log.contains("WARN") && log.contains("plain HTTP off loopback"),
        "{log}"
    );
    assert!(!data.join("tls-cert.pem").exists());
}

#[test]
fn contradictory_tls_settings_are_refused_at_start() {
    let files = cert_files();
    let dir = tempfile::tempdir().unwrap();
    let cert = files.cert.to_str().unwrap();
    let key = files.key.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--listen",
                "0.0.0.0:0",
                "--public-url",
                "http://mesh.example.org",
            ],
            "would send people to plain HTTP",
        ),
        (
            &["--listen", "0.0.0.0:0", "--tls-cert", cert],
            "--tls-cert and --tls-key go together",
        ),
        (
            &[
                "--listen",
                "0.0.0.0:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--insecure-http",
            ],
            "give one or the other",
        ),
    ];
    for (i, (args, expected)) in cases.iter().enumerate() {
        let data = dir.path().join(format!("data{i}"));
        let output = mesh_testkit::meshd_command(meshd_bin())
            .args(["serve", "--data"])
            .arg(&data)
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !data.join("tls-cert.pem").exists(),
            "{args:?} made a certificate"
        );
    }
}
