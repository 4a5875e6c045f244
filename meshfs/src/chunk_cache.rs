//! The chunk cache: verified chunks on local disk, bounded in size, evicting
//! the least recently used first. A chunk is written under a temporary name
//! and renamed into place, so a crash never leaves a partial chunk behind.

use lru::LruCache;
use mesh_protocol::content::Hash;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct ChunkCache {
    dir: PathBuf,
    limit: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    lru: LruCache<Hash, u64>,
    used: u64,
}

impl ChunkCache {
    /// Opens the cache in `dir`, taking stock of what is there (oldest
    /// first), and trims it to `limit` bytes.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<ChunkCache> {
        std::fs::create_dir_all(dir.join("tmp"))?;
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
        cache.evict(&mut cache.inner.lock().expect("chunk cache"));
        Ok(cache)
    }

    fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().expect("chunk cache").lru.contains(hash)
    }

    /// Bytes `offset..offset+len` of a cached chunk (fewer at its end), or
    /// `None` when it is not cached.
    pub fn read(&self, hash: &Hash, offset: u64, len: usize) -> std::io::Result<Option<Vec<u8>>> {
        if self
            .inner
            .lock()
            .expect("chunk cache")
            .lru
            .get(hash)
            .is_none()
        {
            return Ok(None);
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

    /// Stores a chunk that has been verified against `hash`.
    pub fn insert(&self, hash: &Hash, data: &[u8]) -> std::io::Result<()> {
        if self.contains(hash) {
            return Ok(());
        }
        let tmp = self.dir.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            std::fs::rename(&tmp, self.path(hash))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        let mut inner = self.inner.lock().expect("chunk cache");
        if inner.lru.put(*hash, data.len() as u64).is_none() {
            inner.used += data.len() as u64;
        }
        self.evict(&mut inner);
        Ok(())
    }

    fn forget(&self, hash: &Hash) {
        let mut inner = self.inner.lock().expect("chunk cache");
        if let Some(len) = inner.lru.pop(hash) {
            inner.used -= len;
        }
    }

    fn evict(&self, inner: &mut Inner) {
        while inner.used > self.limit {
            let Some((hash, len)) = inner.lru.pop_lru() else {
                break;
            };
            inner.used -= len;
            let _ = std::fs::remove_file(self.path(&hash));
        }
    }

    /// Bytes the cache holds now.
    pub fn used(&self) -> u64 {
        self.inner.lock().expect("chunk cache").used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_beyond_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path(), 25).unwrap();
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
        let cache = ChunkCache::open(dir.path(), 25).unwrap();
        assert_eq!(cache.used(), 20);
        assert_eq!(cache.read(&chunks[2].0, 8, 100).unwrap(), Some(vec![2; 2]));
    }
}
