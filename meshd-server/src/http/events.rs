//! `GET /v1/events`: the change stream, as Server-Sent Events or, when the
//! request asks to upgrade, over WebSocket. It replays from the change log
//! after the client's cursor (`?since=N` or `Last-Event-ID`), then goes
//! live; a cursor the log no longer covers gets an explicit resync message.
//! `?subscribe=TOPIC,…` narrows it to the resources the client cares about
//! (`feed:ID`, `awareness:ID`, `devices`, …; see `mesh_protocol::live`);
//! a topic naming an object the caller cannot see is a 404. Opening a
//! stream and answering its WebSocket pings renew the device's presence
//! lease; closing the last one takes the device offline.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use mesh_protocol::api::{Change, Event, Resync, StreamMessage};
use mesh_protocol::live::Subscription;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio::sync::watch;

use super::Query;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::presence::StreamGuard;
use crate::state::AppState;
use crate::store::{changes, objects};

/// How many changes one read of the log fetches.
const BATCH: usize = 256;

#[derive(Deserialize)]
pub struct StreamQuery {
    since: Option<u64>,
    subscribe: Option<String>,
}

/// The events one client may see, in order, starting after its cursor.
struct EventSource {
    state: AppState,
    caller: Caller,
    subscription: Subscription,
    /// The log has been read up to here (delivered or filtered out).
    cursor: u64,
    pending: VecDeque<StreamMessage>,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    /// Set once this device's revocation has been read: the stream ends
    /// after what is pending.
    revoked: bool,
    presence: StreamGuard,
}

impl EventSource {
    async fn open(
        state: AppState,
        caller: Caller,
        subscription: Subscription,
        since: Option<u64>,
    ) -> ApiResult<Self> {
        let mut wake = state.notifier.subscribe();
        wake.borrow_and_update();
        let named: Vec<_> = subscription.objects().collect();
        let (head, pruned) = state
            .db
            .read(move |conn| {
                for object in named {
                    if objects::visible(conn, caller.user, object)?.is_none() {
                        return Err(ApiError::NotFound);
                    }
                }
                Ok((changes::head(conn)?, changes::pruned_through(conn)?))
            })
            .await?;
        let mut pending = VecDeque::new();
        let cursor = match since {
            None => head,
            // A cursor the log no longer covers, or one this server never
            // gave out (its data was reset): the client must re-read.
            Some(since) if since < pruned || since > head => {
                pending.push_back(StreamMessage::Resync(Resync {
                    seq: head,
                    oldest: pruned + 1,
                }));
                head
            }
            Some(since) => since,
        };
        Ok(EventSource {
            presence: state.presence.connect(caller),
            shutdown: state.shutdown.clone(),
            state,
            caller,
            subscription,
            cursor,
            pending,
            wake,
            revoked: false,
        })
    }

    /// The next message, or `None` when the stream ends (server shutdown,
    /// or this device was revoked).
    async fn next(&mut self) -> Option<StreamMessage> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Some(message);
            }
            if self.revoked || *self.shutdown.borrow() {
                return None;
            }
            // Mark the newest announcement seen before reading, so one made
            // during the read wakes us again.
            self.wake.borrow_and_update();
            let (user, cursor) = (self.caller.user, self.cursor);
            let mut events: Vec<Event> = match self
                .state
                .db
                .read(move |conn| {
                    Ok::<_, ApiError>(changes::visible_since(conn, user, cursor, BATCH)?)
                })
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the change log failed; ending the stream");
                    return None;
                }
            };
            if let Some(last) = events.last() {
                self.cursor = last.seq;
                let me = self.caller.device;
                // This device's revocation is the last thing it is told.
                if let Some(at) = events.iter().position(
                    |e| matches!(e.change, Change::DeviceRevoked { device } if device == me),
                ) {
                    events.truncate(at + 1);
                    self.revoked = true;
                }
                let subscription = &self.subscription;
                self.pending.extend(
                    events
                        .into_iter()
                        .filter(|e| subscription.matches(&e.change))
                        .map(StreamMessage::Event),
                );
                continue;
            }
            tokio::select! {
                changed = self.wake.changed() => if changed.is_err() { return None },
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

fn to_sse(message: &StreamMessage) -> SseEvent {
    let data = serde_json::to_string(message).expect("a stream message always encodes");
    match message {
        StreamMessage::Event(e) => SseEvent::default().id(e.seq.to_string()).data(data),
        StreamMessage::Resync(_) => SseEvent::default().event("resync").data(data),
    }
}

fn sse_stream(source: EventSource) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(source, |mut source| async move {
        let message = source.next().await?;
        Some((Ok(to_sse(&message)), source))
    })
}

async fn websocket(mut socket: WebSocket, mut source: EventSource, heartbeat: std::time::Duration) {
    let mut ticks = tokio::time::interval(heartbeat);
    ticks.tick().await;
    loop {
        tokio::select! {
            message = source.next() => {
                let Some(message) = message else { break };
                let text = serde_json::to_string(&message).expect("a stream message always encodes");
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            _ = ticks.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => source.presence.renew(),
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be a sequence number".into())
                })
        })
        .transpose()
}

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let since = last_event_id(&headers)?.or(q.since);
    let subscription = match q.subscribe.as_deref() {
        None => Subscription::Everything,
        Some(list) => Subscription::parse(list).map_err(ApiError::BadRequest)?,
    };
    let heartbeat = state.limits.heartbeat;
    let source = EventSource::open(state, caller, subscription, since).await?;
    Ok(match upgrade {
        Ok(upgrade) => upgrade
            .on_upgrade(move |socket| websocket(socket, source, heartbeat))
            .into_response(),
        Err(_) => Sse::new(sse_stream(source))
            .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
            .into_response(),
    })
}
