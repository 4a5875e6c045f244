//! The BLAKE3 outboard trees that verified slices are cut from (`GET
//! /v1/chunks/{hash}?slice=…`). Computing a tree hashes the whole chunk a
//! block at a time, so without one a 4 KiB random read cost meshd a pass
//! over up to 4 MiB (38 % of its CPU under random reads, see
//! docs/BENCHMARKS.md). A chunk stored as a blob gets its tree computed
//! after its upload and stored beside it (`DATA/slice-trees`, about 1/16
//! of the chunk), and collected with it; a chunk stored before that gets
//! its tree on the first slice asked of it. Trees are kept in memory once
//! read, the least recently used going beyond a budget. A tree depends
//! only on its chunk's bytes, so a kept one is never stale; a stored one
//! of the wrong length is computed again.

use lru::LruCache;
use mesh_protocol::content::Hash;
use std::sync::{Arc, Mutex};

use crate::blob::BlobStore;

/// The trees of the chunks read at random lately, and the store of all.
pub struct SliceTrees {
    inner: Mutex<Inner>,
    store: Arc<dyn BlobStore>,
}

struct Inner {
    trees: LruCache<Hash, Arc<Vec<u8>>>,
    bytes: usize,
    budget: usize,
}

impl SliceTrees {
    /// A tree is about 1/16 of its chunk: 64 MiB of them serve random
    /// reads across 1 GiB of content.
    pub const BUDGET: usize = 64 << 20;

    pub fn new(budget: usize, store: Arc<dyn BlobStore>) -> SliceTrees {
        SliceTrees {
            inner: Mutex::new(Inner {
                trees: LruCache::unbounded(),
                bytes: 0,
                budget,
            }),
            store,
        }
    }

    /// The tree of chunk `hash` of `size` bytes, from memory or from the
    /// store, if there is one.
    pub async fn get(&self, hash: &Hash, size: u64) -> anyhow::Result<Option<Arc<Vec<u8>>>> {
        if let Some(tree) = self.inner.lock().expect("slice trees").trees.get(hash) {
            return Ok(Some(tree.clone()));
        }
        let Some(stored) = self.store.get(hash, 0..u64::MAX).await? else {
            return Ok(None);
        };
        if stored.len() as u64 != mesh_protocol::slice::outboard_size(size) {
            tracing::warn!(%hash, "a stored slice tree has the wrong length; it is computed again");
            self.store.delete(hash).await?;
            return Ok(None);
        }
        let tree = Arc::new(stored.to_vec());
        self.keep(*hash, tree.clone());
        Ok(Some(tree))
    }

    /// Computes the tree of `chunk` (whose hash is `hash`) and keeps it in
    /// memory; [`SliceTrees::save`] stores it.
    pub fn compute(&self, hash: Hash, chunk: &[u8]) -> Arc<Vec<u8>> {
        let tree = Arc::new(mesh_protocol::slice::outboard(chunk));
        self.keep(hash, tree.clone());
        tree
    }

    /// Stores a computed tree beside its chunk.
    pub async fn save(&self, hash: &Hash, tree: &[u8]) -> anyhow::Result<()> {
        self.store
            .put(hash, bytes::Bytes::copy_from_slice(tree))
            .await
    }

    /// Computes and stores the trees of chunks just uploaded, off the
    /// upload's path; a tree that fails to be stored is computed on the
    /// first slice asked of its chunk instead.
    pub fn compute_later(self: &Arc<Self>, chunks: Vec<(Hash, bytes::Bytes)>) {
        let trees = self.clone();
        tokio::spawn(async move {
            for (hash, chunk) in chunks {
                // A chunk uploaded again has its tree already.
                if matches!(trees.store.get(&hash, 0..0).await, Ok(Some(_))) {
                    continue;
                }
                let tree =
                    tokio::task::spawn_blocking(move || mesh_protocol::slice::outboard(&chunk))
                        .await;
                let stored = match tree {
                    Ok(tree) => trees.save(&hash, &tree).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = stored {
                    tracing::warn!(%hash, error = %e, "the slice tree of an uploaded chunk was not stored");
                }
            }
        });
    }

    /// Forgets the tree of a chunk that is gone.
    pub async fn delete(&self, hash: &Hash) -> anyhow::Result<()> {
        {
            let mut inner = self.inner.lock().expect("slice trees");
            if let Some(old) = inner.trees.pop(hash) {
                inner.bytes -= old.len();
            }
        }
        self.store.delete(hash).await
    }

    fn keep(&self, hash: Hash, tree: Arc<Vec<u8>>) {
        let mut inner = self.inner.lock().expect("slice trees");
        let len = tree.len();
        if let Some(old) = inner.trees.put(hash, tree) {
            inner.bytes -= old.len();
        }
        inner.bytes += len;
        while inner.bytes > inner.budget {
            let Some((_, old)) = inner.trees.pop_lru() else {
                break;
            };
            inner.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::FsBlobStore;

    impl SliceTrees {
        fn kept(&self) -> usize {
            self.inner.lock().expect("slice trees").trees.len()
        }
    }

    #[tokio::test]
    async fn trees_are_kept_and_the_least_recently_used_go_beyond_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 64 * 1024]).collect();
        let hashes: Vec<Hash> = chunks.iter().map(|c| Hash::of(c)).collect();
        let size = chunks[0].len() as u64;
        let one = mesh_protocol::slice::outboard(&chunks[0]).len();
        let trees = SliceTrees::new(2 * one, store);
        assert!(trees.get(&hashes[0], size).await.unwrap().is_none());
        let first = trees.compute(hashes[0], &chunks[0]);
        assert_eq!(*first, mesh_protocol::slice::outboard(&chunks[0]));
        let again = trees.get(&hashes[0], size).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        trees.compute(hashes[1], &chunks[1]);
        trees.get(&hashes[0], size).await.unwrap();
        trees.compute(hashes[2], &chunks[2]);
        assert_eq!(trees.kept(), 2);
        // The second chunk's tree was the least recently used, and none
        // was stored.
        assert!(trees.get(&hashes[1], size).await.unwrap().is_none());
        assert!(Arc::ptr_eq(
            &first,
            &trees.get(&hashes[0], size).await.unwrap().unwrap()
        ));
        // Saved, it is found again once memory let it go; deleted, it is
        // gone from both.
        let tree = mesh_protocol::slice::outboard(&chunks[1]);
        trees.save(&hashes[1], &tree).await.unwrap();
        assert_eq!(*trees.get(&hashes[1], size).await.unwrap().unwrap(), tree);
        trees.delete(&hashes[1]).await.unwrap();
        assert!(trees.get(&hashes[1], size).await.unwrap().is_none());
    }
}
