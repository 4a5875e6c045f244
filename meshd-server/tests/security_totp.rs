//! A second factor for accounts against the real meshd (#15 item 10):
//! `meshd user totp enable EMAIL` prints an otpauth:// link and recovery
//! codes; from then on `POST /v1/tokens` needs a current code (computed
//! here with totp-rs from the printed link, as an authenticator app
//! would) or a recovery code besides the password. Without one the answer
//! is `second_factor_required` — but only to someone with the right
//! password; a code works once; wrong codes are throttled like wrong
//! passwords; sign-ins and changes go to the audit log.

mod common;

use common::{PASSWORD, Server, meshd};
use mesh_protocol::api::{AuditAction, AuditEntry, SecondFactor};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use totp_rs::Totp;

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";
const ATTACKER: &str = "127.0.0.2";
const OWNER: &str = "127.0.0.3";

/// `meshd user totp ARGS --data DATA`.
fn totp_command(server: &Server, args: &[&str]) -> Output {
    meshd()
        .args(["user", "totp"])
        .args(args)
        .arg("--data")
        .arg(&server.data)
        .output()
        .unwrap()
}

/// What `meshd user totp enable` gave: the authenticator app's key, as
/// the app reads it from the link, and the recovery codes.
struct Enrollment {
    totp: Totp,
    recovery_codes: Vec<String>,
}

fn enable(server: &Server, email: &str, args: &[&str]) -> Enrollment {
    let out = totp_command(server, &[&["enable", email], args].concat());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uri = said
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap_or_else(|| panic!("no otpauth:// link in {said}"));
    let totp = Totp::from_url(uri).unwrap();
    assert_eq!(totp.issuer(), Some("Mesh"));
    assert_eq!(totp.account_name(), email);
    assert_eq!((totp.digits(), totp.step()), (6, 30));
    let recovery_codes: Vec<String> = said
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery_codes.len(), 10, "{said}");
    // Not a terminal: no QR code.
    assert!(!said.contains('█') && !said.contains('▀'), "{said}");
    Enrollment {
        totp,
        recovery_codes,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Enrollment {
    /// The app's code `steps` steps from now.
    fn code(&self, steps: i64) -> String {
        let at = now() as i64 + steps * 30;
        self.totp.generate(at as u64).to_string()
    }

    /// A code no step near now has.
    fn wrong_code(&self) -> String {
        let near: Vec<String> = (-3..=3).map(|s| self.code(s)).collect();
        (0..)
            .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
            .find(|c| !near.contains(c))
            .unwrap()
    }
}

fn http_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `POST /v1/tokens` from `http`; the status and the JSON answer.
async fn sign_in(
    http: &reqwest::Client,
    server: &Server,
    email: &str,
    password: &str,
    totp: Option<&str>,
) -> (StatusCode, Value) {
    let mut body = json!({"email": email, "password": password, "device_name": "phone"});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    let r = http
        .post(format!("{}/v1/tokens", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn audit(server: &Server, token: &str) -> Vec<AuditEntry> {
    let r = reqwest::Client::new()
        .get(format!("{}/v1/audit", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn users(server: &Server) -> Vec<Value> {
    let out = meshd()
        .args(["user", "list", "--json", "--data"])
        .arg(&server.data)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn sign_in_needs_a_current_code_once_totp_is_enabled_and_each_code_works_once() {
    let server = Server::start();
    server.add_user(ANN, PASSWORD);
    server.add_user(BOB, PASSWORD);
    let app = enable(&server, ANN, &[]);
    let http = http_from("127.0.0.1");

    // The right password alone: a second factor is needed, and said so.
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "second_factor_required", "{body}");
    assert_eq!(body["error"]["second_factor"], "totp", "{body}");

    // A wrong password says nothing of the second factor: the answer is
    // the one of an account without one, with or without a code.
    let (status, ann_wrong) = sign_in(&http, &server, ANN, "wrong password", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, bob_wrong) = sign_in(&http, &server, BOB, "wrong password", None).await;
    let (_, nobody) = sign_in(&http, &server, "nobody@example.org", "x", None).await;
    assert_eq!(ann_wrong, bob_wrong);
    assert_eq!(ann_wrong, nobody);
    assert_eq!(ann_wrong["error"]["code"], "bad_credentials");
    assert!(ann_wrong["error"].get("second_factor").is_none());
    let current = app.code(0);
    let (status, body) = sign_in(&http, &server, ANN, "wrong password", Some(&current)).await;
    assert_eq!((status, &body), (StatusCode::UNAUTHORIZED, &bob_wrong));

    // A wrong code.
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, Some(&app.wrong_code())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "bad_credentials", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("authentication code"),
        "{body}"
    );

    // The current code (not used up by the wrong password above) signs in.
    let (status, laptop) = sign_in(&http, &server, ANN, PASSWORD, Some(&current)).await;
    assert_eq!(status, StatusCode::CREATED, "{laptop}");
    // Once: the same code again is refused…
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, Some(&current)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "bad_credentials");
    // …the next step's code (one step of clock skew) works…
    let next = app.code(1);
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, Some(&next)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // …and then no earlier one does, nor one two steps away.
    for code in [app.code(0), app.code(-1), app.code(3)] {
        let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some(&code)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{code}");
    }
    // Bob has no second factor: his password alone signs in, a stray
    // code changes nothing.
    let (status, _) = sign_in(&http, &server, BOB, PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED);

    let token = laptop["token"].as_str().unwrap();
    let log = audit(&server, token).await;
    let summary: Vec<_> = log
        .iter()
        .map(|e| (e.action, e.second_factor, e.by.clone()))
        .collect();
    let ann = Some(ANN.to_owned());
    assert_eq!(
        summary,
        [
            (
                AuditAction::DeviceEnrolled,
                Some(SecondFactor::Totp),
                ann.clone()
            ),
            (
                AuditAction::DeviceEnrolled,
                Some(SecondFactor::Totp),
                ann.clone()
            ),
            (AuditAction::TotpEnabled, None, None),
        ]
    );
    // The server's log never holds the secret (nor a code, which, six
    // digits, could be in any timestamp by chance).
    let server_log = server.log();
    assert!(!server_log.contains(&app.totp.secret().to_base32()));
    assert!(server_log.contains("sign-in needs an authentication code"));
}

#[tokio::test]
async fn each_code_sent_by_several_sign_ins_at_once_signs_in_only_one() {
    let server = Server::start();
    server.add_user(ANN, PASSWORD);
    let app = enable(&server, ANN, &[]);
    let http = http_from("127.0.0.1");
    let code = app.code(0);
    let recovery = &app.recovery_codes[0];
    let attempts = (0..6).map(|i| {
        let which = if i % 2 == 0 { &code } else { recovery };
        sign_in(&http, &server, ANN, PASSWORD, Some(which))
    });
    let answers: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let created = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((created, refused), (2, 4), "{answers:?}");
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let server = Server::start();
    server.add_user(ANN, PASSWORD);
    let app = enable(&server, ANN, &[]);
    let http = http_from("127.0.0.1");
    let code = &app.recovery_codes[3];
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, Some(code)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some(code)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
    // However it is typed.
    let typed = app.recovery_codes[4].replace('-', " ").to_uppercase();
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some(&typed)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some("abcde-fghjk")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let list = users(&server);
    assert_eq!(list[0]["totp"], true);
    assert_eq!(list[0]["recovery_codes"], 8);
    let token = body["token"].as_str().unwrap();
    let log = audit(&server, token).await;
    assert_eq!(log[0].action, AuditAction::DeviceEnrolled);
    assert_eq!(log[0].second_factor, Some(SecondFactor::RecoveryCode));
    let server_log = server.log();
    for code in &app.recovery_codes {
        assert!(!server_log.contains(code.as_str()));
    }
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_wrong_passwords_and_the_owner_still_gets_in() {
    let server = Server::start_with(&["--sign-in-failures", "3"]);
    server.add_user(ANN, PASSWORD);
    let app = enable(&server, ANN, &[]);
    let attacker = http_from(ATTACKER);
    let wrong = app.wrong_code();
    for _ in 0..2 {
        let (status, _) = sign_in(&attacker, &server, ANN, PASSWORD, Some(&wrong)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Asking without a code neither counts nor clears the count…
    let (status, body) = sign_in(&attacker, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "second_factor_required");
    let (status, _) = sign_in(&attacker, &server, ANN, PASSWORD, Some(&wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // …so the third wrong code makes the next attempt wait, right code or not.
    let (status, _) = sign_in(&attacker, &server, ANN, PASSWORD, Some(&wrong)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = sign_in(&attacker, &server, ANN, PASSWORD, Some(&app.code(0))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The owner, elsewhere, signs in with the current code.
    let (status, body) = sign_in(
        &http_from(OWNER),
        &server,
        ANN,
        PASSWORD,
        Some(&app.code(0)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn totp_is_enabled_reset_and_disabled_by_the_administrator() {
    let server = Server::start();
    server.add_user(ANN, PASSWORD);
    let http = http_from("127.0.0.1");
    let list = users(&server);
    assert_eq!(list[0]["totp"], false);
    assert_eq!(list[0]["recovery_codes"], Value::Null);

    let first = enable(&server, ANN, &[]);
    // Enabling again needs --reset, and changes nothing without it.
    let out = totp_command(&server, &["enable", ANN]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--reset"), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, Some(&first.code(0))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();

    // A reset: the old app and recovery codes stop working, the new work.
    let second = enable(&server, ANN, &["--reset"]);
    assert_ne!(
        first.totp.secret().to_base32(),
        second.totp.secret().to_base32()
    );
    let (status, _) = sign_in(
        &http,
        &server,
        ANN,
        PASSWORD,
        Some(&first.recovery_codes[0]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some(&second.code(0))).await;
    assert_eq!(status, StatusCode::CREATED);

    // Unknown accounts are named.
    for args in [
        ["enable", "nobody@example.org"],
        ["disable", "nobody@example.org"],
    ] {
        let out = totp_command(&server, &args);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("there is no user nobody@example.org")
        );
    }

    let out = totp_command(&server, &["disable", ANN]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let out = totp_command(&server, &["disable", ANN]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no second factor"));
    assert_eq!(users(&server)[0]["totp"], false);

    let actions: Vec<_> = audit(&server, &token)
        .await
        .iter()
        .filter(|e| e.action != AuditAction::DeviceEnrolled)
        .map(|e| (e.action, e.by.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            (AuditAction::TotpDisabled, None),
            (AuditAction::TotpEnabled, None),
            (AuditAction::TotpEnabled, None),
        ]
    );
}

#[tokio::test]
async fn the_invitation_page_asks_for_the_code_too() {
    let server = Server::start();
    let bob = server.device(BOB, "desktop").await;
    server.add_user(ANN, PASSWORD);
    let app = enable(&server, ANN, &[]);
    let object = bob.create_object("Plans", "folder").await;
    let invitation = bob.invite(&object, ANN, "reader").await;
    let token = common::token_of(&common::invite_link(&server.outbox_mail(&invitation)));
    let http = http_from("127.0.0.1");
    let page = http
        .get(format!("{}/invite/{token}", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"totp\""), "{page}");
    let answer = |totp: String| {
        let http = http.clone();
        let url = format!("{}/invite/{token}", server.url);
        async move {
            // The code is digits; the address and password need escaping.
            let body = format!(
                "email={}&password={}&totp={totp}&answer=accept",
                ANN.replace('@', "%40"),
                PASSWORD.replace(' ', "+")
            );
            let r = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (status, page) = answer(String::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Authentication code needed"), "{page}");
    let (status, page) = answer(app.wrong_code()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong authentication code"), "{page}");
    assert!(bob.members(&object).await.len() == 1);
    let (status, page) = answer(app.code(0)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(bob.members(&object).await.len(), 2);
}

#[tokio::test]
async fn the_owner_turns_totp_on_with_a_first_code_and_off_with_a_current_one() {
    let server = Server::start();
    let laptop = server.device(ANN, "laptop").await;
    let http = http_from("127.0.0.1");
    let begin = |password: &str| {
        laptop
            .post("/v1/account/totp")
            .json(&json!({"password": password}))
            .send()
    };

    // A device token alone is not enough: the password is asked.
    let r = begin("wrong password").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(common::error_code(r).await, "bad_credentials");
    let r = begin(PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: Value = r.json().await.unwrap();
    let app = Enrollment {
        totp: Totp::from_url(key["uri"].as_str().unwrap()).unwrap(),
        recovery_codes: serde_json::from_value(key["recovery_codes"].clone()).unwrap(),
    };
    assert_eq!(app.totp.secret().to_base32(), key["secret"]);
    assert_eq!(app.totp.account_name(), ANN);
    assert_eq!(app.recovery_codes.len(), 10);

    // Until a first code confirms it, nothing changes for sign-in.
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(users(&server)[0]["totp"], false);
    let confirm = |code: String| {
        laptop
            .post("/v1/account/totp/confirm")
            .json(&json!({"totp": code}))
            .send()
    };
    let r = confirm(app.wrong_code()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let first = app.code(0);
    let r = confirm(first.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // On now: a code is needed, and the one that confirmed is used up.
    let (status, body) = sign_in(&http, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "second_factor_required");
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some(&first)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, Some(&app.recovery_codes[0])).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        begin(PASSWORD).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        confirm(app.code(1)).await.unwrap().status(),
        StatusCode::CONFLICT
    );

    // Off: the password and a current code, as for a sign-in.
    let disable = |password: &str, code: String| {
        laptop
            .delete("/v1/account/totp")
            .json(&json!({"password": password, "totp": code}))
            .send()
    };
    let r = disable(PASSWORD, app.wrong_code()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = disable("wrong password", app.code(1)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(users(&server)[0]["totp"], true);
    let r = disable(PASSWORD, app.code(1)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = sign_in(&http, &server, ANN, PASSWORD, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let r = disable(PASSWORD, app.code(1)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let token = laptop.token.clone().unwrap();
    let actions: Vec<_> = audit(&server, &token)
        .await
        .iter()
        .filter(|e| e.action != AuditAction::DeviceEnrolled)
        .map(|e| (e.action, e.by.clone()))
        .collect();
    let ann = Some(ANN.to_owned());
    assert_eq!(
        actions,
        [
            (AuditAction::TotpDisabled, ann.clone()),
            (AuditAction::TotpEnabled, ann.clone()),
        ]
    );
}
