//! Direct I/O for chunk files: buffers aligned for it, and writing a new
//! file past the page cache.
//!
//! A chunk read through the mount is already in the kernel's page cache
//! as the mount's file; writing it into the chunk cache through the page
//! cache too costs a second copy of every byte (the biggest part of a cold
//! sequential read's CPU, measured in docs/BENCHMARKS.md) and keeps it in
//! memory twice. With `O_DIRECT` the disk takes the bytes from the buffer
//! itself. The buffer, the file offset and the length must be aligned to
//! the device's block; the client collects a chunk into an
//! [`AlignedBuf`], and a chunk's last partial block, a buffer that is not
//! aligned, or a file system that refuses direct I/O go through the page
//! cache as before.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The alignment direct I/O needs: the logical block of every disk in use
/// (512 or 4096 bytes) divides it.
pub const ALIGN: usize = 4096;

/// Whether `data` starts where direct I/O can take it from.
pub fn is_aligned(data: &[u8]) -> bool {
    (data.as_ptr() as usize).is_multiple_of(ALIGN)
}

/// A growable buffer whose content starts at an [`ALIGN`]ed address, as
/// long as it stays within the capacity it was made with.
pub struct AlignedBuf {
    vec: Vec<u8>,
    /// Where the content starts in `vec`.
    start: usize,
}

impl AlignedBuf {
    pub fn with_capacity(capacity: usize) -> AlignedBuf {
        let mut vec: Vec<u8> = Vec::with_capacity(capacity + ALIGN);
        let start = vec.as_ptr().align_offset(ALIGN).min(ALIGN);
        vec.resize(start, 0);
        AlignedBuf { vec, start }
    }

    pub fn len(&self) -> usize {
        self.vec.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `bytes`; beyond the capacity the buffer grows as a `Vec`
    /// does and may lose its alignment (then its file is written through
    /// the page cache).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.vec.extend_from_slice(bytes);
    }

    /// The content, without a copy.
    pub fn freeze(self) -> Bytes {
        let start = self.start;
        Bytes::from(self.vec).slice(start..)
    }
}

/// Creates the new file `path` (0600) holding `data`: its whole blocks
/// with direct I/O when `data` is aligned and the file system takes it,
/// the rest through the page cache. Nothing is synced, as before: a chunk
/// file is a cache, renamed into place once written.
pub fn write_new_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let direct = if is_aligned(data) {
        data.len() / ALIGN * ALIGN
    } else {
        0
    };
    if direct > 0 {
        match write_direct(path, &data[..direct]) {
            Ok(()) => {
                let file = mesh_cli::private::options().write(true).open(path)?;
                return file.write_all_at(&data[direct..], direct as u64);
            }
            // A file system without direct I/O (tmpfs on older kernels,
            // some FUSE homes), or a device with a larger block.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let _ = std::fs::remove_file(path);
            }
            Err(e) => return Err(e),
        }
    }
    mesh_cli::private::options()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(data)
}

fn write_direct(path: &Path, blocks: &[u8]) -> io::Result<()> {
    let mut file: File = mesh_cli::private::options()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    file.write_all(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aligned_buffer_stays_aligned_within_its_capacity() {
        for capacity in [0, 1, 4095, 4096, 1 << 20] {
            let mut buf = AlignedBuf::with_capacity(capacity);
            assert!(buf.is_empty());
            let data: Vec<u8> = (0..capacity).map(|i| i as u8).collect();
            for part in data.chunks(1000) {
                buf.extend_from_slice(part);
            }
            let bytes = buf.freeze();
            assert!(is_aligned(&bytes), "capacity {capacity}");
            assert_eq!(&bytes[..], &data[..]);
        }
    }

    #[test]
    fn files_are_written_whole_aligned_or_not_whatever_their_length() {
        let dir = tempfile::tempdir().unwrap();
        for (i, len) in [0, 1, 4096, 4097, 3 * 4096 - 1, (1 << 20) + 17]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut aligned = AlignedBuf::with_capacity(len);
            aligned.extend_from_slice(&data);
            let aligned = aligned.freeze();
            // The same bytes one past an aligned address.
            let mut shifted = AlignedBuf::with_capacity(len + 1);
            shifted.extend_from_slice(&[0]);
            shifted.extend_from_slice(&data);
            let shifted = shifted.freeze().slice(1..);
            assert!(len == 0 || !is_aligned(&shifted));
            for (kind, bytes) in [("aligned", &aligned), ("shifted", &shifted)] {
                let path = dir.path().join(format!("{i}-{kind}"));
                write_new_file(&path, bytes).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), data, "{len} bytes, {kind}");
                // A new file only: an existing one is never overwritten.
                let again = write_new_file(&path, bytes).unwrap_err();
                assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
            }
        }
    }
}
