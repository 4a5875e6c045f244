//! File content: open, create, read, write, truncate, fsync and release.
//!
//! A file being written lives in the staging area (`staging/<ino>`), a whole
//! local copy that survives crashes and unmounts; it is chunked and uploaded
//! by the pusher once closed or fsynced. Otherwise content is read from its
//! chunks, fetched on demand into the chunk cache with read-ahead. A handle
//! whose file was kept in `recovered/` reads and writes that copy.

use bytes::Bytes;
use mesh_protocol::content::{ChunkRef, ContentRef};
use mesh_protocol::folder::EntryKind;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::attrs::{SetAttr, SetIdBits};
use super::handles::Released;
use super::namespace::NewNode;
use super::recover::Kept;
use super::{Attr, Core, now_ns};
use crate::mount::error::{FsError, FsResult};
use crate::mount::meta::{self, Node, ROOT};

/// How many chunks ahead a sequential reader's next chunks are fetched.
const READ_AHEAD_CHUNKS: usize = 8;

/// How far a run of reads, each starting where the last one ended, must
/// reach before its reader counts as sequential (whole chunks and
/// read-ahead); until then its reads are random ones, fetched as verified
/// slices. A run from the start of the file is sequential at once. (An
/// application's 4 KiB read across a page boundary reaches meshfs as two
/// reads, the second continuing the first.)
const SEQUENTIAL_RUN: u64 = 128 << 10;

/// How one handle is being read: where its last read ended and where the
/// run of reads that led there began.
#[derive(Default)]
struct ReadPattern {
    next: AtomicU64,
    run_start: AtomicU64,
}

impl ReadPattern {
    /// Records a read of `offset..end`; whether it is part of a sequential
    /// reading of the file.
    fn sequential(&self, offset: u64, end: u64) -> bool {
        if self.next.swap(end, Ordering::Relaxed) != offset {
            self.run_start.store(offset, Ordering::Relaxed);
        }
        let start = self.run_start.load(Ordering::Relaxed);
        start == 0 || end.saturating_sub(start) >= SEQUENTIAL_RUN
    }
}

/// An open file handle.
pub struct OpenFile {
    pub ino: u64,
    pub writable: bool,
    /// How it is being read, to tell sequential reading from random.
    reads: ReadPattern,
    /// The content reference last read through this handle, as stored and
    /// decoded: a large file's has thousands of chunks, so each read
    /// compares the stored text instead of decoding it again.
    content: Mutex<Option<(String, Arc<ContentRef>)>>,
    /// Set when the file could no longer reach the server while this
    /// handle wrote it: the copy kept in `recovered/` it goes on with.
    kept: OnceLock<Arc<Kept>>,
}

impl OpenFile {
    pub(crate) fn kept(&self) -> Option<&Arc<Kept>> {
        self.kept.get()
    }

    pub(crate) fn keep(&self, kept: Arc<Kept>) {
        let _ = self.kept.set(kept);
    }

    /// The decoded content reference for `stored`.
    fn content(&self, stored: String) -> FsResult<Arc<ContentRef>> {
        let mut cached = self.content.lock().expect("content");
        if let Some((text, content)) = cached.as_ref()
            && *text == stored
        {
            return Ok(content.clone());
        }
        let content: Arc<ContentRef> = Arc::new(
            serde_json::from_str(&stored).map_err(|e| FsError::Io(std::io::Error::other(e)))?,
        );
        *cached = Some((stored, content.clone()));
        Ok(content)
    }
}

/// Numbers the temporary files that staging copies are built in, so that
/// two threads staging one file never write into one temporary file.
static STAGING_TMP: AtomicU64 = AtomicU64::new(0);

/// How a change of a file's content ended.
#[derive(PartialEq)]
enum Changed {
    /// Made; whether the file's mode changed with it.
    Done { mode_changed: bool },
    /// The staging copy went meanwhile: stage again.
    Again,
    /// The handle changing it was moved to a kept copy meanwhile.
    Kept,
}

/// How a staging copy's placing ended.
#[derive(PartialEq)]
enum Placed {
    Ours,
    /// Another writer staged the file first.
    Theirs,
    /// The file's content changed while it was copied.
    Stale,
}

impl Core {
    pub(crate) fn staging_path(&self, ino: u64) -> PathBuf {
        self.staging.join(ino.to_string())
    }

    /// Drops a node's staging copy once the running transaction commits
    /// (call it only inside [`Core::transact`]).
    pub(crate) fn drop_staging(&self, ino: u64) {
        self.unstaged.lock().expect("unstaged").push(ino);
    }

    /// The blocks a staging copy takes on the local disk (`None` when it
    /// is gone: pushed and dropped meanwhile).
    pub(crate) fn staged_blocks(&self, ino: u64) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(self.staging_path(ino))
            .ok()
            .map(|m| m.blocks())
    }

    fn open_staging(&self, ino: u64) -> FsResult<File> {
        Ok(OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.staging_path(ino))?)
    }

    /// Makes a local, writable copy of a file's content (empty when
    /// `empty`), unless it already has one. The copy is put in place in the
    /// same transaction that records it, so that nothing that removes
    /// staging copies (always inside a transaction) can slip in between.
    fn stage(&self, ino: u64, empty: bool) -> FsResult<()> {
        // A version that arrives while the copy is made makes it stale:
        // then copy again, from the new one.
        while !self
            .stage_once(ino, empty)
            .inspect_err(|e| self.note_full_disk(e))?
        {}
        Ok(())
    }

    /// One try of [`Core::stage`]: whether the node is staged now.
    fn stage_once(&self, ino: u64, empty: bool) -> FsResult<bool> {
        let n = self.query(|conn| Self::node(conn, ino))?;
        if n.kind != EntryKind::File {
            return Err(FsError::Invalid("not a regular file".into()));
        }
        if n.staged {
            return Ok(true);
        }
        let tmp = self.staging.join(format!(
            "{ino}.{}.part",
            STAGING_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = mesh_cli::private::create_file(&tmp)?;
        let mut copied_bytes = false;
        if !empty && let Some(content) = &n.content {
            copied_bytes = content.length > 0;
            let mut fill = || -> FsResult<()> {
                // Each chunk within a reader's wait of its own: a big file
                // can take long to copy, but never stalls for longer.
                for chunk in &content.chunks {
                    let deadline = self.fetcher.reader_deadline();
                    file.write_all(&self.chunk_bytes(chunk, 0, chunk.size as usize, deadline)?)?;
                }
                Ok(())
            };
            if let Err(e) = fill() {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        // An empty copy has nothing to lose in a power cut: what is later
        // written to it is synced when the application syncs it.
        if copied_bytes {
            file.sync_all()?;
        }
        let copied = n.content;
        let placed = self.transact(|tx| {
            let mut n = Self::node(tx, ino)?;
            if n.staged {
                // Staged by someone else meanwhile: theirs stands.
                return Ok(Placed::Theirs);
            }
            if !empty && n.content != copied {
                return Ok(Placed::Stale);
            }
            std::fs::rename(&tmp, self.staging_path(ino))?;
            n.staged = true;
            meta::save(tx, &mut n)?;
            Ok(Placed::Ours)
        });
        if !matches!(placed, Ok(Placed::Ours)) {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(placed? != Placed::Stale)
    }

    /// Changes a file's bytes in its staging copy with `op` and records the
    /// change (`size` gives the new size from the old) in one transaction:
    /// a push that settles meanwhile may drop the copy (its content is on
    /// the server), and then the file is staged again and `op` runs on the
    /// new copy, never on a removed one. When `by`, the handle changing it,
    /// is moved to a kept copy before the change is made, nothing changes
    /// and the answer is `false`: the change belongs in that copy.
    fn change_content(
        &self,
        ino: u64,
        by: Option<&OpenFile>,
        empty: bool,
        set_id: SetIdBits,
        op: impl Fn(&File, u64) -> std::io::Result<()>,
        size: impl Fn(u64) -> u64,
    ) -> FsResult<bool> {
        // Once more if the disk was full: that emptied the chunk cache.
        match self.try_change_content(ino, by, empty, set_id, &op, &size) {
            Err(e) if e.errno() == libc::ENOSPC => {
                self.try_change_content(ino, by, empty, set_id, &op, &size)
            }
            done => done,
        }
    }

    fn try_change_content(
        &self,
        ino: u64,
        by: Option<&OpenFile>,
        empty: bool,
        set_id: SetIdBits,
        op: &impl Fn(&File, u64) -> std::io::Result<()>,
        size: &impl Fn(u64) -> u64,
    ) -> FsResult<bool> {
        // Kept is set inside a transaction, so checked inside one it
        // cannot change before the change is made.
        let kept = || by.is_some_and(|f| f.kept().is_some());
        loop {
            let mut created = false;
            let changed = self.transact(|tx| {
                if kept() {
                    return Ok(Changed::Kept);
                }
                let mut n = Self::node(tx, ino)?;
                let staging = if n.staged {
                    self.open_staging(ino)?
                } else if n.kind == EntryKind::File
                    && (empty || n.content.as_ref().is_none_or(|c| c.length == 0))
                {
                    // Nothing to copy (a new file's first write): its
                    // staging copy is made with the change, in place.
                    created = true;
                    n.staged = true;
                    mesh_cli::private::create_file(&self.staging_path(ino))?
                } else {
                    return Ok(Changed::Again);
                };
                op(&staging, n.size)?;
                n.size = size(n.size);
                let now = now_ns();
                n.mtime = now;
                n.ctime = now;
                let mode = set_id.applied(n.kind, n.mode);
                let mode_changed = mode != n.mode;
                n.mode = mode;
                self.mark_changed(tx, &mut n);
                meta::save(tx, &mut n)?;
                Ok(Changed::Done { mode_changed })
            });
            if changed.is_err() && created {
                let _ = std::fs::remove_file(self.staging_path(ino));
            }
            let changed = changed?;
            match changed {
                Changed::Done { mode_changed } => {
                    // A write's reply carries no attributes: the kernel
                    // learns of the dropped bits by asking again.
                    if mode_changed {
                        self.invalidate(super::Invalidation::Inode(ino));
                    }
                    return Ok(true);
                }
                Changed::Kept => return Ok(false),
                // Not staged (the first write, or pushed and dropped since).
                Changed::Again => {
                    if let Err(e) = self.stage(ino, empty) {
                        return if kept() { Ok(false) } else { Err(e) };
                    }
                }
            }
        }
    }

    fn register(&self, ino: u64, writable: bool) -> u64 {
        let fh = self.handles.open(OpenFile {
            ino,
            writable,
            reads: ReadPattern::default(),
            content: Mutex::default(),
            kept: OnceLock::new(),
        });
        self.open_changed.notify_one();
        fh
    }

    fn handle(&self, fh: u64) -> FsResult<Arc<OpenFile>> {
        self.handles
            .get(fh)
            .ok_or(FsError::Invalid("unknown file handle".into()))
    }

    /// Opens a file; `truncate` empties it (O_TRUNC).
    pub fn open(&self, ino: u64, writable: bool, truncate: bool) -> FsResult<u64> {
        if ino == ROOT {
            return Err(FsError::IsDir);
        }
        let n = self.query(|conn| Self::node(conn, ino))?;
        match n.kind {
            EntryKind::Dir => return Err(FsError::IsDir),
            EntryKind::File => {}
            _ => {
                return Err(FsError::Invalid(
                    "only regular files are opened here".into(),
                ));
            }
        }
        if writable {
            self.query(|conn| self.writable(conn, &n))?;
            if truncate && n.size > 0 {
                self.change_content(ino, None, true, SetIdBits::Keep, |f, _| f.set_len(0), |_| 0)?;
            } else {
                self.stage(ino, truncate)?;
            }
        }
        Ok(self.register(ino, writable))
    }

    /// Creates and opens a new, empty file.
    pub fn create(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(Attr, u64)> {
        let mut fh = 0;
        // Open for writing before the transaction commits, so the pusher
        // never sends the file empty before it is written. It has no
        // staging copy until its first write (a file created and closed
        // empty, as `touch` or a lock file is, never needs one).
        let attr = self.make_node_with(
            parent,
            name,
            NewNode {
                kind: EntryKind::File,
                mode,
                uid,
                gid,
                rdev: 0,
                target: None,
            },
            |n| fh = self.register(n.ino, true),
        )?;
        Ok((attr, fh))
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let file = self.handle(fh)?;
        let read = self.read_in_mount(&file, offset, size);
        // Kept meanwhile: the node may have gone, the copy has it all.
        match file.kept() {
            Some(kept) => kept.read(offset, size).map(Bytes::from),
            None => read,
        }
    }

    /// `lseek(fd, offset, SEEK_DATA or SEEK_HOLE)` on handle `fh` (the
    /// kernel answers the other whences itself). A file with a local copy
    /// has that copy's holes; content read from chunks is all data, as a
    /// filesystem without hole tracking answers.
    pub fn seek(&self, fh: u64, offset: u64, seek: Seek) -> FsResult<u64> {
        let file = self.handle(fh)?;
        if let Some(kept) = file.kept() {
            return kept.seek(offset, seek);
        }
        let (size, staged, _) = self
            .query(|conn| Ok(meta::read_state(conn, file.ino)?))?
            .ok_or(FsError::NotFound)?;
        if staged {
            match self.open_staging(file.ino) {
                Ok(staging) => return seek_in(&staging, offset, seek),
                // Pushed and dropped since: its content is its chunks.
                Err(FsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    let size = self.getattr(file.ino)?.size;
                    return seek_in_data(size, offset, seek);
                }
                Err(e) => return Err(e),
            }
        }
        seek_in_data(size, offset, seek)
    }

    /// The attributes of `ino` as `fstat` on handle `fh` shows them: those
    /// of the kept copy when the handle goes on with one, or when the file
    /// left the mount and a handle goes on with its copy (the kernel's
    /// `fstat` names no handle). Inode numbers are never reused.
    pub fn getattr_open(&self, ino: u64, fh: Option<u64>) -> FsResult<Attr> {
        if let Some(kept) = self.kept_handle(ino, fh) {
            return kept.attr();
        }
        match self.getattr(ino) {
            Err(FsError::NotFound) => match self.handles.kept_of(ino) {
                Some(kept) => kept.attr(),
                None => Err(FsError::NotFound),
            },
            found => found,
        }
    }

    /// `setattr` through handle `fh`: a handle that goes on with a kept
    /// copy truncates that copy (`ftruncate`); the file's other attributes
    /// are no longer the mount's to change.
    pub fn setattr_open(&self, ino: u64, fh: Option<u64>, set: SetAttr) -> FsResult<Attr> {
        match self.kept_handle(ino, fh) {
            Some(kept) => {
                if let Some(size) = set.size {
                    kept.truncate(size)?;
                }
                kept.attr()
            }
            None => self.setattr(ino, set),
        }
    }

    /// The kept copy handle `fh` on `ino` goes on with, if it does.
    fn kept_handle(&self, ino: u64, fh: Option<u64>) -> Option<Arc<Kept>> {
        let file = self.handles.get(fh?)?;
        (file.ino == ino).then(|| file.kept().cloned()).flatten()
    }

    fn read_in_mount(&self, file: &OpenFile, offset: u64, size: u32) -> FsResult<Bytes> {
        if let Some(kept) = file.kept() {
            return kept.read(offset, size).map(Bytes::from);
        }
        let (mut file_size, staged, mut stored) = self
            .query(|conn| Ok(meta::read_state(conn, file.ino)?))?
            .ok_or(FsError::NotFound)?;
        let mut end = offset.saturating_add(u64::from(size)).min(file_size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        if staged {
            match self.open_staging(file.ino) {
                Ok(staging) => {
                    let mut buf = vec![0; (end - offset) as usize];
                    let got = read_full(&staging, &mut buf, offset)?;
                    buf.truncate(got);
                    return Ok(buf.into());
                }
                // Pushed and dropped since: read what was pushed, from its
                // chunks (a copy that is still recorded but gone is an
                // error, not a loop).
                Err(FsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    let (size_now, still_staged, stored_now) = self
                        .query(|conn| Ok(meta::read_state(conn, file.ino)?))?
                        .ok_or(FsError::NotFound)?;
                    if still_staged {
                        return Err(FsError::Io(e));
                    }
                    (file_size, stored) = (size_now, stored_now);
                    end = offset.saturating_add(u64::from(size)).min(file_size);
                    if offset >= end {
                        return Ok(Bytes::new());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let Some(content) = stored.map(|s| file.content(s)).transpose()? else {
            return Ok(Bytes::new());
        };
        let covering: Vec<(u64, ChunkRef)> =
            content.chunks_covering(offset, end - offset).collect();
        let sequential = file.reads.sequential(offset, end);
        if sequential {
            let last = covering.last().map(|(at, _)| *at);
            let ahead: Vec<_> = content
                .chunks_covering(last.unwrap_or(0), u64::MAX)
                .skip(1)
                .take(READ_AHEAD_CHUNKS)
                .map(|(_, c)| c.hash)
                .collect();
            let fetcher = self.fetcher.clone();
            let _guard = self.runtime.enter();
            fetcher.prefetch(ahead);
        }
        let patient = self.health.is_online();
        let deadline = self.fetcher.reader_deadline();
        // A random read of chunks not on this device fetches only the
        // verified slices it needs, not whole chunks.
        if !sequential
            && covering
                .iter()
                .any(|(_, c)| !self.fetcher.cache.contains(&c.hash))
        {
            let slices = covering.iter().map(|(at, chunk)| {
                let from = offset.max(*at) - at;
                let to = end.min(at + u64::from(chunk.size)) - at;
                self.ranged(chunk, from, to - from, deadline)
            });
            let parts = self
                .runtime
                .block_on(futures_util::future::try_join_all(slices))?;
            return Ok(joined(parts));
        }
        self.runtime.block_on(async {
            let fetches = covering
                .iter()
                .map(|(_, c)| self.fetcher.ensure_by(c.hash, patient, deadline));
            futures_util::future::try_join_all(fetches).await
        })?;
        let parts = covering
            .into_iter()
            .map(|(at, chunk)| {
                let from = offset.max(at) - at;
                let to = end.min(at + u64::from(chunk.size)) - at;
                self.chunk_bytes(&chunk, from, (to - from) as usize, deadline)
            })
            .collect::<FsResult<Vec<_>>>()?;
        Ok(joined(parts))
    }

    /// `len` bytes of a chunk from `offset`: from the cache, or else a
    /// verified slice from the server.
    async fn ranged(
        &self,
        chunk: &ChunkRef,
        offset: u64,
        len: u64,
        deadline: tokio::time::Instant,
    ) -> FsResult<Bytes> {
        if let Some(bytes) = self.fetcher.cache.read(&chunk.hash, offset, len as usize)? {
            return Ok(bytes);
        }
        self.fetcher
            .slice_by(chunk.hash, u64::from(chunk.size), offset, len, deadline)
            .await
    }

    /// `len` bytes of a chunk from `offset`, fetched by `deadline` if
    /// needed. While the server is known to be away there is one attempt,
    /// so a read of content that is not on this device fails at once.
    fn chunk_bytes(
        &self,
        chunk: &ChunkRef,
        offset: u64,
        len: usize,
        deadline: tokio::time::Instant,
    ) -> FsResult<Bytes> {
        // A small cache may evict a chunk between its fetch and its read
        // by another reader's fetch: then fetch it again.
        for _ in 0..3 {
            if let Some(bytes) = self.fetcher.cache.read(&chunk.hash, offset, len)? {
                return Ok(bytes);
            }
            let patient = self.health.is_online();
            self.runtime
                .block_on(self.fetcher.ensure_by(chunk.hash, patient, deadline))?;
        }
        Err(FsError::Io(std::io::Error::other(
            "the chunk cache is too small for the reads in progress",
        )))
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8], set_id: SetIdBits) -> FsResult<u32> {
        self.write_at(fh, Some(offset), data, set_id)
    }

    /// Writes at the end of the file as it is now (a file opened with
    /// `O_APPEND`), whatever offset the kernel computed: its idea of the
    /// end may predate a version that just arrived from another device,
    /// and writing there would leave a hole or overwrite the new end.
    pub fn append(&self, fh: u64, data: &[u8], set_id: SetIdBits) -> FsResult<u32> {
        self.write_at(fh, None, data, set_id)
    }

    fn write_at(
        &self,
        fh: u64,
        offset: Option<u64>,
        data: &[u8],
        set_id: SetIdBits,
    ) -> FsResult<u32> {
        let file = self.handle(fh)?;
        if !file.writable {
            return Err(FsError::Invalid("the file is not open for writing".into()));
        }
        let len = data.len() as u64;
        let in_mount = file.kept().is_none()
            && self.change_content(
                file.ino,
                Some(&file),
                false,
                set_id,
                |f, size| f.write_all_at(data, offset.unwrap_or(size)),
                |size| match offset {
                    Some(offset) => size.max(offset + len),
                    None => size + len,
                },
            )?;
        match file.kept() {
            Some(kept) if !in_mount => kept.write(offset, data)?,
            _ => self.handles.written(file.ino),
        }
        Ok(data.len() as u32)
    }

    /// Changes a file's size (truncate or extend with zeros).
    pub(crate) fn truncate(&self, ino: u64, size: u64) -> FsResult<()> {
        let n = self.query(|conn| Self::node(conn, ino))?;
        if n.kind == EntryKind::Dir {
            return Err(FsError::IsDir);
        }
        if n.kind != EntryKind::File {
            return Err(FsError::Invalid(
                "only regular files have a size to set".into(),
            ));
        }
        self.query(|conn| self.writable(conn, &n))?;
        self.change_content(
            ino,
            None,
            size == 0,
            SetIdBits::Keep,
            |f, _| f.set_len(size),
            |_| size,
        )?;
        self.handles.written(ino);
        Ok(())
    }

    /// Makes written content durable on this device and asks for it to be
    /// uploaded now, even though the file is still open.
    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        let file = self.handle(fh)?;
        if let Some(kept) = file.kept() {
            return kept.sync();
        }
        let n = self.query(|conn| Self::node(conn, file.ino))?;
        if n.staged {
            match self.open_staging(file.ino) {
                Ok(staging) => staging.sync_all()?,
                // Pushed and dropped since: the server has it.
                Err(FsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if n.dirty > 0 {
            // The outbox entry must survive a power cut too: the metadata
            // cache commits without syncing (WAL, synchronous=NORMAL), so
            // sync its log now.
            self.query(|conn| {
                match conn.path().map(|db| File::open(format!("{db}-wal"))) {
                    Some(Ok(wal)) => wal.sync_all()?,
                    Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e.into());
                    }
                    _ => {}
                }
                Ok(())
            })?;
            self.handles.fsynced(file.ino);
            // The pusher looks again once the file may count as settled.
            let wake = self.outbox_changed.clone();
            self.runtime.spawn(async move {
                tokio::time::sleep(super::handles::SETTLED).await;
                wake.notify_one();
            });
        }
        Ok(())
    }

    pub fn release(&self, fh: u64) -> FsResult<()> {
        let Some(Released { file, last }) = self.handles.release(fh) else {
            return Ok(());
        };
        if let Some(kept) = file.kept() {
            tracing::warn!(
                path = %kept.path.display(),
                "a file that could no longer reach the server was closed; what it holds is kept on this device"
            );
            return Ok(());
        }
        if file.writable {
            self.outbox_changed.notify_one();
        }
        self.open_changed.notify_one();
        // An unlinked file the server never saw goes when last closed
        // (looked for first without taking the cache for writing: that is
        // rare, and a write transaction at every close is not free).
        let unseen_unlinked = |n: &Node| n.removed && n.item.is_none() && n.dirty == 0;
        if last
            && self
                .query(|conn| Ok(meta::get(conn, file.ino)?))?
                .is_some_and(|n| unseen_unlinked(&n))
        {
            self.transact(|tx| {
                if let Some(n) = meta::get(tx, file.ino)?
                    && unseen_unlinked(&n)
                    && !self.is_pushing(n.ino)
                {
                    meta::delete(tx, n.ino)?;
                    self.drop_staging(n.ino);
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// What `lseek` looks for from an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// `SEEK_DATA`: the next offset with data.
    Data,
    /// `SEEK_HOLE`: the next hole (the end of the file is one).
    Hole,
}

/// [`Seek`] in a local file, as its filesystem knows its holes.
pub(crate) fn seek_in(file: &File, offset: u64, seek: Seek) -> FsResult<u64> {
    use std::os::fd::AsRawFd;
    let whence = match seek {
        Seek::Data => libc::SEEK_DATA,
        Seek::Hole => libc::SEEK_HOLE,
    };
    let offset = i64::try_from(offset).map_err(|_| FsError::PastEnd)?;
    // SAFETY: lseek on a descriptor this `File` owns for the call.
    match unsafe { libc::lseek(file.as_raw_fd(), offset, whence) } {
        -1 => match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ENXIO) => Err(FsError::PastEnd),
            e => Err(e.into()),
        },
        at => Ok(at as u64),
    }
}

/// [`Seek`] in content that is all data, `size` bytes long.
fn seek_in_data(size: u64, offset: u64, seek: Seek) -> FsResult<u64> {
    if offset >= size {
        return Err(FsError::PastEnd);
    }
    Ok(match seek {
        Seek::Data => offset,
        Seek::Hole => size,
    })
}

/// A read's parts as one buffer; a read within one chunk (most are) is
/// that chunk's bytes, without a copy.
fn joined(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    parts.concat().into()
}

/// Reads as much of `buf` as the file has from `offset`.
pub(crate) fn read_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_from_the_start_is_sequential_at_once() {
        let reads = ReadPattern::default();
        assert!(reads.sequential(0, 4096));
        assert!(reads.sequential(4096, 8192));
    }

    #[test]
    fn a_read_elsewhere_is_random_until_its_run_grows_long() {
        let reads = ReadPattern::default();
        let at = 10 << 20;
        assert!(!reads.sequential(at, at + 4096));
        // The second page of a read across a page boundary.
        assert!(!reads.sequential(at + 4096, at + 8192));
        // A jump starts a new run.
        assert!(!reads.sequential(at / 2, at / 2 + 4096));
        let mut end = at / 2 + 4096;
        while end + 4096 - at / 2 < SEQUENTIAL_RUN {
            assert!(!reads.sequential(end, end + 4096));
            end += 4096;
        }
        assert!(
            reads.sequential(end, end + 4096),
            "a long run is sequential"
        );
        // A read back at the start is sequential again.
        assert!(reads.sequential(0, 4096));
    }
}
