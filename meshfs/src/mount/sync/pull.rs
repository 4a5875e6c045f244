//! Bringing changes from the server: the Live Folder list, and each
//! folder's feed since its cursor, page by page. The core applies what
//! arrives (`mount::core::apply`); this only asks.

use mesh_protocol::api::ObjectId;

use super::Syncer;
use crate::mount::core::PageApplied;
use crate::mount::error::FsResult;
use crate::mount::meta;

impl Syncer {
    /// Brings the list of Live Folders up to date; returns their ids.
    pub async fn refresh_folders(&self) -> FsResult<Vec<ObjectId>> {
        loop {
            let made = self.core.folders_made();
            let objects = self.api().objects().await?;
            if let Some(ids) = self.core.apply_folders(objects, made)? {
                return Ok(ids);
            }
            // A folder made here meanwhile may be missing from the list.
        }
    }

    /// Applies every change of a Live Folder's feed since its cursor.
    pub async fn pull(&self, object: ObjectId) -> FsResult<()> {
        let _one_at_a_time = self.pulling.lock().await;
        loop {
            let since = self.core.query(|conn| Ok(meta::cursor(conn, object)?))?;
            let page = self.api().feed(object, since).await?;
            let applied = self.core.apply_page(object, since, &page)?;
            if applied == PageApplied::Applied && !page.more {
                return Ok(());
            }
        }
    }
}
