//! Security (#15): the work a stranger can make a real `meshd` do is
//! bounded. Connections that dribble or say nothing are cut or turned away
//! while real requests are answered; a device's event streams are capped;
//! concurrent sign-ins do not exhaust memory; sign-in takes only JSON;
//! wrong passwords slow the address that sends them, not the account's
//! owner elsewhere; a spray over many accounts is slowed; the question
//! about missing chunks is capped; wrong invitation links do not block the
//! right one. Client addresses other than 127.0.0.1 are other loopback
//! addresses (all of 127/8 is loopback on Linux).

mod common;

use common::{PASSWORD, Server, error_code, events::Sse, invite_link, token_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: &str = "127.0.0.2";
const OWNER: &str = "127.0.0.3";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn server_address(server: &Server) -> SocketAddr {
    server.url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// A TCP connection to the server from `from`.
async fn connect_from(server: &Server, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip(from), 0)).unwrap();
    socket.connect(server_address(server)).await.unwrap()
}

/// An HTTP client whose requests come from `from`.
fn http_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip(from))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Whether the server closes `stream` within `limit` (reads end or fail).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

/// `POST /v1/tokens` from `from`.
async fn sign_in(
    http: &reqwest::Client,
    server: &Server,
    email: &str,
    password: &str,
) -> StatusCode {
    http.post(format!("{}/v1/tokens", server.url))
        .json(&json!({"email": email, "password": password, "device_name": "phone"}))
        .send()
        .await
        .unwrap()
        .status()
}

/// A real request from 127.0.0.1 is answered.
async fn answers(server: &Server) -> bool {
    let r = http_from("127.0.0.1")
        .get(format!("{}/v1/devices", server.url))
        .send()
        .await;
    matches!(r, Ok(r) if r.status() == StatusCode::UNAUTHORIZED)
}

#[tokio::test]
async fn connections_dribbling_headers_are_closed_while_real_requests_are_answered() {
    let server = Server::start_with(&["--header-timeout", "1"]);
    let mut dribblers = Vec::new();
    for _ in 0..8 {
        let mut s = connect_from(&server, ATTACKER).await;
        s.write_all(b"GET /v1/devices HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        dribblers.push(s);
    }
    // A header line every 200 ms: never a whole request head.
    let dribbling = tokio::spawn(async move {
        for _ in 0..25 {
            for s in &mut dribblers {
                let _ = s.write_all(b"X-Slow: 1\r\n").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        dribblers
    });
    assert!(answers(&server).await, "a real request was not answered");
    let mut dribblers = dribbling.await.unwrap();
    for s in &mut dribblers {
        assert!(
            closed_within(s, Duration::from_secs(1)).await,
            "a connection dribbling headers for 5 s was still open (header timeout 1 s)"
        );
    }
}

#[tokio::test]
async fn silent_connections_beyond_the_caps_do_not_stop_real_requests() {
    // Few descriptors, as an attacker would exhaust them: 150 silent
    // connections would take every one of them without the caps.
    let server = Server::start_with_max_files(
        &[
            "--max-connections",
            "20",
            "--max-connections-per-address",
            "10",
        ],
        64,
    );
    let mut silent = Vec::new();
    for _ in 0..150 {
        silent.push(connect_from(&server, ATTACKER).await);
    }
    assert!(answers(&server).await, "a real request was not answered");
    // The connections beyond the address's cap were closed at once.
    let mut closed = 0;
    for s in &mut silent {
        if closed_within(s, Duration::from_millis(20)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 140,
        "only {closed} of 150 silent connections were turned away"
    );
    assert!(answers(&server).await, "a real request was not answered");
    // Running out of descriptors was never reached (nor spun on).
    assert!(
        !server.log().contains("no file descriptor left"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_header_timeout() {
    let server = Server::start_with(&[
        "--header-timeout",
        "1",
        "--max-connections",
        "20",
        "--max-connections-per-address",
        "20",
    ]);
    // Fill every connection the server takes.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(connect_from(&server, ATTACKER).await);
    }
    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(3)).await,
            "a silent connection was still open after the header timeout"
        );
    }
    assert!(answers(&server).await, "a real request was not answered");
}

#[tokio::test]
async fn a_device_holds_at_most_its_cap_of_event_streams_and_they_outlive_the_idle_timeout() {
    let server = Server::start_with(&[
        "--max-streams-per-device",
        "2",
        "--heartbeat",
        "1",
        "--idle-timeout",
        "2",
    ]);
    let ann = server.device("ann@example.org", "laptop").await;
    let mut first = Sse::open(&ann, "", None).await;
    let second = Sse::open(&ann, "", None).await;
    let r = ann.get("/v1/events").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 event streams"),
        "{body}"
    );
    // Another device of the same user has its own.
    let phone = server.device("ann@example.org", "phone").await;
    let _phone_stream = Sse::open(&phone, "", None).await;
    // A closed stream gives its place back (once the server notices, at
    // the next heartbeat).
    drop(second);
    let mut reopened = None;
    for _ in 0..50 {
        let r = ann.get("/v1/events").send().await.unwrap();
        if r.status() == StatusCode::OK {
            reopened = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the closed stream's place never came back"
    );
    // Past the idle timeout the first stream still delivers: heartbeats
    // keep it busy.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ann.create_object("Notes", "list").await;
    first.next_change().await;
}

#[tokio::test]
async fn concurrent_sign_ins_keep_memory_bounded_and_all_are_answered() {
    let server = Server::start_with(&[
        "--password-checks",
        "2",
        "--password-queue-wait",
        "3",
        "--public-requests-per-minute",
        "1000",
        "--sign-in-failures-per-address",
        "1000",
    ]);
    let http = http_from("127.0.0.1");
    let attempts = (0..32).map(|i| {
        let (http, server) = (&http, &server);
        async move {
            sign_in(
                http,
                server,
                &format!("nobody{i}@example.org"),
                "some password",
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    for status in &answers {
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(status),
            "{answers:?}"
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    // Two checks of 19 MiB at a time, on top of what meshd needs anyway
    // (about 15 MiB; with 32 checks at once it peaks above 600 MiB).
    assert!(
        peak_kib < 160 * 1024,
        "meshd peaked at {} MiB for 32 concurrent sign-ins",
        peak_kib / 1024
    );
}

#[tokio::test]
async fn a_sign_in_that_waits_too_long_for_a_password_check_is_answered_503() {
    let server = Server::start_with(&[
        "--password-checks",
        "1",
        "--password-queue-wait",
        "0",
        "--public-requests-per-minute",
        "1000",
        "--sign-in-failures-per-address",
        "1000",
    ]);
    let http = http_from("127.0.0.1");
    let attempts = (0..8).map(|i| {
        http.post(format!("{}/v1/tokens", server.url))
            .json(&json!({"email": format!("nobody{i}@example.org"), "password": "x", "device_name": "x"}))
            .send()
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    for r in answers {
        let r = r.unwrap();
        match r.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert!(r.headers().contains_key("retry-after"));
                assert_eq!(error_code(r).await, "unavailable");
            }
            other => panic!("{other}"),
        }
    }
    assert!(
        busy > 0,
        "eight sign-ins at once all found a free password check"
    );
}

#[tokio::test]
async fn sign_in_takes_only_json() {
    let server = Server::start();
    server.add_user("ann@example.org", PASSWORD);
    let body =
        json!({"email": "ann@example.org", "password": PASSWORD, "device_name": "x"}).to_string();
    let http = reqwest::Client::new();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut r = http
            .post(format!("{}/v1/tokens", server.url))
            .body(body.clone());
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let r = r.send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(error_code(r).await, "unsupported_media_type");
    }
    // Nothing was enrolled: the one device is the one enrolled now.
    let ann = server.device("ann@example.org", "laptop").await;
    let devices: Vec<Value> = ann.get_json("/v1/devices").await;
    assert_eq!(devices.len(), 1);
}

#[tokio::test]
async fn an_attacker_guessing_elsewhere_does_not_lock_the_owner_out() {
    let server = Server::start();
    server.add_user("ann@example.org", PASSWORD);
    let attacker = http_from(ATTACKER);
    let mut refused = Vec::new();
    for i in 0..14 {
        refused.push(sign_in(&attacker, &server, "ann@example.org", &format!("guess {i}")).await);
    }
    assert!(
        refused[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{refused:?}"
    );
    assert!(
        refused[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{refused:?}"
    );
    // The attacker is slowed, even with the right password…
    assert_eq!(
        sign_in(&attacker, &server, "ann@example.org", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …but the owner's own device signs in.
    assert_eq!(
        sign_in(&http_from(OWNER), &server, "ann@example.org", PASSWORD).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn one_password_sprayed_over_many_accounts_from_one_address_is_slowed() {
    let server = Server::start();
    server.add_user("ann@example.org", PASSWORD);
    let attacker = http_from(ATTACKER);
    let mut answers = Vec::new();
    for i in 0..50 {
        answers.push(
            sign_in(
                &attacker,
                &server,
                &format!("user{i}@example.org"),
                "Summer2026!",
            )
            .await,
        );
    }
    let first_slowed = answers
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(|| panic!("a spray over 50 accounts was never slowed: {answers:?}"));
    assert!(first_slowed <= 21, "{answers:?}");
    assert!(
        answers[first_slowed..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{answers:?}"
    );
    // Another address is not slowed.
    assert_eq!(
        sign_in(&http_from(OWNER), &server, "ann@example.org", PASSWORD).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn the_invitation_page_is_rate_limited_per_address() {
    let server = Server::start_with(&["--public-requests-per-minute", "5"]);
    let attacker = http_from(ATTACKER);
    let mut answers = Vec::new();
    for i in 0..8 {
        let r = attacker
            .get(format!("{}/invite/{i:032x}", server.url))
            .send()
            .await
            .unwrap();
        answers.push(r.status());
    }
    assert!(
        answers[..5].iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{answers:?}"
    );
    assert!(
        answers[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{answers:?}"
    );
    let r = attacker
        .post(format!("{}/invite/{:032x}", server.url, 0))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40example.org&password=x&answer=accept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Too many attempts"));
    let r = http_from(OWNER)
        .get(format!("{}/invite/{:032x}", server.url, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_question_about_missing_chunks_is_capped() {
    let server = Server::start_with(&["--max-missing-hashes", "100"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let hashes = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| mesh_protocol::content::Hash::of(&i.to_le_bytes()).to_hex())
            .collect()
    };
    let r = ann
        .post("/v1/chunks/missing")
        .json(&json!({ "hashes": hashes(101) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100"),
        "{body}"
    );
    let r = ann
        .post("/v1/chunks/missing")
        .json(&json!({ "hashes": hashes(100) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["missing"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn a_users_valid_invitation_link_works_after_wrong_ones() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let object = ann.create_object("Photos", "folder").await;
    let invitation = ann.invite(&object, "bob@example.org", "editor").await;
    let token = token_of(&invite_link(&server.outbox_mail(&invitation)));
    let accept = |token: String| {
        let bob = bob.clone();
        async move {
            bob.post("/v1/invitations/accept")
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let mut wrong = Vec::new();
    for i in 0..12 {
        wrong.push(accept(format!("{i:032x}")).await);
    }
    assert!(
        wrong[..10].iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{wrong:?}"
    );
    assert!(
        wrong[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{wrong:?}"
    );
    assert_eq!(accept(token).await, StatusCode::OK);
    assert!(
        ann.members(&object)
            .await
            .contains(&("bob@example.org".into(), "editor".into()))
    );
}

#[tokio::test]
async fn sigterm_stops_meshd_promptly_with_connections_and_streams_open() {
    let mut server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let _stream = Sse::open(&ann, "", None).await;
    let _silent = connect_from(&server, ATTACKER).await;
    let mut dribbler = connect_from(&server, ATTACKER).await;
    dribbler.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // terminate() fails the test if meshd takes more than 10 s.
    assert!(server.terminate().success(), "{}", server.log());
}
