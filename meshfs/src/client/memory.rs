//! A mesh server in memory, for unit tests of the mount: mesh objects with
//! members and roles, each object's feed merged by mesh-protocol's
//! FeedSync merge (the same function meshd calls), a content-addressed
//! chunk store, awareness documents, and one change log that every
//! device's stream reads in order. Several devices — of one user or of
//! several — sign in to one [`MemoryServer`] and each gets its own
//! [`MemoryApi`], so two mounts can be driven against each other without a
//! process, a socket or a kernel.
//!
//! It answers as meshd does where the mount can tell: a non-member gets
//! "not found", a reader's write is forbidden, a post that names chunks the
//! server lacks is refused, a feed page is the changes after a cursor in
//! change order.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use mesh_protocol::api::{
    AccountUsage, Change, DeviceId, ErrorCode, Event, KIND_FOLDER, MeshObject, ObjectId, Role,
    StreamMessage, UserId,
};
use mesh_protocol::content::Hash;
use mesh_protocol::feedsync::{self, Item};
use mesh_protocol::folder::EntryData;
use mesh_protocol::live::{Awareness, AwarenessEntry, FolderAwareness, PresenceLease};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

use super::{EventStream, FeedPage, MeshApi, Posted, RemoteError, RemoteResult};

/// How many items one feed page holds (meshd's client asks for 1,000).
const PAGE: usize = 1000;

/// One mesh object and everything stored for it.
struct Stored {
    object: MeshObject,
    members: HashMap<UserId, Role>,
    /// Each entry's latest merged item and the change that wrote it.
    entries: HashMap<String, (u64, Item)>,
    /// Entries compacted by [`MemoryServer::compact_tombstones`]: kept for
    /// merging, no longer served; and the highest sequence among them.
    compacted: HashSet<String>,
    horizon: u64,
    awareness: BTreeMap<DeviceId, AwarenessEntry>,
}

#[derive(Default)]
struct State {
    /// The last change's sequence number.
    seq: u64,
    objects: BTreeMap<ObjectId, Stored>,
    chunks: HashMap<Hash, Bytes>,
    emails: HashMap<UserId, String>,
}

/// One change as the log keeps it: the event and who may see it.
#[derive(Clone)]
struct Logged {
    event: Event,
    audience: Arc<HashSet<UserId>>,
}

/// The server. Cheap to share: devices hold it by `Arc`.
pub struct MemoryServer {
    state: Mutex<State>,
    changes: broadcast::Sender<Logged>,
}

/// One signed-in device's view of a [`MemoryServer`].
#[derive(Clone)]
pub struct MemoryApi {
    server: Arc<MemoryServer>,
    user: UserId,
    device: DeviceId,
    device_name: String,
}

impl MemoryServer {
    pub fn new() -> Arc<MemoryServer> {
        Arc::new(MemoryServer {
            state: Mutex::default(),
            changes: broadcast::channel(4096).0,
        })
    }

    /// Signs a device of `user` in (the user is known from then on, with a
    /// made-up e-mail address).
    pub fn sign_in(self: &Arc<Self>, user: UserId, device: DeviceId, name: &str) -> MemoryApi {
        self.state
            .lock()
            .expect("memory server")
            .emails
            .entry(user)
            .or_insert_with(|| format!("{user}@memory.invalid"));
        MemoryApi {
            server: self.clone(),
            user,
            device,
            device_name: name.to_owned(),
        }
    }

    /// Makes `user` a member of `object` with `role` (an accepted
    /// invitation, or a role changed by the owner); `None` removes them.
    pub fn set_member(&self, object: ObjectId, user: UserId, role: Option<Role>) {
        let mut state = self.state.lock().expect("memory server");
        let Some(stored) = state.objects.get_mut(&object) else {
            return;
        };
        let mut audience: HashSet<UserId> = stored.members.keys().copied().collect();
        audience.insert(user);
        match role {
            Some(role) => stored.members.insert(user, role),
            None => stored.members.remove(&user),
        };
        self.record(&mut state, Change::ObjectChanged { object }, audience);
    }

    /// Compacts every tombstone without conflicts of `object`, as meshd's
    /// collector does once they are older than its retention: kept for
    /// merging with a compacted history, no longer served, and a cursor
    /// before them reads the feed from its start.
    pub fn compact_tombstones(&self, object: ObjectId) {
        let mut state = self.state.lock().expect("memory server");
        let Some(stored) = state.objects.get_mut(&object) else {
            return;
        };
        for (key, (seq, item)) in &mut stored.entries {
            if item.current.sync.deleted && item.conflicts.is_empty() {
                item.current.sync.history = item.current.sync.history.compacted();
                stored.compacted.insert(key.clone());
                stored.horizon = stored.horizon.max(*seq);
            }
        }
    }

    /// Every entry of `object`'s feed as the server holds it.
    pub fn items(&self, object: ObjectId) -> Vec<Item> {
        let state = self.state.lock().expect("memory server");
        let mut items: Vec<(u64, Item)> = state
            .objects
            .get(&object)
            .map(|s| s.entries.values().cloned().collect())
            .unwrap_or_default();
        items.sort_by_key(|(seq, _)| *seq);
        items.into_iter().map(|(_, item)| item).collect()
    }

    /// Whether the chunk store holds `hash`.
    pub fn has_chunk(&self, hash: &Hash) -> bool {
        self.state
            .lock()
            .expect("memory server")
            .chunks
            .contains_key(hash)
    }

    /// Appends a change to the log and hands it to every open stream;
    /// returns its sequence number.
    fn record(&self, state: &mut State, change: Change, audience: HashSet<UserId>) -> u64 {
        state.seq += 1;
        let logged = Logged {
            event: Event {
                seq: state.seq,
                at: Utc::now(),
                change,
            },
            audience: Arc::new(audience),
        };
        // Nobody listening is fine.
        let _ = self.changes.send(logged);
        state.seq
    }
}

impl MemoryApi {
    /// Runs `f` on the state with the caller's role in `object`; a
    /// non-member is told the object does not exist, as meshd does.
    fn with_object<T>(
        &self,
        object: ObjectId,
        f: impl FnOnce(&mut State, Role) -> RemoteResult<T>,
    ) -> RemoteResult<T> {
        let mut state = self.server.state.lock().expect("memory server");
        let role = state
            .objects
            .get(&object)
            .and_then(|s| s.members.get(&self.user).copied())
            .ok_or(RemoteError::NotFound)?;
        f(&mut state, role)
    }

    fn shown(&self, stored: &Stored) -> Option<MeshObject> {
        let role = *stored.members.get(&self.user)?;
        Some(MeshObject {
            role,
            ..stored.object.clone()
        })
    }

    fn members(stored: &Stored) -> HashSet<UserId> {
        stored.members.keys().copied().collect()
    }
}

fn forbidden(what: &str) -> RemoteError {
    RemoteError::Forbidden(format!("{what} needs a higher role"))
}

fn bad_request(message: String) -> RemoteError {
    RemoteError::Refused {
        status: 400,
        code: ErrorCode::BadRequest,
        message,
    }
}

fn missing_chunks(message: String) -> RemoteError {
    RemoteError::Refused {
        status: 400,
        code: ErrorCode::MissingChunks,
        message,
    }
}

/// Refuses a posted item the way meshd does: entry data a Live Folder
/// cannot hold, or content whose chunks were never uploaded.
fn check_posted(state: &State, kind: &str, item: &Item) -> RemoteResult<()> {
    for version in item.versions() {
        if kind == KIND_FOLDER {
            EntryData::from_body(&version.body)
                .map_err(|e| bad_request(format!("item {}: {e}", item.id())))?;
        }
        if version.sync.deleted {
            continue;
        }
        for chunk in version.body.enclosure.iter().flat_map(|c| &c.chunks) {
            match state.chunks.get(&chunk.hash) {
                Some(data) if data.len() == chunk.size as usize => {}
                Some(_) => {
                    return Err(bad_request(format!(
                        "item {}: chunk {} has another size",
                        item.id(),
                        chunk.hash
                    )));
                }
                None => {
                    return Err(missing_chunks(format!(
                        "item {} refers to chunks that are not uploaded: {}",
                        item.id(),
                        chunk.hash
                    )));
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl MeshApi for MemoryApi {
    fn server(&self) -> &str {
        "memory"
    }

    async fn objects(&self) -> RemoteResult<Vec<MeshObject>> {
        let state = self.server.state.lock().expect("memory server");
        Ok(state
            .objects
            .values()
            .filter_map(|s| self.shown(s))
            .collect())
    }

    async fn create_object(&self, name: &str, kind: &str) -> RemoteResult<MeshObject> {
        let mut state = self.server.state.lock().expect("memory server");
        let now = Utc::now();
        let object = MeshObject {
            id: ObjectId::generate(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            owner: self.user,
            owner_email: state.emails.get(&self.user).cloned().unwrap_or_default(),
            role: Role::Owner,
            created: now,
            updated: now,
        };
        let id = object.id;
        state.objects.insert(
            id,
            Stored {
                object: object.clone(),
                members: HashMap::from([(self.user, Role::Owner)]),
                entries: HashMap::new(),
                compacted: HashSet::new(),
                horizon: 0,
                awareness: BTreeMap::new(),
            },
        );
        self.server.record(
            &mut state,
            Change::ObjectChanged { object: id },
            HashSet::from([self.user]),
        );
        Ok(object)
    }

    async fn rename_object(&self, id: ObjectId, name: &str) -> RemoteResult<MeshObject> {
        self.with_object(id, |state, role| {
            if role != Role::Owner {
                return Err(forbidden("renaming a mesh object"));
            }
            let stored = state.objects.get_mut(&id).expect("checked");
            stored.object.name = name.to_owned();
            stored.object.updated = Utc::now();
            let shown = self.shown(stored).expect("a member");
            let audience = Self::members(stored);
            self.server
                .record(state, Change::ObjectChanged { object: id }, audience);
            Ok(shown)
        })
    }

    async fn delete_object(&self, id: ObjectId) -> RemoteResult<()> {
        self.with_object(id, |state, role| {
            if role != Role::Owner {
                return Err(forbidden("deleting a mesh object"));
            }
            let stored = state.objects.remove(&id).expect("checked");
            self.server.record(
                state,
                Change::ObjectDeleted { object: id },
                Self::members(&stored),
            );
            Ok(())
        })
    }

    async fn feed(&self, object: ObjectId, since: u64) -> RemoteResult<FeedPage> {
        self.with_object(object, |state, _| {
            let stored = &state.objects[&object];
            let since = if since < stored.horizon { 0 } else { since };
            let mut changed: Vec<&(u64, Item)> = stored
                .entries
                .iter()
                .filter(|(key, (seq, _))| *seq > since && !stored.compacted.contains(*key))
                .map(|(_, entry)| entry)
                .collect();
            changed.sort_by_key(|(seq, _)| *seq);
            let more = changed.len() > PAGE;
            changed.truncate(PAGE);
            Ok(FeedPage {
                since,
                until: changed.last().map_or(since, |(seq, _)| *seq),
                items: changed.into_iter().map(|(_, item)| item.clone()).collect(),
                more,
            })
        })
    }

    async fn post_items(&self, object: ObjectId, items: &[Item]) -> RemoteResult<Posted> {
        self.with_object(object, |state, role| {
            if !role.can_write() {
                return Err(forbidden("changing entries"));
            }
            let kind = state.objects[&object].object.kind.clone();
            for item in items {
                check_posted(state, &kind, item)?;
            }
            let latest = |state: &State| {
                let entries = state.objects[&object].entries.values();
                entries.map(|(seq, _)| *seq).max().unwrap_or(0)
            };
            let before = latest(state);
            let mut merged_items = Vec::with_capacity(items.len());
            for item in items {
                let stored = state.objects.get_mut(&object).expect("checked");
                let key = item.id().as_str().to_owned();
                let local = stored.entries.get(&key).map(|(_, item)| item);
                let merged =
                    feedsync::merge(local, item).map_err(|e| bad_request(e.to_string()))?;
                if merged.changed {
                    let audience = Self::members(stored);
                    let change = Change::EntryChanged {
                        object,
                        entry: key.clone(),
                    };
                    let seq = self.server.record(state, change, audience);
                    let stored = state.objects.get_mut(&object).expect("checked");
                    stored.compacted.remove(&key);
                    stored.entries.insert(key, (seq, merged.item.clone()));
                }
                merged_items.push(merged.item);
            }
            Ok(Posted {
                items: merged_items,
                covers: Some((before, latest(state))),
            })
        })
    }

    async fn missing(&self, hashes: Vec<Hash>) -> RemoteResult<Vec<Hash>> {
        let state = self.server.state.lock().expect("memory server");
        Ok(hashes
            .into_iter()
            .filter(|h| !state.chunks.contains_key(h))
            .collect())
    }

    /// This server sets no quota, so the object changes nothing.
    async fn put_chunks(&self, _object: ObjectId, chunks: Vec<(Hash, Bytes)>) -> RemoteResult<()> {
        if let Some((hash, _)) = chunks.iter().find(|(hash, data)| Hash::of(data) != *hash) {
            return Err(bad_request(format!("chunk {hash} has another hash")));
        }
        let mut state = self.server.state.lock().expect("memory server");
        state.chunks.extend(chunks);
        Ok(())
    }

    async fn get_chunk(&self, hash: Hash) -> RemoteResult<Bytes> {
        let state = self.server.state.lock().expect("memory server");
        state
            .chunks
            .get(&hash)
            .cloned()
            .ok_or(RemoteError::NotFound)
    }

    async fn events(&self, since: Option<u64>) -> RemoteResult<EventStream> {
        let receiver = self.server.changes.subscribe();
        let after = match since {
            Some(since) => since,
            None => self.server.state.lock().expect("memory server").seq,
        };
        let user = self.user;
        let stream = futures_util::stream::unfold(Some(receiver), move |receiver| async move {
            let mut receiver = receiver?;
            loop {
                match receiver.recv().await {
                    Ok(l) if l.event.seq > after && l.audience.contains(&user) => {
                        return Some((Ok(StreamMessage::Event(l.event)), Some(receiver)));
                    }
                    Ok(_) => {}
                    // A stream too slow to keep up is cut, as meshd would.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let cut = RemoteError::Offline("the stream fell behind".into());
                        return Some((Err(cut), None));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn renew_presence(&self) -> RemoteResult<PresenceLease> {
        Ok(PresenceLease {
            lease_ms: 30_000,
            renew_ms: 10_000,
        })
    }

    async fn sign_off(&self) -> RemoteResult<()> {
        let mut state = self.server.state.lock().expect("memory server");
        let left: Vec<ObjectId> = state
            .objects
            .iter_mut()
            .filter_map(|(id, s)| s.awareness.remove(&self.device).map(|_| *id))
            .collect();
        for object in left {
            let stored = &state.objects[&object];
            let change = Change::AwarenessChanged {
                object,
                entries: stored.awareness.values().cloned().collect(),
            };
            let audience = Self::members(stored);
            self.server.record(&mut state, change, audience);
        }
        Ok(())
    }

    async fn publish_awareness(
        &self,
        object: ObjectId,
        open: &FolderAwareness,
    ) -> RemoteResult<()> {
        self.with_object(object, |state, _| {
            let email = state.emails.get(&self.user).cloned().unwrap_or_default();
            let stored = state.objects.get_mut(&object).expect("checked");
            stored.awareness.insert(
                self.device,
                AwarenessEntry {
                    user: self.user,
                    email,
                    device: self.device,
                    device_name: self.device_name.clone(),
                    state: serde_json::to_value(open).expect("awareness encodes"),
                    updated: Utc::now(),
                },
            );
            let change = Change::AwarenessChanged {
                object,
                entries: stored.awareness.values().cloned().collect(),
            };
            let audience = Self::members(stored);
            self.server.record(state, change, audience);
            Ok(())
        })
    }

    async fn awareness(&self, object: ObjectId) -> RemoteResult<Awareness> {
        self.with_object(object, |state, _| {
            Ok(Awareness {
                object,
                entries: state.objects[&object].awareness.values().cloned().collect(),
            })
        })
    }

    /// The distinct chunks the live versions of the user's own objects
    /// refer to, as meshd counts them; this server sets no quota.
    async fn usage(&self) -> RemoteResult<AccountUsage> {
        let state = self.server.state.lock().expect("memory server");
        let mut sizes = HashMap::new();
        for stored in state.objects.values() {
            if stored.object.owner != self.user {
                continue;
            }
            for (_, item) in stored.entries.values() {
                for version in item.versions().filter(|v| !v.sync.deleted) {
                    for chunk in version.body.enclosure.iter().flat_map(|c| &c.chunks) {
                        sizes.insert(chunk.hash, u64::from(chunk.size));
                    }
                }
            }
        }
        Ok(AccountUsage {
            used: sizes.values().sum(),
            quota: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::feedsync::{Body, SyncId, Text};

    fn item(by: &DeviceId, title: &str) -> Item {
        let body = Body {
            title: Some(Text::plain(title.to_owned())),
            ..Body::default()
        };
        Item::create(SyncId::generate(), body, false, Utc::now(), &by.to_string())
    }

    #[tokio::test]
    async fn members_see_an_object_and_its_changes_and_nobody_else_does() {
        let server = MemoryServer::new();
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let (a, b) = (DeviceId::generate(), DeviceId::generate());
        let ann = server.sign_in(ann, a, "ann's laptop");
        let bob_api = server.sign_in(bob, b, "bob's laptop");
        let list = ann.create_object("Todo", "list").await.unwrap();
        assert!(bob_api.objects().await.unwrap().is_empty());
        assert!(matches!(
            bob_api.feed(list.id, 0).await,
            Err(RemoteError::NotFound)
        ));
        server.set_member(list.id, bob, Some(Role::Reader));
        let mut stream = bob_api.events(None).await.unwrap();
        assert!(matches!(
            bob_api.post_items(list.id, &[item(&b, "x")]).await,
            Err(RemoteError::Forbidden(_))
        ));
        let posted = item(&a, "buy milk");
        let merged = ann
            .post_items(list.id, std::slice::from_ref(&posted))
            .await
            .unwrap();
        assert_eq!(merged.items, vec![posted.clone()]);
        let Some(Ok(StreamMessage::Event(event))) = stream.next().await else {
            panic!("no event")
        };
        assert!(matches!(event.change, Change::EntryChanged { object, .. } if object == list.id));
        // The post was the feed's only change: from nothing to its event.
        assert_eq!(merged.covers, Some((0, event.seq)));
        let page = bob_api.feed(list.id, 0).await.unwrap();
        assert_eq!(page.items, vec![posted]);
        assert!(
            bob_api
                .feed(list.id, page.until)
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn concurrent_versions_merge_by_feedsync_and_unknown_chunks_are_refused() {
        let server = MemoryServer::new();
        let user = UserId::generate();
        let (a, b) = (DeviceId::generate(), DeviceId::generate());
        let on_a = server.sign_in(user, a, "a");
        let on_b = server.sign_in(user, b, "b");
        let list = on_a.create_object("Todo", "list").await.unwrap();
        let base = item(&a, "v1");
        on_a.post_items(list.id, std::slice::from_ref(&base))
            .await
            .unwrap();
        let (mut ours, mut theirs) = (base.clone(), base);
        ours.update(Body::default(), false, Utc::now(), &a.to_string());
        theirs.update(Body::default(), false, Utc::now(), &b.to_string());
        on_a.post_items(list.id, &[ours]).await.unwrap();
        let merged = on_b.post_items(list.id, &[theirs]).await.unwrap();
        assert_eq!(merged.items[0].conflicts.len(), 1, "{merged:?}");
        let (since, until) = merged.covers.unwrap();
        assert!(since < until, "{merged:?}");

        let mut with_content = item(&a, "file");
        let (content, _) = mesh_protocol::content::content_of(&b"not uploaded"[..]).unwrap();
        with_content.current.body.enclosure = Some(content);
        assert!(matches!(
            on_a.post_items(list.id, &[with_content]).await,
            Err(RemoteError::Refused {
                code: ErrorCode::MissingChunks,
                ..
            })
        ));
    }
}
