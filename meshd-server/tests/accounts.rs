//! Accounts and devices against the real meshd: enrollment, tokens,
//! the device list and revocation.

mod common;

use common::{PASSWORD, Server, error_code};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn enroll_list_and_revoke_devices() {
    let server = Server::start();
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;

    let r = laptop.get("/v1/devices").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let devices: Vec<Value> = r.json().await.unwrap();
    let names: Vec<&str> = devices
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["laptop", "phone"]);
    assert_eq!(devices[0]["current"], json!(true));
    assert_eq!(devices[1]["current"], json!(false));
    assert_eq!(devices[0]["online"], json!(false), "no event stream yet");
    assert!(devices[0]["last_seen"].is_string());

    // Revoking the phone stops its token at once.
    laptop.revoke(&phone).await;
    let r = phone.get("/v1/devices").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "unauthorized");
    let devices: Vec<Value> = laptop.get_json("/v1/devices").await;
    assert_eq!(devices.len(), 1);

    // Revoking again, or revoking another user's device, is a 404.
    let r = laptop
        .delete(&format!("/v1/devices/{}", phone.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let bob = server.device("bob@example.org", "desk").await;
    let r = laptop
        .delete(&format!("/v1/devices/{}", bob.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        bob.get("/v1/devices").send().await.unwrap().status(),
        StatusCode::OK
    );
    let r = laptop
        .delete("/v1/devices/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn enrollment_refuses_bad_credentials_and_bad_input() {
    let server = Server::start();
    server.add_user("ann@example.org", PASSWORD);
    let anon = server.anonymous();
    let enroll = |body: Value| anon.post("/v1/tokens").json(&body).send();

    let r = enroll(
        json!({"email": "ann@example.org", "password": "wrong password", "device_name": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "bad_credentials");
    let r =
        enroll(json!({"email": "nobody@example.org", "password": PASSWORD, "device_name": "x"}))
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "bad_credentials");
    let r = enroll(json!({"email": "ann@example.org", "password": PASSWORD, "device_name": ""}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = enroll(json!({"email": "ann@example.org", "password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = anon
        .post("/v1/tokens")
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );

    // The e-mail address is matched without regard to case.
    let r = enroll(json!({"email": "ANN@example.org", "password": PASSWORD, "device_name": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Nothing above created a device but the last one.
    let ann = server.device("ann@example.org", "y").await;
    let devices: Vec<Value> = ann.get_json("/v1/devices").await;
    assert_eq!(devices.len(), 2);

    // The password and the tokens never reach the log.
    let log = server.log();
    assert!(!log.contains(PASSWORD), "the password was logged");
    assert!(
        !log.contains(ann.token.as_deref().unwrap()),
        "a token was logged"
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let server = Server::start();
    server.add_user("ann@example.org", PASSWORD);
    let anon = server.anonymous();
    let attempt = |password: &'static str| {
        anon.post("/v1/tokens")
            .json(&json!({"email": "ann@example.org", "password": password, "device_name": "x"}))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(
            attempt("guess").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password waits, and the answer says for how long.
    let r = attempt(PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Other accounts are not affected.
    let bob = server.device("bob@example.org", "desk").await;
    assert_eq!(
        bob.get("/v1/devices").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_route_needs_a_valid_token() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let object = ann.create_object("Notes", "list").await;
    let hash = mesh_protocol::content::Hash::of(b"x").to_hex();
    let routes = [
        ("GET", "/v1/devices".to_owned()),
        ("GET", "/v1/objects".to_owned()),
        ("POST", "/v1/objects".to_owned()),
        ("GET", format!("/v1/objects/{object}")),
        ("PATCH", format!("/v1/objects/{object}")),
        ("DELETE", format!("/v1/objects/{object}")),
        ("GET", format!("/v1/objects/{object}/feed")),
        ("POST", format!("/v1/objects/{object}/feed")),
        ("PUT", format!("/v1/chunks/{hash}")),
        ("POST", "/v1/chunks".to_owned()),
        ("GET", format!("/v1/chunks/{hash}")),
        ("HEAD", format!("/v1/chunks/{hash}")),
        ("POST", "/v1/chunks/missing".to_owned()),
        ("GET", "/v1/events".to_owned()),
        ("DELETE", format!("/v1/devices/{}", ann.device_id)),
    ];
    let mut nobody = server.anonymous();
    for token in [None, Some("mesh_0000"), Some("")] {
        nobody.token = token.map(str::to_owned);
        for (method, path) in &routes {
            let r = nobody
                .request(method.parse().unwrap(), path)
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert!(r.headers().contains_key("www-authenticate"));
        }
    }
    // Nothing was changed by any of them.
    assert_eq!(
        ann.get(&format!("/v1/objects/{object}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        ann.get("/v1/devices").send().await.unwrap().status(),
        StatusCode::OK
    );
}
