//! The open file handles: each handle's file, how many handles are open
//! on each inode and how many of them write, and which inodes were
//! fsynced while open for writing and left alone since (the pusher sends
//! those without waiting for the last close). One lock keeps the three in
//! step. A handle whose file was kept in `recovered/` ([`Kept`]) no longer
//! counts as open on its inode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::OpenFile;
use super::recover::Kept;

#[derive(Default)]
struct Table {
    files: HashMap<u64, Arc<OpenFile>>,
    next: u64,
    /// Per inode: handles open, and how many of them write.
    open: HashMap<u64, (usize, usize)>,
    /// Inodes open for writing that were fsynced with no write since: when.
    fsynced: HashMap<u64, Instant>,
}

/// How long a file open for writing must be left alone after an fsync to
/// be sent before its last close. An fsync alone is no sign of a whole
/// version: an application may fsync part of an update (SQLite syncs its
/// journal before it writes the database), and a copy read then would be
/// a version that never existed. One that stopped writing after an fsync
/// has reached a point it can stand on.
pub const SETTLED: Duration = Duration::from_secs(1);

/// What a release left behind.
pub struct Released {
    pub file: Arc<OpenFile>,
    /// The inode has no handle open any more.
    pub last: bool,
}

#[derive(Default)]
pub struct Handles {
    table: Mutex<Table>,
}

impl Handles {
    /// Registers a new handle on `file`; returns its number.
    pub fn open(&self, file: OpenFile) -> u64 {
        let mut t = self.table.lock().expect("file handles");
        t.next += 1;
        let fh = t.next;
        let counts = t.open.entry(file.ino).or_default();
        counts.0 += 1;
        counts.1 += usize::from(file.writable);
        t.files.insert(fh, Arc::new(file));
        fh
    }

    pub fn get(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.table
            .lock()
            .expect("file handles")
            .files
            .get(&fh)
            .cloned()
    }

    /// Closes a handle (`None` for one not open).
    pub fn release(&self, fh: u64) -> Option<Released> {
        let mut t = self.table.lock().expect("file handles");
        let file = t.files.remove(&fh)?;
        if file.kept().is_some() {
            return Some(Released { file, last: false });
        }
        let counts = t.open.entry(file.ino).or_default();
        counts.0 -= 1;
        counts.1 -= usize::from(file.writable);
        let (open, writers) = *counts;
        if writers == 0 {
            t.fsynced.remove(&file.ino);
        }
        if open == 0 {
            t.open.remove(&file.ino);
        }
        Some(Released {
            file,
            last: open == 0,
        })
    }

    /// The handles writing `ino` go on with `kept` from now on, and no
    /// longer count as open on it; returns how many.
    pub fn keep(&self, ino: u64, kept: Arc<Kept>) -> usize {
        let mut t = self.table.lock().expect("file handles");
        let moved: Vec<Arc<OpenFile>> = t
            .files
            .values()
            .filter(|f| f.ino == ino && f.writable && f.kept().is_none())
            .cloned()
            .collect();
        for file in &moved {
            file.keep(kept.clone());
        }
        if let Some(counts) = t.open.get_mut(&ino) {
            counts.0 -= moved.len();
            counts.1 -= moved.len();
            if counts.0 == 0 {
                t.open.remove(&ino);
            }
        }
        t.fsynced.remove(&ino);
        moved.len()
    }

    pub fn fsynced(&self, ino: u64) {
        let mut t = self.table.lock().expect("file handles");
        t.fsynced.insert(ino, Instant::now());
    }

    /// The content of `ino` changed: an fsync before no longer counts.
    pub fn written(&self, ino: u64) {
        self.table
            .lock()
            .expect("file handles")
            .fsynced
            .remove(&ino);
    }

    /// Whether a handle that writes is open on `ino`: the pusher waits for
    /// the last one to close, unless the file was fsynced and then left
    /// alone for [`SETTLED`].
    pub fn held_for_write(&self, ino: u64) -> bool {
        let t = self.table.lock().expect("file handles");
        t.open.get(&ino).is_some_and(|(_, writers)| *writers > 0)
            && t.fsynced.get(&ino).is_none_or(|at| at.elapsed() < SETTLED)
    }

    /// The kept copy a handle on `ino` goes on with, if one does.
    pub fn kept_of(&self, ino: u64) -> Option<Arc<Kept>> {
        let t = self.table.lock().expect("file handles");
        t.files
            .values()
            .filter(|f| f.ino == ino)
            .find_map(|f| f.kept().cloned())
    }

    /// Whether a handle that writes is open on `ino`.
    pub fn writes(&self, ino: u64) -> bool {
        let t = self.table.lock().expect("file handles");
        t.open.get(&ino).is_some_and(|(_, writers)| *writers > 0)
    }

    pub fn is_open(&self, ino: u64) -> bool {
        self.table
            .lock()
            .expect("file handles")
            .open
            .contains_key(&ino)
    }

    /// Every inode with a handle open, and whether one of them writes.
    pub fn open_inodes(&self) -> Vec<(u64, bool)> {
        let t = self.table.lock().expect("file handles");
        t.open
            .iter()
            .map(|(ino, (_, writers))| (*ino, *writers > 0))
            .collect()
    }
}
