//! Where chunk bytes live. [`BlobStore`] is the small trait every backend
//! implements; [`FsBlobStore`] keeps chunks as files under the data
//! directory (the embedded default). The database decides which chunks
//! exist and who may read them; a blob store only keeps bytes.

use async_trait::async_trait;
use bytes::Bytes;
use mesh_protocol::content::Hash;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `data` under `hash` atomically: no reader ever sees part of it.
    /// Storing a hash that is already there does nothing.
    async fn put(&self, hash: &Hash, data: Bytes) -> anyhow::Result<()>;
    /// The bytes in `range` of the blob (clamped to its end), or `None` when
    /// there is no such blob.
    async fn get(&self, hash: &Hash, range: Range<u64>) -> anyhow::Result<Option<Bytes>>;
    /// Removes a blob; removing a missing one is not an error.
    async fn delete(&self, hash: &Hash) -> anyhow::Result<()>;
}

/// Chunks as files: `DIR/ab/cd/abcd…` with writes through a temporary file
/// in `DIR/tmp`, fsync and rename; directories 0700 and files 0600
/// (`mesh_cli::private`).
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let tmp = root.join("tmp");
        mesh_cli::private::create_dir(&tmp)?;
        // Leftovers of writes cut short by a crash are never visible; drop them.
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(FsBlobStore {
            root: root.to_owned(),
        })
    }

    fn path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, hash: &Hash, data: Bytes) -> anyhow::Result<()> {
        let path = self.path(hash);
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            if path.exists() {
                return Ok(());
            }
            let dir = path.parent().expect("a chunk path has a parent");
            mesh_cli::private::create_dir(dir)?;
            let result = (|| -> std::io::Result<()> {
                let mut f = mesh_cli::private::create_file(&tmp)?;
                f.write_all(&data)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                std::fs::File::open(dir)?.sync_all()
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            Ok(result?)
        })
        .await?
    }

    async fn get(&self, hash: &Hash, range: Range<u64>) -> anyhow::Result<Option<Bytes>> {
        let path = self.path(hash);
        tokio::task::spawn_blocking(move || -> anyhow::Result<Option<Bytes>> {
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let len = f.metadata()?.len();
            let start = range.start.min(len);
            let end = range.end.min(len).max(start);
            f.seek(SeekFrom::Start(start))?;
            let mut buf = vec![0; (end - start) as usize];
            f.read_exact(&mut buf)?;
            Ok(Some(Bytes::from(buf)))
        })
        .await?
    }

    async fn delete(&self, hash: &Hash) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(hash)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// The suite every [`BlobStore`] implementation must pass.
#[cfg(test)]
pub(crate) async fn conformance_suite(store: &dyn BlobStore) {
    let data = Bytes::from_static(b"hello, chunk store");
    let hash = Hash::of(&data);
    assert_eq!(store.get(&hash, 0..u64::MAX).await.unwrap(), None);
    store.put(&hash, data.clone()).await.unwrap();
    store.put(&hash, data.clone()).await.unwrap();
    assert_eq!(
        store.get(&hash, 0..u64::MAX).await.unwrap(),
        Some(data.clone())
    );
    assert_eq!(
        store.get(&hash, 7..12).await.unwrap(),
        Some(Bytes::from_static(b"chunk"))
    );
    assert_eq!(
        store.get(&hash, 13..1000).await.unwrap(),
        Some(Bytes::from_static(b"store"))
    );
    assert_eq!(
        store.get(&hash, 500..600).await.unwrap(),
        Some(Bytes::new())
    );
    store.delete(&hash).await.unwrap();
    store.delete(&hash).await.unwrap();
    assert_eq!(store.get(&hash, 0..u64::MAX).await.unwrap(), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fs_store_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        conformance_suite(&store).await;
        // Nothing is left behind in the temporary directory.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
