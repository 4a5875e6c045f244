//! Awareness in the mount: which files this device has open in each Live
//! Folder (the sync layer publishes it), and which files other devices
//! have open, as the change stream reports their awareness documents
//! (`user.mesh.users`).

use mesh_protocol::api::ObjectId;
use mesh_protocol::live::{AwarenessEntry, FolderAwareness, OpenFile};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::Core;
use crate::mount::error::FsResult;
use crate::mount::meta::{self, Node, ROOT};

impl Core {
    /// What this device has open, for every Live Folder in the mount (an
    /// empty list for a folder with nothing open: the device is there).
    pub(crate) fn open_files(&self) -> FsResult<HashMap<ObjectId, FolderAwareness>> {
        let open = self.handles.open_inodes();
        self.query(|conn| {
            let mut out: HashMap<ObjectId, FolderAwareness> = meta::folder_roots(conn)?
                .into_iter()
                .map(|root| (root.object, FolderAwareness::default()))
                .collect();
            for (ino, writing) in open {
                let Some(node) = meta::get(conn, ino)? else {
                    continue;
                };
                if node.removed || node.sync_id.is_empty() {
                    continue;
                }
                let Some(path) = path_in_folder(conn, &node)? else {
                    continue;
                };
                if let Some(folder) = out.get_mut(&node.object) {
                    folder.open.push(OpenFile {
                        path,
                        entry: node.sync_id.clone(),
                        writing,
                    });
                }
            }
            for folder in out.values_mut() {
                folder.open.sort();
            }
            Ok(out)
        })
    }

    /// Has everything this device has open published again (the server
    /// may have lost it).
    pub(crate) fn request_republish(&self) {
        self.republish.store(true, Ordering::SeqCst);
        self.open_changed.notify_one();
    }

    /// Whether everything must be published again; clears the request.
    pub(crate) fn take_republish(&self) -> bool {
        self.republish.swap(false, Ordering::SeqCst)
    }

    /// Replaces what is known of `object`'s awareness document.
    pub(crate) fn set_awareness(&self, object: ObjectId, entries: Vec<AwarenessEntry>) {
        let mut docs = self.awareness.lock().expect("awareness");
        if entries.is_empty() {
            docs.remove(&object);
        } else {
            docs.insert(object, entries);
        }
    }

    /// `user.mesh.users`: who has this file open on another device, one
    /// line each (`EMAIL on DEVICE`, with `(writing)` when it writes).
    pub(crate) fn users_of(&self, ino: u64) -> FsResult<Vec<u8>> {
        let node = self.query(|conn| Self::node(conn, ino))?;
        let docs = self.awareness.lock().expect("awareness");
        let mut out = String::new();
        let me = self.device();
        for entry in docs.get(&node.object).into_iter().flatten() {
            if entry.device.to_string() == me {
                continue;
            }
            let Ok(state) = serde_json::from_value::<FolderAwareness>(entry.state.clone()) else {
                continue;
            };
            if let Some(file) = state.open.iter().find(|f| f.entry == node.sync_id) {
                let writing = if file.writing { " (writing)" } else { "" };
                out.push_str(&format!(
                    "{} on {}{writing}\n",
                    entry.email, entry.device_name
                ));
            }
        }
        Ok(out.into_bytes())
    }
}

/// `node`'s path below its Live Folder's root, by the names this device
/// shows; `None` for a root itself or a node cut off from its folder.
fn path_in_folder(conn: &rusqlite::Connection, node: &Node) -> FsResult<Option<String>> {
    let mut names = vec![node.name.clone()];
    let mut parent = node.parent;
    loop {
        if parent == ROOT {
            return Ok(None);
        }
        let Some(up) = meta::get(conn, parent)? else {
            return Ok(None);
        };
        if up.is_folder_root() {
            break;
        }
        names.push(up.name);
        parent = up.parent;
    }
    names.reverse();
    Ok(Some(names.join("/")))
}
