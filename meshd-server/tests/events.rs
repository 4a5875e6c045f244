//! The change stream against the real meshd: replay then live, resume by
//! cursor, resync, visibility, presence, revocation, WebSocket, and a clean
//! shutdown with streams open.

mod common;

use common::events::Sse;
use common::{Client, Server, new_item};
use futures_util::StreamExt;
use mesh_protocol::api::{Change, StreamMessage};
use mesh_protocol::live::NewsBody;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn online(client: &Client, device: &str) -> bool {
    let devices: Vec<Value> = client.get_json("/v1/devices").await;
    devices.iter().find(|d| d["id"] == device).unwrap()["online"] == json!(true)
}

#[tokio::test]
async fn replay_then_live_then_resume_without_gaps() {
    let server = Server::start();
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;
    let list = laptop.create_object("Todo", "list").await;
    laptop
        .post_items(
            &list,
            json!([new_item(
                "urn:uuid:1",
                "one",
                &laptop.device_id,
                "2026-11-27T10:00:00Z"
            )]),
        )
        .await;

    // From the start: both enrollments (each with its news), the object,
    // the entry.
    let mut stream = Sse::open(&phone, "?since=0", None).await;
    let mut seen = Vec::new();
    while seen.len() < 6 {
        seen.push(stream.next_change().await);
    }
    for enrolled in [0, 2] {
        assert!(matches!(seen[enrolled].1, Change::DeviceChanged { .. }));
        assert!(matches!(
            &seen[enrolled + 1].1,
            Change::NewsChanged { item } if matches!(item.body, NewsBody::DeviceAdded { .. })
        ));
    }
    assert!(matches!(seen[4].1, Change::ObjectChanged { .. }));
    assert!(matches!(&seen[5].1, Change::EntryChanged { entry, .. } if entry == "urn:uuid:1"));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in order");

    // Live: a change made now arrives without polling.
    laptop
        .post_items(
            &list,
            json!([new_item(
                "urn:uuid:2",
                "two",
                &laptop.device_id,
                "2026-11-27T10:00:01Z"
            )]),
        )
        .await;
    let (live_seq, change) = stream.next_change().await;
    assert!(matches!(&change, Change::EntryChanged { entry, .. } if entry == "urn:uuid:2"));
    drop(stream);

    // Changes made while disconnected arrive on reconnect, exactly once.
    for i in 3..6 {
        laptop
            .post_items(
                &list,
                json!([new_item(
                    &format!("urn:uuid:{i}"),
                    "n",
                    &laptop.device_id,
                    "2026-11-27T10:00:02Z"
                )]),
            )
            .await;
    }
    let mut stream = Sse::open(&phone, "", Some(live_seq)).await;
    for i in 3..6 {
        let (_, change) = stream.next_change().await;
        assert!(
            matches!(&change, Change::EntryChanged { entry, .. } if *entry == format!("urn:uuid:{i}")),
            "{change:?}"
        );
    }
}

#[tokio::test]
async fn a_cursor_the_server_never_gave_gets_a_resync() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let mut stream = Sse::open(&ann, "?since=999999", None).await;
    let (id, message) = stream.next().await;
    assert_eq!(id, None);
    let StreamMessage::Resync(resync) = message else {
        panic!("expected a resync, got {message:?}")
    };
    // Then it continues live from the head it named.
    ann.create_object("After", "list").await;
    let (seq, change) = stream.next_change().await;
    assert!(seq > resync.seq);
    assert!(matches!(change, Change::ObjectChanged { .. }));
}

#[tokio::test]
async fn a_cursor_older_than_retention_gets_a_resync() {
    let server = Server::start_with(&["--event-retention", "1", "--gc-interval", "1"]);
    let ann = server.device("ann@example.org", "laptop").await;
    ann.create_object("A", "list").await;
    ann.create_object("B", "list").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    ann.create_object("C", "list").await;
    let mut stream = Sse::open(&ann, "?since=0", None).await;
    let (_, message) = stream.next().await;
    assert!(
        matches!(message, StreamMessage::Resync(r) if r.oldest > 1),
        "expected a resync"
    );
}

#[tokio::test]
async fn nobody_sees_changes_of_objects_they_are_not_in() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let mut bobs = Sse::open(&bob, "?since=0", None).await;
    let (_, own) = bobs.next_change().await;
    assert!(matches!(own, Change::DeviceChanged { device } if device.to_string() == bob.device_id));
    let (_, news) = bobs.next_change().await;
    assert!(matches!(
        news,
        Change::NewsChanged { item }
            if matches!(&item.body, NewsBody::DeviceAdded { device, .. } if device.to_string() == bob.device_id)
    ));

    let secret = ann.create_object("Secret", "list").await;
    ann.post_items(
        &secret,
        json!([new_item(
            "urn:uuid:s",
            "secret",
            &ann.device_id,
            "2026-11-27T10:00:00Z"
        )]),
    )
    .await;
    server.device("ann@example.org", "phone").await;
    let mine = bob.create_object("Bob's", "list").await;
    let (_, change) = bobs.next_change().await;
    assert!(
        matches!(change, Change::ObjectChanged { object } if object.to_string() == mine),
        "{change:?}"
    );
    assert!(bobs.next_within(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn presence_follows_the_stream_and_revocation_ends_it() {
    let server = Server::start();
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;
    assert!(!online(&laptop, &phone.device_id).await);

    let mut laptops = Sse::open(&laptop, "", None).await;
    let stream = Sse::open(&phone, "", None).await;
    // The laptop is told the phone came online, and the list says so.
    loop {
        let (_, message) = laptops.next().await;
        if let StreamMessage::Event(e) = message
            && let Change::DevicePresence { device, online } = e.change
            && device.to_string() == phone.device_id
        {
            assert!(online);
            break;
        }
    }
    assert!(online(&laptop, &phone.device_id).await);

    drop(stream);
    loop {
        let (_, message) = laptops.next().await;
        if let StreamMessage::Event(e) = message
            && let Change::DevicePresence { device, online } = e.change
            && device.to_string() == phone.device_id
        {
            assert!(!online);
            break;
        }
    }
    assert!(!online(&laptop, &phone.device_id).await);

    // Revoking the phone delivers the revocation, then ends its stream.
    let mut phones = Sse::open(&phone, "", None).await;
    laptop.revoke(&phone).await;
    let (_, change) = phones.next_change().await;
    assert!(matches!(change, Change::DeviceRevoked { .. }), "{change:?}");
    assert!(
        phones.next_within(Duration::from_secs(5)).await.is_none(),
        "the stream ended"
    );
}

#[tokio::test]
async fn the_stream_also_speaks_websocket() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let url = format!(
        "{}/v1/events?since=0",
        server.url.replace("http://", "ws://")
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", ann.token.as_deref().unwrap())
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let id = ann.create_object("Live", "list").await;
    let mut seen_object = false;
    while !seen_object {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message
            && let StreamMessage::Event(e) = serde_json::from_str(&text).unwrap()
        {
            seen_object =
                matches!(e.change, Change::ObjectChanged { object } if object.to_string() == id);
        }
    }
    ws.close(None).await.unwrap();

    // Without a token there is no stream.
    let url = format!("{}/v1/events", server.url.replace("http://", "ws://"));
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_with_streams_open() {
    let mut server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let mut stream = Sse::open(&ann, "", None).await;
    let status = server.terminate();
    assert!(status.success(), "meshd exited with {status}");
    // What was sent before the shutdown may still be read; then the stream ends.
    let mut after = 0;
    while stream.next_within(Duration::from_secs(5)).await.is_some() {
        after += 1;
        assert!(after < 10, "the stream did not end");
    }
    assert!(server.log().contains("stopped"));
}

fn status_of(r: reqwest::Response) -> StatusCode {
    r.status()
}

#[tokio::test]
async fn a_subscriber_gets_only_its_topics() {
    let server = Server::start();
    let laptop = server.device("ann@example.org", "laptop").await;
    let phone = server.device("ann@example.org", "phone").await;
    let (a, b) = (
        laptop.create_object("A", "list").await,
        laptop.create_object("B", "list").await,
    );
    let mut stream = Sse::open(&phone, &format!("?subscribe=feed:{a},devices"), None).await;
    for (object, id) in [(&b, "urn:uuid:b"), (&a, "urn:uuid:a")] {
        laptop
            .post_items(
                object,
                json!([new_item(id, "x", &laptop.device_id, "2026-11-27T10:00:00Z")]),
            )
            .await;
    }
    laptop.create_object("C", "list").await;
    server.device("ann@example.org", "tablet").await;
    let r = laptop
        .delete(&format!("/v1/objects/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let seen = stream.changes_until_quiet(Duration::from_millis(800)).await;
    let about = |c: &Change| match c {
        Change::EntryChanged { object, entry } => format!("entry {object} {entry}"),
        Change::ObjectDeleted { object } => format!("deleted {object}"),
        Change::DeviceChanged { .. } => "device".into(),
        Change::DevicePresence { .. } => "presence".into(),
        other => format!("unexpected {other:?}"),
    };
    let seen: Vec<String> = seen.iter().map(about).filter(|s| s != "presence").collect();
    assert_eq!(
        seen,
        vec![
            format!("entry {a} urn:uuid:a"),
            "device".to_string(),
            format!("deleted {a}"),
        ]
    );
}

#[tokio::test]
async fn a_subscription_is_only_to_what_one_may_see() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let shared = ann.create_object("Shared", "list").await;
    let secret = ann.create_object("Secret", "list").await;

    for query in [
        format!("?subscribe=feed:{secret}"),
        format!("?subscribe=members:{}", uuid_like()),
    ] {
        let r = bob.get(&format!("/v1/events{query}")).send().await.unwrap();
        assert_eq!(status_of(r), StatusCode::NOT_FOUND, "{query}");
    }
    for query in [
        "?subscribe=everything",
        "?subscribe=devices:x",
        "?subscribe=feed:not-an-id",
        "?subscribe=",
    ] {
        let r = bob.get(&format!("/v1/events{query}")).send().await.unwrap();
        assert_eq!(status_of(r), StatusCode::BAD_REQUEST, "{query}");
    }

    // Every feed bob may see: the shared one while he is a member, and
    // the news that he is no longer one; never the secret one.
    ann.add_member(&shared, &bob, "bob@example.org", "editor")
        .await;
    let mut stream = Sse::open(&bob, "?subscribe=feed", None).await;
    let post = |object: String, id: &'static str| {
        let ann = ann.clone();
        async move {
            ann.post_items(
                &object,
                json!([new_item(id, "x", &ann.device_id, "2026-11-27T10:00:00Z")]),
            )
            .await;
        }
    };
    post(secret.clone(), "urn:uuid:s1").await;
    post(shared.clone(), "urn:uuid:1").await;
    let change = stream
        .wait_for("the shared entry", |c| {
            matches!(c, Change::EntryChanged { .. })
        })
        .await;
    assert!(matches!(&change, Change::EntryChanged { entry, .. } if entry == "urn:uuid:1"));
    let mut objects = Sse::open(&bob, "?subscribe=objects", None).await;
    let r = ann
        .delete(&format!("/v1/objects/{shared}/members/{}", bob.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    post(shared.clone(), "urn:uuid:2").await;
    post(secret.clone(), "urn:uuid:s2").await;
    assert_eq!(
        stream.changes_until_quiet(Duration::from_millis(800)).await,
        Vec::<Change>::new(),
        "nothing after the removal"
    );
    // With the objects topic, bob hears that it left him.
    objects
        .wait_for(
            "the removal",
            |c| matches!(c, Change::ObjectChanged { object } if object.to_string() == shared),
        )
        .await;
}

fn uuid_like() -> String {
    "6f1c2d9e-0000-4000-8000-000000000000".into()
}

#[tokio::test]
async fn a_change_the_server_cannot_read_is_skipped_not_fatal() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let mut stream = Sse::open(&ann, "", None).await;
    // As if a newer server had written it, or the disk had damaged it.
    let db = rusqlite::Connection::open(server.data.join("meshd.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute(
        "INSERT INTO changes (at, user_id, change) VALUES (0, ?1, '{\"type\":\"from_the_future\"}')",
        [&ann.user_id],
    )
    .unwrap();
    drop(db);
    let id = ann.create_object("After", "list").await;
    let (_, change) = stream.next_change().await;
    assert!(
        matches!(change, Change::ObjectChanged { object } if object.to_string() == id),
        "{change:?}"
    );
    // A replay from the start skips it too.
    let mut replay = Sse::open(&ann, "?since=0&subscribe=objects", None).await;
    let (_, change) = replay.next_change().await;
    assert!(matches!(change, Change::ObjectChanged { .. }), "{change:?}");
    assert!(
        server
            .log()
            .contains("skipping a change that cannot be read")
    );
}
