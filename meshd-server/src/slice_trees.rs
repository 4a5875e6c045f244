//! The BLAKE3 outboard trees that verified slices are cut from (`GET
//! /v1/chunks/{hash}?slice=…`), kept in memory once computed. Computing a
//! tree hashes the whole chunk, so without them a 4 KiB random read cost
//! meshd a pass over up to 4 MiB (see docs/BENCHMARKS.md). A tree depends
//! only on its chunk's bytes, so a kept one is never stale, whatever
//! happens to the chunk; the least recently used go beyond a budget.

use lru::LruCache;
use mesh_protocol::content::Hash;
use std::sync::{Arc, Mutex};

/// The trees of the chunks read at random lately.
pub struct SliceTrees {
    inner: Mutex<Inner>,
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

    pub fn new(budget: usize) -> SliceTrees {
        SliceTrees {
            inner: Mutex::new(Inner {
                trees: LruCache::unbounded(),
                bytes: 0,
                budget,
            }),
        }
    }

    /// The kept tree of chunk `hash`, if any (now the most recently used).
    pub fn get(&self, hash: &Hash) -> Option<Arc<Vec<u8>>> {
        self.inner
            .lock()
            .expect("slice trees")
            .trees
            .get(hash)
            .cloned()
    }

    /// Computes the tree of `chunk` (whose hash is `hash`) and keeps it.
    pub fn compute(&self, hash: Hash, chunk: &[u8]) -> Arc<Vec<u8>> {
        let tree = Arc::new(mesh_protocol::slice::outboard(chunk));
        let mut inner = self.inner.lock().expect("slice trees");
        if inner.trees.put(hash, tree.clone()).is_none() {
            inner.bytes += tree.len();
        }
        while inner.bytes > inner.budget {
            let Some((_, old)) = inner.trees.pop_lru() else {
                break;
            };
            inner.bytes -= old.len();
        }
        tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SliceTrees {
        fn kept(&self) -> usize {
            self.inner.lock().expect("slice trees").trees.len()
        }
    }

    #[test]
    fn trees_are_kept_and_the_least_recently_used_go_beyond_the_budget() {
        let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 64 * 1024]).collect();
        let hashes: Vec<Hash> = chunks.iter().map(|c| Hash::of(c)).collect();
        let one = mesh_protocol::slice::outboard(&chunks[0]).len();
        let trees = SliceTrees::new(2 * one);
        assert!(trees.get(&hashes[0]).is_none());
        let first = trees.compute(hashes[0], &chunks[0]);
        assert_eq!(*first, mesh_protocol::slice::outboard(&chunks[0]));
        assert!(Arc::ptr_eq(&first, &trees.get(&hashes[0]).unwrap()));
        trees.compute(hashes[1], &chunks[1]);
        trees.get(&hashes[0]);
        trees.compute(hashes[2], &chunks[2]);
        assert_eq!(trees.kept(), 2);
        // The second chunk's tree was the least recently used.
        assert!(trees.get(&hashes[1]).is_none());
        assert!(Arc::ptr_eq(&first, &trees.get(&hashes[0]).unwrap()));
    }
}
