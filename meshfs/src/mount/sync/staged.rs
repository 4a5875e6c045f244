//! A staging copy read for chunking: its first `size` bytes (its size as
//! recorded with its last change), with the holes its filesystem knows
//! (`SEEK_DATA`) reported as zeros, so that a sparse file's holes are
//! neither read nor hashed chunk by chunk.

use mesh_protocol::content::Source;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

pub struct StagedCopy {
    file: File,
    /// Bytes of the copy that are the file's.
    size: u64,
    /// The current position.
    at: u64,
}

impl StagedCopy {
    pub fn new(file: File, size: u64) -> StagedCopy {
        StagedCopy { file, size, at: 0 }
    }
}

impl Source for StagedCopy {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.size - self.at).unwrap_or(usize::MAX);
        let wanted = buf.len().min(left);
        let n = self.file.read_at(&mut buf[..wanted], self.at)?;
        self.at += n as u64;
        Ok(n)
    }

    fn zeros_ahead(&mut self) -> std::io::Result<u64> {
        let Ok(at) = i64::try_from(self.at) else {
            return Ok(0);
        };
        // SAFETY: lseek on a descriptor this `File` owns; the position it
        // sets is not used (reads name their offset).
        let data = unsafe { libc::lseek(self.file.as_raw_fd(), at, libc::SEEK_DATA) };
        let next_data = match data {
            -1 => match std::io::Error::last_os_error() {
                // No data after `at`: the rest is a hole.
                e if e.raw_os_error() == Some(libc::ENXIO) => self.size,
                // A filesystem that cannot say: nothing is known.
                e if e.raw_os_error() == Some(libc::EINVAL) => return Ok(0),
                e => return Err(e),
            },
            d => d as u64,
        };
        Ok(next_data.min(self.size).saturating_sub(self.at))
    }

    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        self.at = self.at.saturating_add(n).min(self.size);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::content::{Chunker, MAX_CHUNK_SIZE, chunks, zero_chunk};

    #[test]
    fn a_sparse_copy_is_cut_as_its_bytes_are_with_its_holes_as_chunks_of_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let max = u64::from(MAX_CHUNK_SIZE);
        let file = File::create(&path).unwrap();
        file.set_len(40 * max).unwrap();
        let data: Vec<u8> = (0..3_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
        file.write_all_at(&data, 10 * max + 5).unwrap();
        // Bytes past the recorded size are not the file's.
        let size = 39 * max + 3;
        let ours: Vec<_> = Chunker::new(StagedCopy::new(File::open(&path).unwrap(), size))
            .map(|c| c.map(|c| (c.offset, c.reference())).unwrap())
            .collect();
        let bytes = std::fs::read(&path).unwrap();
        let theirs: Vec<_> = chunks(&bytes[..size as usize])
            .map(|c| c.map(|c| (c.offset, c.reference())).unwrap())
            .collect();
        assert_eq!(ours, theirs);
        let zero = ours.iter().filter(|(_, c)| c.hash == zero_chunk()).count();
        assert!(zero >= 30, "{zero} chunks of zeros");
    }
}
