//! What the unit tests of the core and of sync build a device from: a
//! core with its metadata cache, chunk cache and staging area in one
//! directory, talking to the API it is given.

use std::path::Path;
use std::sync::Arc;

use super::namespace::NewNode;
use super::{Core, LocalDirs, Settings};
use crate::client::MeshApi;
use crate::mount::chunk_cache::ChunkCache;
use crate::mount::fetch::Fetcher;
use crate::mount::meta;
use mesh_protocol::folder::EntryKind;

/// How long a test's reads wait for the network (a mount's wait is
/// [`crate::mount::fetch::READER_WAIT`]).
pub(crate) const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A core keeping everything under `dir`; the kernel's invalidations are
/// dropped.
pub(crate) fn core_in(
    dir: &Path,
    api: Arc<dyn MeshApi>,
    runtime: tokio::runtime::Handle,
    settings: Settings,
) -> Core {
    let cache = ChunkCache::open(&dir.join("chunks"), 1 << 30, Default::default()).unwrap();
    let (invalidations, _) = std::sync::mpsc::channel();
    let mut fetcher = Fetcher::new(cache, api.clone());
    fetcher.reader_wait = READER_WAIT;
    Core::new(
        meta::open(&dir.join("meta.sqlite3")).unwrap(),
        Arc::new(fetcher),
        LocalDirs {
            staging: dir.join("staging"),
            recovered: dir.join("recovered"),
        },
        api,
        runtime,
        settings,
        invalidations,
    )
    .unwrap()
}

/// A new node of `kind` as `mknod`/`mkdir` would ask for it.
pub(crate) fn new_node(kind: EntryKind) -> NewNode<'static> {
    NewNode {
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 1000,
        gid: 1000,
        rdev: 0,
        target: None,
    }
}

impl Core {
    /// The whole listing of directory `ino`, `.` and `..` first.
    pub(crate) fn list_all(&self, ino: u64) -> crate::mount::error::FsResult<Vec<super::DirEntry>> {
        let mut all = Vec::new();
        self.readdir(ino, 0, |e| {
            all.push(e);
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(all)
    }
}
