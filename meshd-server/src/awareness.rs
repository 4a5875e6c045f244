//! Awareness documents: per mesh object, what each device present in it
//! has published (for a Live Folder, the files it has open). A document
//! lives in memory for as long as its devices' presence leases; devices
//! publish again when they reconnect. Updates are coalesced: at most one
//! `awareness_changed` event per object per [`COALESCE`], carrying the
//! whole document, goes into the change log, and from there only to the
//! object's members.

use chrono::Utc;
use mesh_protocol::api::{Change, DeviceId, ObjectId, UserId};
use mesh_protocol::live::{Awareness, AwarenessEntry};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

use crate::db::Db;
use crate::notify::ChangeNotifier;
use crate::store::changes::{self, Audience};

/// How long updates gather before one event carries them all.
pub const COALESCE: Duration = Duration::from_millis(150);

#[derive(Default)]
struct Docs {
    objects: HashMap<ObjectId, BTreeMap<DeviceId, AwarenessEntry>>,
    /// Objects whose document changed since the last event.
    dirty: HashSet<ObjectId>,
}

/// Every object's awareness document; cloning shares them.
#[derive(Clone, Default)]
pub struct AwarenessDocs {
    docs: Arc<Mutex<Docs>>,
    changed: Arc<Notify>,
}

impl AwarenessDocs {
    /// Starts the task that writes coalesced changes to the change log.
    pub fn start(
        db: Db,
        notifier: Arc<dyn ChangeNotifier>,
        mut shutdown: watch::Receiver<bool>,
    ) -> AwarenessDocs {
        let docs = AwarenessDocs::default();
        let flusher = docs.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = flusher.changed.notified() => {}
                    _ = shutdown.changed() => return,
                }
                tokio::time::sleep(COALESCE).await;
                let documents = flusher.take_dirty();
                let result = db
                    .write(move |tx| {
                        for (object, entries) in documents {
                            changes::record(
                                tx,
                                Audience::Object(object),
                                &Change::AwarenessChanged { object, entries },
                            )?;
                        }
                        changes::head(tx).map_err(anyhow::Error::from)
                    })
                    .await;
                match result {
                    Ok(head) => notifier.publish(head),
                    Err(e) => tracing::warn!(error = %e, "recording awareness failed"),
                }
            }
        });
        docs
    }

    fn edit(&self, f: impl FnOnce(&mut Docs)) {
        let mut docs = self.docs.lock().expect("awareness");
        let before = docs.dirty.len();
        f(&mut docs);
        if docs.dirty.len() != before {
            self.changed.notify_one();
        }
    }

    /// Sets `entry.device`'s state in `object`'s document.
    pub fn publish(&self, object: ObjectId, entry: AwarenessEntry) {
        self.edit(|docs| {
            let doc = docs.objects.entry(object).or_default();
            let same = doc
                .get(&entry.device)
                .is_some_and(|old| old.state == entry.state);
            doc.insert(entry.device, entry);
            if !same {
                docs.dirty.insert(object);
            }
        });
    }

    /// Removes `device`'s entry from `object`'s document.
    pub fn withdraw(&self, object: ObjectId, device: DeviceId) {
        self.edit(|docs| {
            if let Some(doc) = docs.objects.get_mut(&object)
                && doc.remove(&device).is_some()
            {
                docs.dirty.insert(object);
            }
        });
    }

    /// Removes `device` from every document (its presence ended).
    pub fn forget_device(&self, device: DeviceId) {
        self.edit(|docs| {
            let Docs { objects, dirty } = docs;
            for (object, doc) in objects.iter_mut() {
                if doc.remove(&device).is_some() {
                    dirty.insert(*object);
                }
            }
        });
    }

    /// Removes every device of `user` from `object`'s document (the user
    /// is no longer a member).
    pub fn forget_user(&self, object: ObjectId, user: UserId) {
        self.edit(|docs| {
            if let Some(doc) = docs.objects.get_mut(&object) {
                let before = doc.len();
                doc.retain(|_, e| e.user != user);
                if doc.len() != before {
                    docs.dirty.insert(object);
                }
            }
        });
    }

    /// Drops `object`'s document (the object was deleted); nobody is left
    /// to tell.
    pub fn forget_object(&self, object: ObjectId) {
        let mut docs = self.docs.lock().expect("awareness");
        docs.objects.remove(&object);
        docs.dirty.remove(&object);
    }

    /// `object`'s document now.
    pub fn document(&self, object: ObjectId) -> Awareness {
        let docs = self.docs.lock().expect("awareness");
        Awareness {
            object,
            entries: docs
                .objects
                .get(&object)
                .map(|doc| doc.values().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// The documents changed since the last call, emptied ones included.
    fn take_dirty(&self) -> Vec<(ObjectId, Vec<AwarenessEntry>)> {
        let mut docs = self.docs.lock().expect("awareness");
        let dirty = std::mem::take(&mut docs.dirty);
        let mut out = Vec::with_capacity(dirty.len());
        for object in dirty {
            let entries: Vec<AwarenessEntry> = docs
                .objects
                .get(&object)
                .map(|doc| doc.values().cloned().collect())
                .unwrap_or_default();
            if entries.is_empty() {
                docs.objects.remove(&object);
            }
            out.push((object, entries));
        }
        out
    }
}

/// A new entry for a device's state, stamped now.
pub fn entry(
    user: UserId,
    email: String,
    device: DeviceId,
    device_name: String,
    state: serde_json::Value,
) -> AwarenessEntry {
    AwarenessEntry {
        user,
        email,
        device,
        device_name,
        state,
        updated: Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state_of(docs: &AwarenessDocs, object: ObjectId) -> Vec<serde_json::Value> {
        docs.document(object)
            .entries
            .into_iter()
            .map(|e| e.state)
            .collect()
    }

    #[test]
    fn publishing_coalesces_to_the_latest_state_per_device() {
        let docs = AwarenessDocs::default();
        let (object, user, device) = (
            ObjectId::generate(),
            UserId::generate(),
            DeviceId::generate(),
        );
        for n in 0..50 {
            docs.publish(
                object,
                entry(user, "a@x".into(), device, "laptop".into(), json!(n)),
            );
        }
        let dirty = docs.take_dirty();
        assert_eq!(dirty.len(), 1, "one event for fifty updates");
        assert_eq!(dirty[0].1[0].state, json!(49));
        assert!(docs.take_dirty().is_empty());
        // Publishing the same state again is not news.
        docs.publish(
            object,
            entry(user, "a@x".into(), device, "laptop".into(), json!(49)),
        );
        assert!(docs.take_dirty().is_empty());
    }

    #[test]
    fn entries_go_with_their_device_user_or_object() {
        let docs = AwarenessDocs::default();
        let (a, b) = (ObjectId::generate(), ObjectId::generate());
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let (laptop, phone, desk) = (
            DeviceId::generate(),
            DeviceId::generate(),
            DeviceId::generate(),
        );
        docs.publish(
            a,
            entry(alice, "a@x".into(), laptop, "laptop".into(), json!("a1")),
        );
        docs.publish(
            b,
            entry(alice, "a@x".into(), laptop, "laptop".into(), json!("b1")),
        );
        docs.publish(
            a,
            entry(alice, "a@x".into(), phone, "phone".into(), json!("a2")),
        );
        docs.publish(
            a,
            entry(bob, "b@x".into(), desk, "desk".into(), json!("a3")),
        );
        docs.take_dirty();

        docs.forget_device(laptop);
        assert_eq!(state_of(&docs, b), Vec::<serde_json::Value>::new());
        assert_eq!(state_of(&docs, a).len(), 2);
        let dirty: HashSet<ObjectId> = docs.take_dirty().into_iter().map(|(o, _)| o).collect();
        assert_eq!(dirty, HashSet::from([a, b]), "both documents changed");

        docs.forget_user(a, alice);
        assert_eq!(state_of(&docs, a), vec![json!("a3")]);
        docs.withdraw(a, desk);
        assert!(state_of(&docs, a).is_empty());
        docs.forget_object(a);
        assert_eq!(
            docs.take_dirty().len(),
            0,
            "a deleted object has nobody to tell"
        );
    }
}
