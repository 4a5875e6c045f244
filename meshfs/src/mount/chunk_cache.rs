//! The chunk cache: verified chunks on local disk, bounded in size, evicting
//! the least recently used first. Chunks of pinned files ("always keep on
//! this device") are kept apart: they never count against the limit and
//! are never evicted. A chunk is written under a temporary name and renamed
//! into place, so a crash never leaves a partial chunk behind.
//!
//! A chunk just fetched is held in memory as well ([`Fresh`]): the reads
//! waiting for it are answered from there while it is written to disk
//! behind them, past the page cache (`crate::direct_io`).
//!
//! On a full disk every evictable chunk goes. The cache also holds the
//! home's room to breathe: a reserve file that only pushing may give up,
//! so that the metadata cache can still commit what frees space (a settled
//! push drops its staging copies); it is taken back once there is room.

use bytes::Bytes;
use lru::LruCache;
use mesh_protocol::content::Hash;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The size of the reserve file.
const RESERVE: usize = 4 << 20;

/// The most bytes of fresh chunks held in memory: a sequential reader's
/// read-ahead (eight chunks, up to 4 MiB each) and the chunks being read,
/// twice over. Beyond it, chunks already on disk leave memory, least
/// recently read first, and a chunk that would not fit beside the ones
/// still being written is written before it is read.
const FRESH_BYTES: u64 = 64 << 20;

pub struct ChunkCache {
    dir: PathBuf,
    limit: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Evictable chunks on disk and their sizes, least recently used first.
    lru: LruCache<Hash, u64>,
    /// Bytes of the evictable chunks.
    used: u64,
    /// Chunks to keep: their size once on disk, `None` until fetched.
    kept: HashMap<Hash, Option<u64>>,
    /// Bytes of the kept chunks on disk.
    kept_used: u64,
    fresh: Fresh,
}

impl Inner {
    /// Whether the chunk is on disk.
    fn on_disk(&self, hash: &Hash) -> bool {
        self.lru.contains(hash) || matches!(self.kept.get(hash), Some(Some(_)))
    }
}

/// Chunks just fetched and verified, held in memory, least recently read
/// first. Written past the page cache, a read-ahead chunk read from its
/// file would come from the disk; from here it costs nothing.
struct Fresh {
    chunks: LruCache<Hash, FreshChunk>,
    /// Bytes held.
    bytes: u64,
    /// Bytes held that are not on disk yet.
    unwritten: u64,
}

struct FreshChunk {
    data: Bytes,
    written: bool,
    /// Read through its last byte: a sequential reader is done with it,
    /// and it leaves memory once it is on disk.
    read_to_end: bool,
}

impl Fresh {
    fn new() -> Fresh {
        Fresh {
            chunks: LruCache::unbounded(),
            bytes: 0,
            unwritten: 0,
        }
    }

    /// Bytes `start..` of the chunk (at most `len`), marked as just used;
    /// a chunk on disk that is read to its end leaves memory.
    fn read(&mut self, hash: &Hash, start: u64, len: usize) -> Option<Bytes> {
        let chunk = self.chunks.get_mut(hash)?;
        let size = chunk.data.len();
        let start = (start as usize).min(size);
        let end = start.saturating_add(len).min(size);
        let bytes = chunk.data.slice(start..end);
        if end == size {
            chunk.read_to_end = true;
            if chunk.written {
                self.remove(hash);
            }
        }
        Some(bytes)
    }

    /// Holds `data`, unless the chunks not on disk yet fill
    /// [`FRESH_BYTES`] already; whether it is held.
    fn hold(&mut self, hash: Hash, data: Bytes) -> bool {
        if self.chunks.get(&hash).is_some() {
            return true;
        }
        let len = data.len() as u64;
        if self.unwritten + len > FRESH_BYTES {
            return false;
        }
        self.chunks.put(
            hash,
            FreshChunk {
                data,
                written: false,
                read_to_end: false,
            },
        );
        self.bytes += len;
        self.unwritten += len;
        self.trim();
        true
    }

    /// The chunk is on disk now: it leaves memory if it has been read to
    /// its end, or else when room is needed.
    fn written(&mut self, hash: &Hash) {
        if let Some(chunk) = self.chunks.peek_mut(hash)
            && !chunk.written
        {
            chunk.written = true;
            self.unwritten -= chunk.data.len() as u64;
            if chunk.read_to_end {
                self.remove(hash);
            }
            self.trim();
        }
    }

    fn remove(&mut self, hash: &Hash) {
        if let Some(chunk) = self.chunks.pop(hash) {
            self.bytes -= chunk.data.len() as u64;
            if !chunk.written {
                self.unwritten -= chunk.data.len() as u64;
            }
        }
    }

    /// Lets the least recently used chunks that are on disk go until the
    /// rest fit [`FRESH_BYTES`]; the ones not on disk yet stay.
    fn trim(&mut self) {
        while self.bytes > FRESH_BYTES {
            let Some(oldest) = self
                .chunks
                .iter()
                .rev()
                .find(|(_, c)| c.written)
                .map(|(h, _)| *h)
            else {
                return;
            };
            self.remove(&oldest);
        }
    }
}

impl ChunkCache {
    /// Opens the cache in `dir`, taking stock of what is there (oldest
    /// first), keeping the chunks in `kept` and trimming the rest to `limit`
    /// bytes.
    pub fn open(dir: &Path, limit: u64, kept: HashSet<Hash>) -> std::io::Result<ChunkCache> {
        mesh_cli::private::create_dir(&dir.join("tmp"))?;
        for e in std::fs::read_dir(dir.join("tmp"))? {
            let _ = std::fs::remove_file(e?.path());
        }
        let mut found = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if let Some(hash) = e.file_name().to_str().and_then(|n| Hash::parse(n).ok()) {
                let meta = e.metadata()?;
                found.push((meta.modified()?, hash, meta.len()));
            }
        }
        found.sort();
        let mut inner = Inner {
            lru: LruCache::unbounded(),
            used: 0,
            kept: HashMap::new(),
            kept_used: 0,
            fresh: Fresh::new(),
        };
        for (_, hash, len) in found {
            inner.lru.put(hash, len);
            inner.used += len;
        }
        let cache = ChunkCache {
            dir: dir.to_owned(),
            limit,
            inner: Mutex::new(inner),
        };
        cache.keep(kept);
        cache.restore_reserve();
        Ok(cache)
    }

    /// The reserve file: beside the chunks, not among them
    /// (`cache/chunks.reserve`).
    fn reserve(&self) -> PathBuf {
        self.dir.with_extension("reserve")
    }

    /// Takes the reserve back if it was given up and there is room for it.
    pub fn restore_reserve(&self) {
        let reserve = self.reserve();
        if reserve.exists() {
            return;
        }
        let tmp = self.dir.join("tmp").join("chunks.reserve");
        let made = (|| {
            let mut f = mesh_cli::private::create_file(&tmp)?;
            f.write_all(&vec![0u8; RESERVE])?;
            f.sync_all()?;
            std::fs::rename(&tmp, &reserve)
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    /// Whether the chunk can be read from the cache (from disk, or held
    /// in memory while it is written).
    pub fn contains(&self, hash: &Hash) -> bool {
        let inner = self.inner.lock().expect("chunk cache");
        inner.on_disk(hash) || inner.fresh.chunks.contains(hash)
    }

    /// Makes `hashes` the chunks to keep whatever the limit: those already
    /// on disk leave the evictable set, and chunks no longer kept join it
    /// as the most recently used. Returns the kept chunks not on disk yet.
    pub fn keep(&self, hashes: HashSet<Hash>) -> Vec<Hash> {
        let mut inner = self.inner.lock().expect("chunk cache");
        let before = std::mem::take(&mut inner.kept);
        for (hash, size) in &before {
            if let Some(size) = size
                && !hashes.contains(hash)
            {
                inner.kept_used -= size;
                inner.lru.put(*hash, *size);
                inner.used += size;
            }
        }
        let mut missing = Vec::new();
        for hash in hashes {
            let size = match before.get(&hash) {
                Some(size) => *size,
                None => inner.lru.pop(&hash).inspect(|size| {
                    inner.used -= size;
                    inner.kept_used += size;
                }),
            };
            if size.is_none() {
                missing.push(hash);
            }
            inner.kept.insert(hash, size);
        }
        self.evict(&mut inner);
        missing
    }

    /// Bytes `offset..offset+len` of a cached chunk (fewer at its end), or
    /// `None` when it is not cached.
    pub fn read(&self, hash: &Hash, offset: u64, len: usize) -> std::io::Result<Option<Bytes>> {
        {
            let mut inner = self.inner.lock().expect("chunk cache");
            // `get` marks an evictable chunk as just used.
            let on_disk = inner.lru.get(hash).is_some() || inner.on_disk(hash);
            if let Some(bytes) = inner.fresh.read(hash, offset, len) {
                return Ok(Some(bytes));
            }
            if !on_disk {
                return Ok(None);
            }
        }
        let mut f = match std::fs::File::open(self.path(hash)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(hash);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len);
        f.take(len as u64).read_to_end(&mut buf)?;
        Ok(Some(buf.into()))
    }

    /// Holds a chunk that has been verified against `hash` in memory, to
    /// be read at once while [`ChunkCache::insert`] writes it to disk;
    /// whether it is held (not once the chunks waiting for their writes
    /// fill [`FRESH_BYTES`]: then the write comes first).
    pub fn hold(&self, hash: &Hash, data: Bytes) -> bool {
        let mut inner = self.inner.lock().expect("chunk cache");
        inner.on_disk(hash) || inner.fresh.hold(*hash, data)
    }

    /// Stores a chunk that has been verified against `hash`. On a full
    /// disk every evictable chunk makes room first, and the chunk is
    /// written again; only then does the write fail with `ENOSPC` (and a
    /// chunk held in memory for it lets go: its readers have had it).
    pub fn insert(&self, hash: &Hash, data: &[u8]) -> std::io::Result<()> {
        if self.inner.lock().expect("chunk cache").on_disk(hash) {
            return Ok(());
        }
        let written = match self.write(hash, data) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && self.make_room() > 0 => {
                self.write(hash, data)
            }
            written => written,
        };
        let mut inner = self.inner.lock().expect("chunk cache");
        if let Err(e) = written {
            inner.fresh.remove(hash);
            return Err(e);
        }
        inner.fresh.written(hash);
        let size = data.len() as u64;
        if let Some(kept) = inner.kept.get_mut(hash) {
            if kept.replace(size).is_none() {
                inner.kept_used += size;
            }
        } else if inner.lru.put(*hash, size).is_none() {
            inner.used += size;
        }
        self.evict(&mut inner);
        Ok(())
    }

    /// Writes a chunk's file, through a temporary file.
    fn write(&self, hash: &Hash, data: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = crate::direct_io::write_new_file(&tmp, data)
            .and_then(|()| std::fs::rename(&tmp, self.path(hash)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Gives the reserve up; whether there was one.
    pub fn release_reserve(&self) -> bool {
        std::fs::remove_file(self.reserve()).is_ok()
    }

    /// Removes every evictable chunk (kept ones stay); returns the bytes
    /// freed. What is evicted is on the server and is fetched again when
    /// read.
    pub fn make_room(&self) -> u64 {
        let mut inner = self.inner.lock().expect("chunk cache");
        let mut freed = 0;
        while let Some((hash, len)) = inner.lru.pop_lru() {
            inner.used -= len;
            if std::fs::remove_file(self.path(&hash)).is_ok() {
                freed += len;
            }
        }
        freed
    }

    /// Removes chunks that no file refers to any more (superseded
    /// versions, removed files) at once, kept or not, instead of leaving
    /// them for the LRU.
    pub fn discard(&self, hashes: &[Hash]) {
        let mut inner = self.inner.lock().expect("chunk cache");
        for hash in hashes {
            inner.fresh.remove(hash);
            if let Some(len) = inner.lru.pop(hash) {
                inner.used -= len;
            } else if let Some(Some(len)) = inner.kept.remove(hash) {
                inner.kept_used -= len;
            } else {
                continue;
            }
            let _ = std::fs::remove_file(self.path(hash));
        }
    }

    fn forget(&self, hash: &Hash) {
        let mut inner = self.inner.lock().expect("chunk cache");
        if let Some(len) = inner.lru.pop(hash) {
            inner.used -= len;
        }
        if let Some(Some(len)) = inner.kept.get(hash).copied() {
            inner.kept.insert(*hash, None);
            inner.kept_used -= len;
        }
    }

    /// Evicts the least recently used chunks until the evictable ones fit
    /// the limit, but never the one just added (a reader needs it).
    fn evict(&self, inner: &mut Inner) {
        while inner.used > self.limit && inner.lru.len() > 1 {
            let Some((hash, len)) = inner.lru.pop_lru() else {
                break;
            };
            inner.used -= len;
            let _ = std::fs::remove_file(self.path(&hash));
        }
    }

    /// Bytes of evictable chunks the cache holds now.
    pub fn used(&self) -> u64 {
        self.inner.lock().expect("chunk cache").used
    }

    /// Bytes of kept (pinned) chunks on disk.
    pub fn kept_used(&self) -> u64 {
        self.inner.lock().expect("chunk cache").kept_used
    }

    /// The most bytes of evictable chunks kept.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_beyond_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), 25, HashSet::new()).unwrap();
        let chunks: Vec<(Hash, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let data = vec![i; 10];
                (Hash::of(&data), data)
            })
            .collect();
        cache.insert(&chunks[0].0, &chunks[0].1).unwrap();
        cache.insert(&chunks[1].0, &chunks[1].1).unwrap();
        // Reading chunk 0 makes chunk 1 the least recently used.
        assert_eq!(
            cache.read(&chunks[0].0, 2, 3).unwrap(),
            Some(Bytes::from(vec![0; 3]))
        );
        cache.insert(&chunks[2].0, &chunks[2].1).unwrap();
        assert!(cache.contains(&chunks[0].0));
        assert!(!cache.contains(&chunks[1].0));
        assert!(cache.contains(&chunks[2].0));
        assert_eq!(cache.used(), 20);
        assert!(!dir.path().join(chunks[1].0.to_hex()).exists());
        // Reopening finds what is on disk.
        drop(cache);
        let cache = ChunkCache::open(dir.path(), 25, HashSet::new()).unwrap();
        assert_eq!(cache.used(), 20);
        assert_eq!(
            cache.read(&chunks[2].0, 8, 100).unwrap(),
            Some(Bytes::from(vec![2; 2]))
        );
    }

    #[test]
    fn kept_chunks_are_never_evicted_and_rejoin_the_lru_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), 15, HashSet::new()).unwrap();
        let chunks: Vec<(Hash, Vec<u8>)> = (0..4u8)
            .map(|i| {
                let data = vec![i; 10];
                (Hash::of(&data), data)
            })
            .collect();
        cache.insert(&chunks[0].0, &chunks[0].1).unwrap();
        // One kept chunk on disk, one still to fetch.
        let missing = cache.keep(HashSet::from([chunks[0].0, chunks[1].0]));
        assert_eq!(missing, vec![chunks[1].0]);
        cache.insert(&chunks[1].0, &chunks[1].1).unwrap();
        assert_eq!((cache.used(), cache.kept_used()), (0, 20));
        // A read workload larger than the limit evicts only the others.
        cache.insert(&chunks[2].0, &chunks[2].1).unwrap();
        cache.insert(&chunks[3].0, &chunks[3].1).unwrap();
        assert!(cache.contains(&chunks[0].0) && cache.contains(&chunks[1].0));
        assert!(!cache.contains(&chunks[2].0) && cache.contains(&chunks[3].0));
        assert_eq!(
            cache.read(&chunks[1].0, 0, 2).unwrap(),
            Some(Bytes::from(vec![1; 2]))
        );
        // Unpinned, they are evictable again, and newer than the rest.
        assert!(cache.keep(HashSet::new()).is_empty());
        assert_eq!((cache.used(), cache.kept_used()), (10, 0));
        assert!(!cache.contains(&chunks[3].0));
        assert!(cache.contains(&chunks[0].0) != cache.contains(&chunks[1].0));
    }

    #[test]
    fn discarded_chunks_leave_the_disk_at_once_kept_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), 1 << 20, HashSet::new()).unwrap();
        let chunks: Vec<(Hash, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let data = vec![i; 10];
                (Hash::of(&data), data)
            })
            .collect();
        for (h, d) in &chunks {
            cache.insert(h, d).unwrap();
        }
        cache.keep(HashSet::from([chunks[1].0]));
        cache.discard(&[chunks[0].0, chunks[1].0, Hash::of(b"never cached")]);
        assert_eq!((cache.used(), cache.kept_used()), (10, 0));
        assert!(!cache.contains(&chunks[0].0) && !cache.contains(&chunks[1].0));
        assert!(!dir.path().join(chunks[0].0.to_hex()).exists());
        assert!(!dir.path().join(chunks[1].0.to_hex()).exists());
        assert!(cache.contains(&chunks[2].0));
    }

    #[test]
    fn a_chunk_larger_than_the_limit_stays_until_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), 5, HashSet::new()).unwrap();
        let data = vec![7u8; 10];
        cache.insert(&Hash::of(&data), &data).unwrap();
        assert_eq!(
            cache.read(&Hash::of(&data), 0, 10).unwrap(),
            Some(Bytes::from(data))
        );
    }

    #[test]
    fn a_held_chunk_is_read_from_memory_until_it_is_on_disk_and_after() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), 1 << 20, HashSet::new()).unwrap();
        let data = Bytes::from(vec![3u8; 10_000]);
        let hash = Hash::of(&data);
        let in_memory = |h: &Hash| cache.inner.lock().unwrap().fresh.chunks.contains(h);
        assert!(cache.hold(&hash, data.clone()));
        assert!(cache.contains(&hash));
        assert!(!dir.path().join(hash.to_hex()).exists());
        assert_eq!(
            cache.read(&hash, 9_990, 100).unwrap(),
            Some(data.slice(9_990..))
        );
        assert_eq!(cache.used(), 0, "not counted before it is on disk");
        cache.insert(&hash, &data).unwrap();
        assert_eq!(std::fs::read(dir.path().join(hash.to_hex())).unwrap(), data);
        assert_eq!(cache.used(), 10_000);
        // Read to its end before it was on disk, it has left memory now.
        assert!(!in_memory(&hash));
        // Held again, it stays while it is read and
        // goes at its end.
        assert!(
            cache.hold(&hash, data.clone()) && !in_memory(&hash),
            "on disk already"
        );
        cache.inner.lock().unwrap().fresh.hold(hash, data.clone());
        cache.inner.lock().unwrap().fresh.written(&hash);
        assert_eq!(
            cache.read(&hash, 0, 5_000).unwrap(),
            Some(data.slice(..5_000))
        );
        assert!(in_memory(&hash));
        assert_eq!(
            cache.read(&hash, 5_000, 5_000).unwrap(),
            Some(data.slice(5_000..))
        );
        assert!(!in_memory(&hash));
        assert_eq!(
            cache.read(&hash, 5_000, 10).unwrap(),
            Some(data.slice(5_000..5_010))
        );
        // Discarded, it leaves memory too.
        cache.discard(&[hash]);
        assert!(!cache.contains(&hash));
        assert_eq!(cache.read(&hash, 0, 1).unwrap(), None);
    }

    #[test]
    fn chunks_waiting_for_their_writes_are_bounded_and_a_failed_write_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), u64::MAX, HashSet::new()).unwrap();
        let chunk = Bytes::from(vec![0u8; 4 << 20]);
        let hashes: Vec<Hash> = (0..20u32).map(|i| Hash::of(&i.to_be_bytes())).collect();
        let held = hashes
            .iter()
            .take_while(|h| cache.hold(h, chunk.clone()))
            .count();
        assert_eq!(held as u64, FRESH_BYTES / (4 << 20));
        assert!(!cache.contains(&hashes[held]));
        // Once one is on disk there is room for the next.
        cache.insert(&hashes[0], &chunk).unwrap();
        assert!(cache.hold(&hashes[held], chunk.clone()));
        // The one on disk left memory for it (and reads from disk now);
        // the ones not written yet stay.
        let in_memory = |h: &Hash| cache.inner.lock().unwrap().fresh.chunks.contains(h);
        assert!(!in_memory(&hashes[0]) && cache.contains(&hashes[0]));
        assert!((1..=held).all(|i| in_memory(&hashes[i])));
        // A write that fails lets the chunk go from memory too.
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(cache.insert(&hashes[1], &chunk).is_err());
        assert!(!cache.contains(&hashes[1]));
        assert!(cache.hold(&hashes[held + 1], chunk.clone()));
    }
}
