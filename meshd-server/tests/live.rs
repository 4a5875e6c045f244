//! Presence leases and awareness documents against the real meshd:
//! heartbeats keep a device online, silence or signing off ends it, and
//! what a device publishes to an object's awareness reaches that object's
//! members only, coalesced, and vanishes with the device's presence (or
//! the device itself).

mod common;

use common::events::Sse;
use common::{Client, Server, error_code};
use mesh_protocol::api::Change;
use mesh_protocol::live::{Awareness, PresenceLease};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn online(client: &Client, device: &str) -> bool {
    let devices: Vec<Value> = client.get_json("/v1/devices").await;
    devices.iter().find(|d| d["id"] == device).unwrap()["online"] == json!(true)
}

fn presence_of(device: &str, online: bool) -> impl Fn(&Change) -> bool {
    let device = device.to_owned();
    move |c| matches!(c, Change::DevicePresence { device: d, online: o } if d.to_string() == device && *o == online)
}

async fn heartbeat(client: &Client) -> PresenceLease {
    let r = client.post("/v1/presence").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_silent_device_goes_offline_when_its_lease_lapses() {
    let server = Server::start_with(&["--presence-lease", "2", "--heartbeat", "1"]);
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;
    let mut laptops = Sse::open(&laptop, "?subscribe=devices", None).await;

    // The phone holds a stream but never renews: it is online, then,
    // with its connection still open, offline once the lease runs out.
    let _held = Sse::open(&phone, "?subscribe=objects", None).await;
    let opened = Instant::now();
    laptops
        .wait_for("the phone online", presence_of(&phone.device_id, true))
        .await;
    assert!(online(&laptop, &phone.device_id).await);
    laptops
        .wait_for("the phone offline", presence_of(&phone.device_id, false))
        .await;
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_millis(1800) && after < Duration::from_secs(5),
        "offline after {after:?} with a 2 s lease"
    );
    assert!(!online(&laptop, &phone.device_id).await);

    // A heartbeat brings it back and says how often to renew.
    let lease = heartbeat(&phone).await;
    assert_eq!(
        lease,
        PresenceLease {
            lease_ms: 2000,
            renew_ms: 1000
        }
    );
    laptops
        .wait_for(
            "the phone online again",
            presence_of(&phone.device_id, true),
        )
        .await;
    // Renewing in time keeps it online past the lease …
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        heartbeat(&phone).await;
    }
    assert!(online(&laptop, &phone.device_id).await);
    // … and signing off ends it at once.
    let r = phone.delete("/v1/presence").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(!online(&laptop, &phone.device_id).await);
    laptops
        .wait_for("the phone signed off", presence_of(&phone.device_id, false))
        .await;
}

async fn publish(client: &Client, object: &str, state: Value) -> reqwest::Response {
    client
        .put(&format!("/v1/objects/{object}/awareness"))
        .json(&json!({ "state": state }))
        .send()
        .await
        .unwrap()
}

fn awareness_of(object: &str) -> impl Fn(&Change) -> bool {
    let object = object.to_owned();
    move |c| matches!(c, Change::AwarenessChanged { object: o, .. } if o.to_string() == object)
}

fn states(change: &Change) -> Vec<(String, Value)> {
    let Change::AwarenessChanged { entries, .. } = change else {
        panic!("not awareness: {change:?}")
    };
    entries
        .iter()
        .map(|e| (format!("{} {}", e.email, e.device_name), e.state.clone()))
        .collect()
}

#[tokio::test]
async fn awareness_is_coalesced_and_reaches_members_only() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let eve = server.device("eve@example.org", "phone").await;
    let folder = ann.create_object("Shared", "folder").await;
    let other = ann.create_object("Other", "folder").await;
    ann.add_member(&folder, &bob, "bob@example.org", "reader")
        .await;
    let mut bobs = Sse::open(&bob, &format!("?subscribe=awareness:{folder}"), None).await;
    let mut eves = Sse::open(&eve, "", None).await;

    // Fifty quick updates arrive as a handful of events, the last one
    // carrying the final state.
    for n in 0..50 {
        let r = publish(
            &ann,
            &folder,
            json!({ "open": [{ "path": format!("f{n}"), "writing": true }] }),
        )
        .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    publish(&ann, &other, json!({"open": []})).await;
    let seen = bobs.changes_until_quiet(Duration::from_millis(700)).await;
    assert!(
        (1..=10).contains(&seen.len()),
        "{} events for 50 updates",
        seen.len()
    );
    assert!(
        seen.iter().all(awareness_of(&folder)),
        "only the subscribed object"
    );
    assert_eq!(
        states(seen.last().unwrap()),
        vec![(
            "ann@example.org laptop".into(),
            json!({"open": [{"path": "f49", "writing": true}]})
        )]
    );
    let doc: Awareness = bob
        .get_json(&format!("/v1/objects/{folder}/awareness"))
        .await;
    assert_eq!(doc.entries.len(), 1);
    assert_eq!(doc.entries[0].device.to_string(), ann.device_id);

    // A reader publishes too; a non-member can neither read nor publish,
    // and never hears of it.
    assert_eq!(
        publish(&bob, &folder, json!({"open": []})).await.status(),
        StatusCode::NO_CONTENT
    );
    for r in [
        publish(&eve, &folder, json!({})).await,
        eve.get(&format!("/v1/objects/{folder}/awareness"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert!(
        eves.changes_until_quiet(Duration::from_millis(500))
            .await
            .iter()
            .all(|c| !matches!(c, Change::AwarenessChanged { .. })),
        "eve saw awareness of an object she is not in"
    );

    // Bad input changes nothing.
    let big = json!({ "open": [{ "path": "x".repeat(20_000), "writing": false }] });
    let r = publish(&ann, &folder, big).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = ann
        .put(&format!("/v1/objects/{folder}/awareness"))
        .header("content-type", "application/json")
        .body("{\"state\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "bad_request");
    let doc: Awareness = ann
        .get_json(&format!("/v1/objects/{folder}/awareness"))
        .await;
    assert_eq!(doc.entries.len(), 2);
    assert!(
        doc.entries
            .iter()
            .any(|e| e.state["open"][0]["path"] == "f49")
    );
}

#[tokio::test]
async fn awareness_ends_with_presence_and_membership() {
    let server = Server::start_with(&["--presence-lease", "2", "--heartbeat", "1"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let folder = ann.create_object("Shared", "folder").await;
    ann.add_member(&folder, &bob, "bob@example.org", "editor")
        .await;
    let mut anns = Sse::open(&ann, &format!("?subscribe=awareness:{folder}"), None).await;
    let open = json!({"open": [{"path": "report.odt", "writing": true}]});
    let about = &awareness_of(&folder);
    let present =
        |who: &'static str| move |c: &Change| about(c) && states(c).iter().any(|(w, _)| w == who);
    let absent =
        |who: &'static str| move |c: &Change| about(c) && states(c).iter().all(|(w, _)| w != who);

    // Signing off withdraws bob's entry at once.
    publish(&bob, &folder, open.clone()).await;
    anns.wait_for("bob's entry", present("bob@example.org desk"))
        .await;
    bob.delete("/v1/presence").send().await.unwrap();
    anns.wait_for("bob signed off", absent("bob@example.org desk"))
        .await;

    // A lapsed lease does too, and so does leaving the object.
    publish(&bob, &folder, open.clone()).await;
    anns.wait_for("bob's entry again", present("bob@example.org desk"))
        .await;
    let published = Instant::now();
    anns.wait_for("bob's lease lapsed", absent("bob@example.org desk"))
        .await;
    assert!(published.elapsed() >= Duration::from_millis(1800));

    publish(&bob, &folder, open).await;
    anns.wait_for("bob's entry once more", present("bob@example.org desk"))
        .await;
    let r = bob
        .delete(&format!("/v1/objects/{folder}/members/{}", bob.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    anns.wait_for("bob left", absent("bob@example.org desk"))
        .await;
    let doc: Awareness = ann
        .get_json(&format!("/v1/objects/{folder}/awareness"))
        .await;
    assert!(doc.entries.is_empty());

    // A device signed out (revoked) leaves at once.
    let phone = server.device("ann@example.org", "phone").await;
    publish(&phone, &folder, json!({"open": []})).await;
    anns.wait_for("the phone's entry", present("ann@example.org phone"))
        .await;
    ann.revoke(&phone).await;
    let revoked = Instant::now();
    anns.wait_for("the revoked phone gone", absent("ann@example.org phone"))
        .await;
    assert!(
        revoked.elapsed() < Duration::from_millis(1500),
        "not by its lease"
    );
}

#[tokio::test]
async fn a_websocket_client_that_answers_pings_stays_online() {
    use futures_util::StreamExt;
    let server = Server::start_with(&["--presence-lease", "2", "--heartbeat", "1"]);
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;
    let url = format!("{}/v1/events", server.url.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", phone.token.as_deref().unwrap())
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // Reading lets the client answer the server's pings with pongs, and
    // each pong renews the lease: online well past two leases.
    let reading = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = ws.next().await {
            message.unwrap();
        }
    });
    assert!(reading.await.is_err(), "the stream stayed open");
    assert!(online(&laptop, &phone.device_id).await);
    // A client that stops answering goes offline with its lease.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!online(&laptop, &phone.device_id).await);
    drop(ws);
}
