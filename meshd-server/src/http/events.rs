//! `GET /v1/events`: the change stream, as Server-Sent Events or, when the
//! request asks to upgrade, over WebSocket. It replays from the change log
//! after the client's cursor (`?since=N` or `Last-Event-ID`), then goes
//! live; a cursor the log no longer covers gets an explicit resync message.
//! `?subscribe=TOPIC,…` narrows it to the resources the client cares about
//! (`feed:ID`, `awareness:ID`, `devices`, …; see `mesh_protocol::live`);
//! a topic naming an object the caller cannot see is a 404. Opening a
//! stream and answering its WebSocket pings renew the device's presence
//! lease; closing the last one takes the device offline. A device holds at
//! most `max_streams_per_device` streams open; one more is a `429`. An app
//! may open streams too (as many, and with no presence): it is shown the
//! objects, feeds and news of its scope only, and its revocation ends them.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use mesh_protocol::api::{Change, ObjectId, Resync, StreamMessage};
use mesh_protocol::live::{Subscription, TopicKind};
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;

use super::Query;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::fanout::{Shared, Since};
use crate::presence::StreamGuard;
use crate::slots::Slot;
use crate::state::AppState;
use crate::store::changes::{self, Audience};
use crate::store::{apps, members, objects};

/// How many changes one step of a stream takes.
const BATCH: usize = 256;

#[derive(Deserialize)]
pub struct StreamQuery {
    since: Option<u64>,
    subscribe: Option<String>,
}

/// One message to send: a change (its sequence number is the SSE id), or
/// the resync notice.
enum Outgoing {
    Change(Arc<Shared>),
    Resync(Resync),
}

impl Outgoing {
    fn json(&self) -> Arc<str> {
        match self {
            Outgoing::Change(shared) => shared.json.clone(),
            Outgoing::Resync(r) => serde_json::to_string(&StreamMessage::Resync(r.clone()))
                .expect("a resync always encodes")
                .into(),
        }
    }
}

/// The objects `who` may see now: a device's user's, an app's scope.
fn reach(conn: &rusqlite::Connection, who: Principal) -> rusqlite::Result<HashSet<ObjectId>> {
    match who {
        Principal::Device(caller) => members::objects_of(conn, caller.user),
        Principal::App(app) => apps::scope(conn, app.app),
    }
}

/// The events one client may see, in order, starting after its cursor.
struct EventSource {
    state: AppState,
    caller: Principal,
    subscription: Subscription,
    /// The objects the caller may see (see [`reach`]); read again whenever
    /// a change that may alter them passes by.
    memberships: HashSet<ObjectId>,
    /// The log has been read up to here (delivered or filtered out).
    cursor: u64,
    pending: VecDeque<Outgoing>,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    /// Set once this device's (app's) revocation has been read: the
    /// stream ends after what is pending.
    revoked: bool,
    /// A device's stream keeps it online; an app has no presence.
    presence: Option<StreamGuard>,
    /// One of the streams this device (app) may hold open.
    _slot: Slot<Principal>,
}

impl EventSource {
    async fn open(
        state: AppState,
        caller: Principal,
        subscription: Subscription,
        since: Option<u64>,
    ) -> ApiResult<Self> {
        let slot = state
            .streams
            .take(caller)
            .ok_or(ApiError::TooManyStreams(state.streams.max()))?;
        let mut wake = state.recent.subscribe();
        wake.borrow_and_update();
        let named: Vec<_> = subscription.objects().collect();
        let (head, pruned, memberships) = state
            .db
            .read(move |conn| {
                for object in named {
                    if objects::visible_to(conn, caller, object)?.is_none() {
                        return Err(ApiError::NotFound);
                    }
                }
                Ok((
                    changes::head(conn)?,
                    changes::pruned_through(conn)?,
                    reach(conn, caller)?,
                ))
            })
            .await?;
        let mut pending = VecDeque::new();
        let cursor = match since {
            None => head,
            // A cursor the log no longer covers, or one this server never
            // gave out (its data was reset): the client must re-read.
            Some(since) if since < pruned || since > head => {
                pending.push_back(Outgoing::Resync(Resync {
                    seq: head,
                    oldest: pruned + 1,
                }));
                head
            }
            Some(since) => since,
        };
        Ok(EventSource {
            presence: match caller {
                Principal::Device(device) => Some(state.presence.connect(device)),
                Principal::App(_) => None,
            },
            shutdown: state.shutdown.clone(),
            state,
            caller,
            subscription,
            memberships,
            cursor,
            pending,
            wake,
            revoked: false,
            _slot: slot,
        })
    }

    /// The changes after the cursor, from the shared window or, for a
    /// cursor older than that, from the log (only those the caller may see).
    async fn read(&mut self) -> ApiResult<Vec<Arc<Shared>>> {
        if let Since::Changes(batch) = self.state.recent.since(self.cursor, BATCH) {
            return Ok(batch);
        }
        let (who, cursor) = (self.caller, self.cursor);
        let logged = self
            .state
            .db
            .read(move |conn| Ok::<_, ApiError>(changes::visible_since(conn, who, cursor, BATCH)?))
            .await?;
        Ok(logged
            .into_iter()
            .map(|l| Arc::new(Shared::new(l)))
            .collect())
    }

    /// Whether the caller may see `change`, told to `audience`, now. An
    /// app sees its own and, of its objects, what it may read: the
    /// objects, their feeds and their news.
    fn may_see(&self, audience: Audience, change: &Change) -> bool {
        match (audience, self.caller) {
            (Audience::User(user), Principal::Device(me)) => user == me.user,
            (Audience::App(app), Principal::App(me)) => app == me.app,
            (Audience::User(_), Principal::App(_)) | (Audience::App(_), Principal::Device(_)) => {
                false
            }
            (Audience::Object(object), Principal::Device(_)) => self.memberships.contains(&object),
            (Audience::Object(object), Principal::App(_)) => {
                self.memberships.contains(&object)
                    && matches!(
                        change.topic().0,
                        TopicKind::Objects | TopicKind::Feed | TopicKind::News
                    )
            }
        }
    }

    /// Whether `change` revokes this stream's device (app).
    fn revokes_me(&self, change: &Change) -> bool {
        match (change, self.caller) {
            (Change::DeviceRevoked { device }, Principal::Device(me)) => *device == me.device,
            (Change::AppRevoked { app }, Principal::App(me)) => *app == me.app,
            _ => false,
        }
    }

    /// The next message, or `None` when the stream ends (server shutdown,
    /// or this device was revoked).
    async fn next(&mut self) -> Option<Outgoing> {
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
            let mut batch = match self.read().await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the change log failed; ending the stream");
                    return None;
                }
            };
            if !batch.is_empty() {
                // Every await comes before the stream's state changes, so a
                // WebSocket stream that is interrupted here loses nothing.
                // Someone joined, left, or an object came or went: who the
                // caller may see is read again, as the log is read now.
                if batch.iter().any(|c| {
                    matches!(
                        c.logged.event.change.topic().0,
                        TopicKind::Members | TopicKind::Objects
                    )
                }) {
                    let who = self.caller;
                    match self
                        .state
                        .db
                        .read(move |conn| Ok::<_, ApiError>(reach(conn, who)?))
                        .await
                    {
                        Ok(memberships) => self.memberships = memberships,
                        Err(e) => {
                            tracing::warn!(error = %e, "reading memberships failed; ending the stream");
                            return None;
                        }
                    }
                }
                self.cursor = batch.last().expect("not empty").logged.event.seq;
                // This device's (app's) revocation is the last thing it is told.
                if let Some(at) = batch
                    .iter()
                    .position(|c| self.revokes_me(&c.logged.event.change))
                {
                    batch.truncate(at + 1);
                    self.revoked = true;
                }
                let visible: Vec<Outgoing> = batch
                    .into_iter()
                    .filter(|c| {
                        self.may_see(c.logged.audience, &c.logged.event.change)
                            && self.subscription.matches(&c.logged.event.change)
                    })
                    .map(Outgoing::Change)
                    .collect();
                self.pending.extend(visible);
                continue;
            }
            tokio::select! {
                changed = self.wake.changed() => if changed.is_err() { return None },
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

fn to_sse(message: &Outgoing) -> SseEvent {
    let data = message.json();
    match message {
        Outgoing::Change(shared) => SseEvent::default()
            .id(shared.logged.event.seq.to_string())
            .data(&*data),
        Outgoing::Resync(_) => SseEvent::default().event("resync").data(&*data),
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
                if socket.send(Message::Text((&*message.json()).into())).await.is_err() {
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
                Some(Ok(_)) => {
                    if let Some(presence) = &source.presence {
                        presence.renew();
                    }
                }
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
    caller: Principal,
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
