//! Verified slices of a chunk: a byte range of a chunk together with the
//! part of its BLAKE3 Merkle tree that proves it (BLAKE3 verified
//! streaming, the `bao` slice format). A chunk's name is the root of that
//! tree over 1 KiB leaves, so a reader holding only the hash checks every
//! byte of the slice before it uses any: the server cuts slices with
//! [`extract`], the client opens them with [`verify`].

use crate::content::Hash;
use std::io::{Cursor, Read, Seek, SeekFrom};

/// The smallest unit a slice proves: BLAKE3's leaf size. A slice covers
/// the whole leaves its range touches.
pub const LEAF: u64 = 1024;

/// A slice that does not prove what it claims.
#[derive(Debug, thiserror::Error)]
#[error("the slice of chunk {hash} at {offset} (+{len}) does not verify: {reason}")]
pub struct BadSlice {
    pub hash: Hash,
    pub offset: u64,
    pub len: u64,
    pub reason: String,
}

/// The outboard tree of `chunk` (the parent nodes, without the content),
/// from which [`extract`] cuts slices.
pub fn outboard(chunk: &[u8]) -> Vec<u8> {
    bao::encode::outboard(chunk).0
}

/// The length of the outboard tree of a chunk of `size` bytes.
pub fn outboard_size(size: u64) -> u64 {
    bao::encode::outboard_size(size) as u64
}

/// The slice encoding of `chunk[offset..offset+len]` (clipped to the
/// chunk): the covering leaves interleaved with their proof.
pub fn extract(chunk: &[u8], outboard: &[u8], offset: u64, len: u64) -> Vec<u8> {
    extract_from_leaves(chunk, 0, outboard, offset, len).expect("the whole chunk is at hand")
}

/// The bytes of a chunk of `size` bytes that a slice of
/// `offset..offset+len` reads: the whole leaves the range touches (so a
/// server with the tree at hand reads these, not the chunk).
pub fn leaves(size: u64, offset: u64, len: u64) -> std::ops::Range<u64> {
    let start = offset.min(size) / LEAF * LEAF;
    let end = offset.saturating_add(len).min(size).div_ceil(LEAF) * LEAF;
    start..end.min(size)
}

/// [`extract`] from the chunk's bytes `at..at + part.len()` only, which
/// must hold its [`leaves`] for the range (an error otherwise).
pub fn extract_from_leaves(
    part: &[u8],
    at: u64,
    outboard: &[u8],
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    bao::encode::SliceExtractor::new_outboard(
        Window { part, at, pos: 0 },
        Cursor::new(outboard),
        offset,
        len,
    )
    .read_to_end(&mut out)?;
    Ok(out)
}

/// Part of a chunk, read and sought at the chunk's own offsets.
struct Window<'a> {
    part: &'a [u8],
    at: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.at + self.part.len() as u64;
        if self.pos < self.at || self.pos > end {
            return Err(std::io::Error::other(format!(
                "the slice reads offset {} of the chunk, outside the {}..{end} at hand",
                self.pos, self.at
            )));
        }
        let from = (self.pos - self.at) as usize;
        let n = buf.len().min(self.part.len() - from);
        buf[..n].copy_from_slice(&self.part[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| std::io::Error::other("a seek before the start of the chunk"))?,
            SeekFrom::End(_) => {
                return Err(std::io::Error::other("a seek from the end of a chunk part"));
            }
        };
        Ok(self.pos)
    }
}

/// The bytes `offset..offset+len` of chunk `hash`, `size` bytes long
/// (fewer at its end), out of a slice encoding, once every one is proven
/// against `hash`. The length the slice claims must be `size`: the tree
/// proves it only in the chunk's last leaf.
pub fn verify(
    hash: &Hash,
    size: u64,
    offset: u64,
    len: u64,
    encoded: &[u8],
) -> Result<Vec<u8>, BadSlice> {
    let bad = |reason: String| BadSlice {
        hash: *hash,
        offset,
        len,
        reason,
    };
    let claimed = encoded
        .first_chunk::<8>()
        .map(|h| u64::from_le_bytes(*h))
        .ok_or_else(|| bad("it is shorter than its header".into()))?;
    if claimed != size {
        return Err(bad(format!("it claims {claimed} bytes, not {size}")));
    }
    let root = blake3::Hash::from_bytes(*hash.as_bytes());
    let mut decoder = bao::decode::SliceDecoder::new(encoded, &root, offset, len);
    let mut out = Vec::new();
    decoder
        .read_to_end(&mut out)
        .map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_slice_yields_exactly_the_bytes_asked_for() {
        let data = chunk(300_000);
        let hash = Hash::of(&data);
        let ob = outboard(&data);
        for (offset, len) in [
            (0, 4096),
            (12_345, 4096),
            (299_000, 5000),
            (0, 300_000),
            (1, 1),
        ] {
            let encoded = extract(&data, &ob, offset, len);
            let got = verify(&hash, data.len() as u64, offset, len, &encoded).unwrap();
            let end = (offset + len).min(data.len() as u64);
            assert_eq!(got, &data[offset as usize..end as usize]);
        }
    }

    #[test]
    fn a_slice_cut_from_its_leaves_alone_is_the_slice_of_the_whole_chunk() {
        let data = chunk(300_000);
        let ob = outboard(&data);
        for (offset, len) in [
            (0, 4096),
            (12_345, 4096),
            (299_000, 5000),
            (1023, 2),
            (0, 300_000),
        ] {
            let window = leaves(data.len() as u64, offset, len);
            let part = &data[window.start as usize..window.end as usize];
            assert_eq!(
                extract_from_leaves(part, window.start, &ob, offset, len).unwrap(),
                extract(&data, &ob, offset, len),
                "{offset} +{len}"
            );
            assert!(part.len() as u64 <= len + 2 * LEAF);
        }
        // Too little at hand is an error, not a wrong slice.
        assert!(extract_from_leaves(&data[20_480..24_576], 20_480, &ob, 12_345, 4096).is_err());
    }

    #[test]
    fn a_small_slice_costs_little_more_than_its_bytes() {
        let data = chunk(4 << 20);
        let encoded = extract(&data, &outboard(&data), 1 << 20, 4096);
        assert!(
            encoded.len() < 2 * 4096,
            "{} bytes for 4 KiB",
            encoded.len()
        );
    }

    #[test]
    fn a_tampered_slice_or_the_wrong_hash_is_refused() {
        let data = chunk(100_000);
        let hash = Hash::of(&data);
        let encoded = extract(&data, &outboard(&data), 50_000, 4096);
        for i in [0, 8, encoded.len() / 2, encoded.len() - 1] {
            let mut bad = encoded.clone();
            bad[i] ^= 1;
            assert!(
                verify(&hash, 100_000, 50_000, 4096, &bad).is_err(),
                "byte {i}"
            );
        }
        assert!(verify(&Hash::of(b"another"), 100_000, 50_000, 4096, &encoded).is_err());
        assert!(verify(&hash, 100_000, 50_000, 4096, &encoded[..encoded.len() - 1]).is_err());
        // The slice of another chunk of the same size.
        let other = chunk(100_001)[1..].to_vec();
        let theirs = extract(&other, &outboard(&other), 50_000, 4096);
        assert!(verify(&hash, 100_000, 50_000, 4096, &theirs).is_err());
    }
}
