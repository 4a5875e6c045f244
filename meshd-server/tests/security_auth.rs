//! Account recovery and session control against the real meshd (#15 item
//! 11): `meshd user passwd` gives an account a new password (the old one
//! stops working; devices stay signed in unless `--revoke-devices`), and
//! the audit log records sign-ins (device enrollments), revocations and
//! password changes next to membership events, readable by the account's
//! owner only, newest first, in pages.

mod common;

use common::{Client, PASSWORD, Server, meshd};
use mesh_protocol::api::{AuditAction, AuditEntry};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Output, Stdio};

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// `meshd user passwd EMAIL --password-stdin --data DATA ARGS` with
/// `password` on standard input.
fn passwd(server: &Server, email: &str, password: &str, args: &[&str]) -> Output {
    let mut child = meshd()
        .args(["user", "passwd", email, "--password-stdin", "--data"])
        .arg(&server.data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = writeln!(child.stdin.take().unwrap(), "{password}");
    child.wait_with_output().unwrap()
}

async fn sign_in(server: &Server, email: &str, password: &str) -> StatusCode {
    server
        .anonymous()
        .post("/v1/tokens")
        .json(&json!({"email": email, "password": password, "device_name": "probe"}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn devices_status(client: &Client) -> StatusCode {
    client.get("/v1/devices").send().await.unwrap().status()
}

#[tokio::test]
async fn passwd_changes_the_password_and_keeps_devices_unless_told_otherwise() {
    let server = Server::start();
    let laptop = server.device(ANN, "laptop").await;

    let out = passwd(&server, ANN, NEW_PASSWORD, &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("stay signed in"), "{said}");
    assert_eq!(
        sign_in(&server, ANN, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&server, ANN, NEW_PASSWORD).await,
        StatusCode::CREATED
    );
    assert_eq!(devices_status(&laptop).await, StatusCode::OK);

    // Refused input changes nothing.
    let out = passwd(&server, "nobody@example.org", NEW_PASSWORD, &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("there is no user nobody@example.org"),
        "{said}"
    );
    let out = passwd(&server, ANN, "short", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    assert_eq!(
        sign_in(&server, ANN, NEW_PASSWORD).await,
        StatusCode::CREATED
    );

    // A password that may have leaked: every device is signed out too.
    let out = passwd(&server, ANN, PASSWORD, &["--revoke-devices"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("signed out its 3 device(s)"), "{said}");
    assert_eq!(devices_status(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&server, ANN, PASSWORD).await, StatusCode::CREATED);
}

#[tokio::test]
async fn user_list_prints_json() {
    let server = Server::start();
    server.add_user(ANN, PASSWORD);
    server.add_user(BOB, PASSWORD);
    let out = meshd()
        .args(["user", "list", "--json", "--data"])
        .arg(&server.data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let emails: Vec<&str> = list.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, [ANN, BOB]);
    assert!(
        list.iter()
            .all(|u| u["id"].is_string() && u["name"].is_string())
    );
    assert!(list.iter().all(|u| u.get("password_hash").is_none()));
}

async fn audit(client: &Client, query: &str) -> Vec<AuditEntry> {
    let r = client
        .get(&format!("/v1/audit{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn summary(entries: &[AuditEntry]) -> Vec<(AuditAction, String, Option<String>)> {
    entries
        .iter()
        .map(|e| (e.action, e.subject.clone(), e.by.clone()))
        .collect()
}

#[tokio::test]
async fn the_audit_log_holds_sign_ins_revocations_and_passwords_for_their_owner_only() {
    let server = Server::start();
    let laptop = server.device(ANN, "laptop").await;
    let phone = server.device(ANN, "phone").await;
    let bob = server.device(BOB, "bob-desktop").await;
    laptop.revoke(&phone).await;
    let out = passwd(&server, ANN, NEW_PASSWORD, &[]);
    assert!(out.status.success());
    let object = laptop.create_object("Plans", "folder").await;
    laptop.invite(&object, BOB, "reader").await;

    let mine = audit(&laptop, "").await;
    let ann = Some(ANN.to_owned());
    assert_eq!(
        summary(&mine),
        [
            (AuditAction::Invited, BOB.into(), ann.clone()),
            (AuditAction::PasswordChanged, ANN.into(), None),
            (AuditAction::DeviceRevoked, "phone".into(), ann.clone()),
            (AuditAction::DeviceEnrolled, "phone".into(), ann.clone()),
            (AuditAction::DeviceEnrolled, "laptop".into(), ann.clone()),
        ]
    );
    assert!(
        mine.windows(2)
            .all(|w| w[0].id > w[1].id && w[0].at >= w[1].at)
    );
    assert_eq!(
        mine[2].device.map(|d| d.to_string()),
        Some(phone.device_id.clone())
    );
    assert_eq!(mine[0].object.map(|o| o.to_string()), Some(object.clone()));
    assert_eq!(mine[0].object_name.as_deref(), Some("Plans"));

    // Bob reads his own: his sign-in and the invitation to his address,
    // nothing of Ann's devices or password.
    let his = audit(&bob, "").await;
    assert_eq!(
        summary(&his),
        [
            (AuditAction::Invited, BOB.into(), ann.clone()),
            (
                AuditAction::DeviceEnrolled,
                "bob-desktop".into(),
                Some(BOB.into())
            ),
        ]
    );

    // Pages: newest first, `before` the last id seen.
    let first = audit(&laptop, "?limit=2").await;
    let second = audit(&laptop, &format!("?limit=2&before={}", first[1].id)).await;
    let third = audit(&laptop, &format!("?limit=2&before={}", second[1].id)).await;
    let paged: Vec<_> = [first, second, third].concat();
    assert_eq!(paged, mine);
    assert!(
        audit(&laptop, &format!("?before={}", mine[4].id))
            .await
            .is_empty()
    );

    for query in ["?limit=0", "?limit=501", "?before=x", "?colour=blue"] {
        let r = laptop
            .get(&format!("/v1/audit{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let r = server.anonymous().get("/v1/audit").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = phone.get("/v1/audit").send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked device reads nothing"
    );
}
