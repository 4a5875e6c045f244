//! The change stream against the real meshd: replay then live, resume by
//! cursor, resync, visibility, presence, revocation, WebSocket, and a clean
//! shutdown with streams open.

mod common;

use common::{Client, Server, new_item};
use futures_util::StreamExt;
use mesh_protocol::api::{Change, StreamMessage};
use mesh_protocol::live::NewsBody;
use mesh_protocol::sse::SseParser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Reads Server-Sent Events from a response.
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    ready: std::collections::VecDeque<mesh_protocol::sse::SseEvent>,
}

impl Sse {
    async fn open(client: &Client, query: &str, last_event_id: Option<u64>) -> Sse {
        let mut r = client.get(&format!("/v1/events{query}"));
        if let Some(id) = last_event_id {
            r = r.header("Last-Event-ID", id.to_string());
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            body: Box::pin(r.bytes_stream()),
            parser: SseParser::default(),
            ready: Default::default(),
        }
    }

    /// The next message (heartbeats are skipped), within `limit`.
    async fn next_within(&mut self, limit: Duration) -> Option<(Option<u64>, StreamMessage)> {
        tokio::time::timeout(limit, async {
            loop {
                if let Some(event) = self.ready.pop_front() {
                    let id = event.id.map(|i| i.parse().unwrap());
                    return Some((id, serde_json::from_str(&event.data).unwrap()));
                }
                match self.body.next().await {
                    Some(Ok(bytes)) => self.ready.extend(self.parser.push(&bytes)),
                    _ => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    async fn next(&mut self) -> (Option<u64>, StreamMessage) {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }

    /// The next event that is not about device presence.
    async fn next_change(&mut self) -> (u64, Change) {
        loop {
            let (id, message) = self.next().await;
            match message {
                StreamMessage::Event(e) => {
                    assert_eq!(id, Some(e.seq), "the SSE id is the sequence number");
                    if !matches!(e.change, Change::DevicePresence { .. }) {
                        return (e.seq, e.change);
                    }
                }
                StreamMessage::Resync(r) => panic!("unexpected resync {r:?}"),
            }
        }
    }
}

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
    let r = laptop
        .delete(&format!("/v1/devices/{}", phone.device_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, change) = phones.next_change().await;
    assert!(matches!(change, Change::DeviceRevoked { .. }));
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
