//! Reading the change stream as Server-Sent Events.

use futures_util::StreamExt;
use mesh_protocol::api::{Change, StreamMessage};
use mesh_protocol::sse::SseParser;
use reqwest::StatusCode;
use std::time::Duration;

use super::Client;

/// Reads Server-Sent Events from a response.
pub struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    ready: std::collections::VecDeque<mesh_protocol::sse::SseEvent>,
}

impl Sse {
    pub async fn open(client: &Client, query: &str, last_event_id: Option<u64>) -> Sse {
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
    pub async fn next_within(&mut self, limit: Duration) -> Option<(Option<u64>, StreamMessage)> {
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

    pub async fn next(&mut self) -> (Option<u64>, StreamMessage) {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }

    /// The next event that is not about device presence.
    pub async fn next_change(&mut self) -> (u64, Change) {
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

impl Sse {
    /// Every change that arrives until the stream is quiet for `quiet`.
    pub async fn changes_until_quiet(&mut self, quiet: Duration) -> Vec<Change> {
        let mut out = Vec::new();
        while let Some((_, message)) = self.next_within(quiet).await {
            if let StreamMessage::Event(e) = message {
                out.push(e.change);
            }
        }
        out
    }

    /// Skips changes until one satisfies `wanted`, and returns it.
    pub async fn wait_for(&mut self, what: &str, wanted: impl Fn(&Change) -> bool) -> Change {
        loop {
            match self.next_within(Duration::from_secs(15)).await {
                Some((_, StreamMessage::Event(e))) if wanted(&e.change) => return e.change,
                Some(_) => {}
                None => panic!("no {what} within 15 s"),
            }
        }
    }
}
