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
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Attr, Core, Invalidation, from_ns, to_ns};
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

/// The copy in `recovered/` of a file that was open for writing when it
/// could no longer reach the server: its handles read and write it from
/// then on, until they are closed.
pub struct Kept {
    pub path: PathBuf,
    /// Held while appending, so that two appends never land on one end.
    file: Mutex<File>,
    /// The file's attributes when it was kept.
    attr: Attr,
}

impl Kept {
    pub(crate) fn read(&self, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let file = self.file.lock().expect("kept copy");
        let mut buf = vec![0; size as usize];
        let got = super::content::read_full(&file, &mut buf, offset)?;
        buf.truncate(got);
        Ok(buf)
    }

    /// Writes `data` at `offset`, or at the end when `None` (`O_APPEND`).
    pub(crate) fn write(&self, offset: Option<u64>, data: &[u8]) -> FsResult<()> {
        let file = self.file.lock().expect("kept copy");
        let at = match offset {
            Some(at) => at,
            None => file.metadata()?.len(),
        };
        file.write_all_at(data, at)?;
        Ok(())
    }

    pub(crate) fn truncate(&self, size: u64) -> FsResult<()> {
        Ok(self.file.lock().expect("kept copy").set_len(size)?)
    }

    pub(crate) fn seek(&self, offset: u64, seek: super::content::Seek) -> FsResult<u64> {
        super::content::seek_in(&self.file.lock().expect("kept copy"), offset, seek)
    }

    pub(crate) fn sync(&self) -> FsResult<()> {
        Ok(self.file.lock().expect("kept copy").sync_all()?)
    }

    /// What `fstat` on a handle of the copy shows: the file's attributes
    /// when it was kept, with the copy's size and times.
    pub(crate) fn attr(&self) -> FsResult<Attr> {
        let meta = self.file.lock().expect("kept copy").metadata()?;
        let mtime = meta.modified()?;
        Ok(Attr {
            size: meta.len(),
            blocks: std::os::unix::fs::MetadataExt::blocks(&meta),
            nlink: 0,
            mtime,
            ctime: from_ns(to_ns(mtime).max(to_ns(self.attr.ctime))),
            ..self.attr.clone()
        })
    }
}

impl Core {
    /// Keeps the content of `n`, a file whose content changed here and was
    /// not pushed or one open for writing, in `recovered/FOLDER/PATH`; the
    /// handles writing it go on with that copy. Returns where, or `None`
    /// when there was nothing to keep.
    fn recover(&self, tx: &Transaction<'_>, n: &Node) -> FsResult<Option<PathBuf>> {
        let base = n.item.as_ref().map(|i| i.current.body.enclosure.as_ref());
        let changed_content = n.staged || base != Some(n.content.as_ref());
        let written = self.handles.writes(n.ino);
        if n.kind != EntryKind::File
            || n.removed
            || (!written && (n.dirty == 0 || !changed_content))
        {
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
        if written {
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let kept = std::sync::Arc::new(Kept {
                path: path.clone(),
                file: Mutex::new(file),
                attr: self.attr_of(tx, n)?,
            });
            let handles = self.handles.keep(n.ino, kept);
            tracing::info!(
                handles,
                path = %path.display(),
                "the file stays open for writing; what is written to it goes to the kept copy"
            );
        }
        Ok(Some(path))
    }

    /// The nodes of `object` with something to keep: those with unpushed
    /// changes, and files open for writing.
    fn to_keep(&self, tx: &Transaction<'_>, object: ObjectId) -> FsResult<Vec<Node>> {
        let mut nodes = meta::outbox_of(tx, object)?;
        for (ino, writes) in self.handles.open_inodes() {
            if writes
                && let Some(n) = meta::get(tx, ino)?
                && n.object == object
                && n.dirty == 0
            {
                nodes.push(n);
            }
        }
        Ok(nodes)
    }

    /// Before a Live Folder leaves the mount: keeps the content of its
    /// unpushed changes and of its files open for writing.
    pub(crate) fn recover_folder(&self, tx: &Transaction<'_>, object: ObjectId) -> FsResult<()> {
        for n in self.to_keep(tx, object)? {
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
            let root = meta::by_entry(tx, object, "")?;
            for mut n in self.to_keep(tx, object)? {
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
                        if let Some(root) = &root {
                            self.apply(tx, root, &base, &mut invalidations)?;
                        }
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
        self.invalidate_all(invalidations);
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
