//! Pinning ("always keep on this device"): a file or a whole folder —
//! recursively, and for files added to it later — is fetched and kept in
//! the chunk cache whatever its limit. A node's own setting wins over its
//! parent's, so a file can be unpinned inside a pinned folder. Pins are
//! this device's own choice and never synced.

use mesh_protocol::content::Hash;
use rusqlite::Connection;

use super::Core;
use crate::mount::error::FsResult;
use crate::mount::meta::{self, Node, ROOT};

impl Core {
    /// Whether `n` is pinned, by its own setting or its nearest ancestor's.
    pub(crate) fn is_pinned(conn: &Connection, n: &Node) -> FsResult<bool> {
        let mut at = n.clone();
        loop {
            if let Some(pinned) = at.pinned {
                return Ok(pinned);
            }
            if at.parent == ROOT {
                return Ok(meta::root_pinned(conn)?);
            }
            at = Self::node(conn, at.parent)?;
        }
    }

    /// Whether `ino` (which may be the root) is pinned.
    pub fn pinned(&self, ino: u64) -> FsResult<bool> {
        self.query(|conn| {
            if ino == ROOT {
                return Ok(meta::root_pinned(conn)?);
            }
            Self::is_pinned(conn, &Self::node(conn, ino)?)
        })
    }

    /// Pins or unpins `ino` and everything below it, then starts fetching
    /// what is now pinned and not on this device.
    pub fn set_pinned(&self, ino: u64, pinned: bool) -> FsResult<()> {
        self.transact(|tx| {
            meta::clear_pins_below(tx, ino)?;
            if ino == ROOT {
                meta::set_state(tx, "root_pinned", i64::from(pinned))?;
                return Ok(());
            }
            let mut n = Self::node(tx, ino)?;
            n.pinned = None;
            let inherited = if n.parent == ROOT {
                meta::root_pinned(tx)?
            } else {
                Self::is_pinned(tx, &Self::node(tx, n.parent)?)?
            };
            n.pinned = (pinned != inherited).then_some(pinned);
            meta::save(tx, &mut n)?;
            Ok(())
        })?;
        tracing::info!(ino, pinned, "pin changed");
        self.refresh_kept()?;
        self.pins_changed.notify_one();
        Ok(())
    }

    /// Tells the chunk cache which chunks pinned files need; returns those
    /// not on this device yet.
    pub(crate) fn refresh_kept(&self) -> FsResult<Vec<Hash>> {
        let kept = self.query(|conn| Ok(meta::kept_chunks(conn)?))?;
        Ok(self.fetcher.cache.keep(kept))
    }

    /// Fetches every pinned chunk not on this device, a few at a time.
    pub(crate) async fn fetch_pinned(&self) -> FsResult<()> {
        use futures_util::StreamExt;
        let missing = self.refresh_kept()?;
        if missing.is_empty() {
            return Ok(());
        }
        tracing::info!(chunks = missing.len(), "fetching pinned content");
        let mut fetches = futures_util::stream::iter(missing)
            .map(|hash| self.fetcher.ensure(hash, true))
            .buffer_unordered(4);
        while let Some(result) = fetches.next().await {
            result?;
        }
        Ok(())
    }
}
