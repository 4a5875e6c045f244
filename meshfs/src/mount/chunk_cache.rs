//! The chunk cache: verified chunks on local disk, bounded in size, evicting
//! the least recently used first. Chunks of pinned files ("always keep on
//! this device") are kept apart: they never count against the limit and
//! are never evicted. A chunk is written under a temporary name and renamed
//! into place, so a crash never leaves a partial chunk behind.
//!
//! On a full disk every evictable chunk goes. The cache also holds the
//! home's room to breathe: a reserve file that only pushing may give up,
//! so that the metadata cache can still commit what frees space (a settled
//! push drops its staging copies); it is taken back once there is room.

use lru::LruCache;
use mesh_protocol::content::Hash;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The size of the reserve file.
const RESERVE: usize = 4 << 20;

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
}

impl Inner {
    fn contains(&self, hash: &Hash) -> bool {
        self.lru.contains(hash) || matches!(self.kept.get(hash), Some(Some(_)))
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

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().expect("chunk cache").contains(hash)
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
    pub fn read(&self, hash: &Hash, offset: u64, len: usize) -> std::io::Result<Option<Vec<u8>>> {
        {
            let mut inner = self.inner.lock().expect("chunk cache");
            // `get` marks an evictable chunk as just used.
            if inner.lru.get(hash).is_none() && !inner.contains(hash) {
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
        Ok(Some(buf))
    }

    /// Stores a chunk that has been verified against `hash`. On a full
    /// disk every evictable chunk makes room first, and the chunk is
    /// written again; only then does the write fail with `ENOSPC`.
    pub fn insert(&self, hash: &Hash, data: &[u8]) -> std::io::Result<()> {
        if self.contains(hash) {
            return Ok(());
        }
        match self.write(hash, data) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                if self.make_room() == 0 {
                    return Err(e);
                }
                self.write(hash, data)?;
            }
            written => written?,
        }
        let size = data.len() as u64;
        let mut inner = self.inner.lock().expect("chunk cache");
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
        let result = (|| {
            let mut f = mesh_cli::private::create_file(&tmp)?;
            f.write_all(data)?;
            std::fs::rename(&tmp, self.path(hash))
        })();
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
        assert_eq!(cache.read(&chunks[0].0, 2, 3).unwrap(), Some(vec![0; 3]));
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
        assert_eq!(cache.read(&chunks[2].0, 8, 100).unwrap(), Some(vec![2; 2]));
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
        assert_eq!(cache.read(&chunks[1].0, 0, 2).unwrap(), Some(vec![1; 2]));
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
        assert_eq!(cache.read(&Hash::of(&data), 0, 10).unwrap(), Some(data));
    }
}
