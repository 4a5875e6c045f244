//! Changes that can no longer reach the server are kept, never dropped. A
//! Live Folder that leaves the mount (unshared, or deleted elsewhere) or
//! becomes read-only (the user's role became reader) while this device has
//! unpushed changes in it: each changed file's content is copied to the
//! device's `recovered/` directory, under its path in the folder and a
//! conflicted copy's name, and the folder goes back to the server's state.
//! Every name on that path is made one path component
//! ([`crate::local::component`]), so nothing is written outside
//! `recovered/` whatever the server names things.

use mesh_protocol::api::ObjectId;
use mesh_protocol::folder::{EntryKind, MAX_NAME_LEN};
use rusqlite::Transaction;
use std::path::PathBuf;

use super::{Core, Invalidation};
use crate::local::component;
use crate::mount::error::FsResult;
use crate::mount::meta::{self, Node};

/// `report.docx` → `report (conflict from laptop 2026-11-27).docx`.
pub(crate) fn conflict_name(name: &str, device: &str, date: &str) -> String {
    let label = format!("conflict from {device} {date}");
    let named = match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({label}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({label})"),
    };
    // Keep within the name limit by shortening the stem.
    if named.len() <= MAX_NAME_LEN {
        return named;
    }
    let mut stem: String = name.chars().take(64).collect();
    while format!("{stem} ({label})").len() > MAX_NAME_LEN {
        stem.pop();
    }
    format!("{stem} ({label})")
}

impl Core {
    /// Keeps the content of `n`, a file whose content changed here and was
    /// not pushed, in `recovered/FOLDER/PATH`. Returns where, or `None`
    /// when there was nothing to keep.
    fn recover(&self, tx: &Transaction<'_>, n: &Node) -> FsResult<Option<PathBuf>> {
        let base = n.item.as_ref().map(|i| i.current.body.enclosure.as_ref());
        let changed_content = n.staged || base != Some(n.content.as_ref());
        if n.kind != EntryKind::File || n.removed || n.dirty == 0 || !changed_content {
            return Ok(None);
        }
        // The path below the Live Folder, and the folder's name.
        let mut dirs = Vec::new();
        let mut at = Self::node(tx, n.parent)?;
        while !at.is_folder_root() {
            dirs.push(at.name.clone());
            at = Self::node(tx, at.parent)?;
        }
        // Each name is one component below `recovered/`, whatever the
        // server called the folder or its entries.
        let mut dir = component::join(&self.recovered, &at.name)?;
        for name in dirs.iter().rev() {
            dir = component::join(&dir, name)?;
        }
        mesh_cli::private::create_dir(&dir)?;
        let today = chrono::Local::now().format("%Y-%m-%d").to_string();
        let path = component::join(
            &dir,
            &conflict_name(&n.name, &self.settings.device_name, &today),
        )?;
        if n.staged {
            std::fs::copy(self.staging_path(n.ino), &path)?;
        } else {
            let Some(content) = &n.content else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(content.length as usize);
            for chunk in &content.chunks {
                match self
                    .fetcher
                    .cache
                    .read(&chunk.hash, 0, chunk.size as usize)?
                {
                    Some(bytes) => out.extend_from_slice(&bytes),
                    // Uploaded already, so the server keeps it.
                    None => return Ok(None),
                }
            }
            mesh_cli::private::write_file(&path, &out)?;
        }
        meta::bump_state(tx, "recovered_files")?;
        tracing::warn!(
            path = %path.display(),
            "a change that can no longer reach the server is kept on this device"
        );
        Ok(Some(path))
    }

    /// Before a Live Folder leaves the mount: keeps the content of its
    /// unpushed changes.
    pub(crate) fn recover_folder(&self, tx: &Transaction<'_>, object: ObjectId) -> FsResult<()> {
        for n in meta::outbox_of(tx, object)? {
            self.recover(tx, &n)?;
        }
        Ok(())
    }

    /// The user may no longer write to the Live Folder of `object`: keeps
    /// the content of its unpushed changes and puts every changed entry
    /// back as the server last confirmed it (entries made here go).
    pub(crate) fn revert_unwritable(&self, object: ObjectId) -> FsResult<()> {
        let mut invalidations = Vec::new();
        self.transact(|tx| {
            for mut n in meta::outbox_of(tx, object)? {
                self.recover(tx, &n)?;
                invalidations.push(Invalidation::Entry {
                    parent: n.parent,
                    name: n.name.clone(),
                });
                invalidations.push(Invalidation::Inode(n.parent));
                invalidations.push(Invalidation::Inode(n.ino));
                if n.staged {
                    self.drop_staging(n.ino);
                }
                match n.item.take() {
                    Some(base) => {
                        n.dirty = 0;
                        n.staged = false;
                        meta::save(tx, &mut n)?;
                        self.apply(tx, object, &base, &mut invalidations)?;
                    }
                    None => {
                        for link in meta::links_of(tx, n.ino)? {
                            meta::delete(tx, link.ino)?;
                        }
                        meta::delete(tx, n.ino)?;
                    }
                }
            }
            Ok(())
        })?;
        for i in invalidations {
            self.invalidate(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conflict_names_say_where_and_when() {
        assert_eq!(
            super::conflict_name("report.docx", "laptop", "2026-11-27"),
            "report (conflict from laptop 2026-11-27).docx"
        );
        assert_eq!(
            super::conflict_name("notes", "phone", "2026-11-27"),
            "notes (conflict from phone 2026-11-27)"
        );
        let long = super::conflict_name(&"x".repeat(250), "phone", "2026-11-27");
        assert!(long.len() <= 255 && long.ends_with("(conflict from phone 2026-11-27)"));
    }
}
