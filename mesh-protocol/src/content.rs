//! File content as Mesh stores it: content-defined chunks named by their
//! BLAKE3 hash, and the reference (enclosure) a file entry holds to them.
//!
//! The chunking parameters are frozen here: changing them would re-chunk
//! every file and defeat deduplication against what is already stored.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;

/// Smallest chunk FastCDC cuts (except a file's last chunk).
pub const MIN_CHUNK_SIZE: u32 = 256 * 1024;
/// Average chunk size FastCDC aims for.
pub const AVG_CHUNK_SIZE: u32 = 1024 * 1024;
/// Largest chunk FastCDC cuts, and the largest chunk the server accepts.
pub const MAX_CHUNK_SIZE: u32 = 4 * 1024 * 1024;

/// A BLAKE3 hash in lowercase hexadecimal: names a chunk or a file's whole
/// content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hash([u8; 32]);

/// Text that is not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid BLAKE3 hash {0:?}: expected 64 hexadecimal digits")]
pub struct InvalidHash(pub String);

impl Hash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_blake3(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }

    /// The hash whose 32 bytes are `bytes`.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }

    /// The hash's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn parse(s: &str) -> Result<Self, InvalidHash> {
        blake3::Hash::from_hex(s)
            .map(Self::from_blake3)
            .map_err(|_| InvalidHash(s.chars().take(80).collect()))
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for Hash {
    type Err = InvalidHash;
    fn from_str(s: &str) -> Result<Self, InvalidHash> {
        Hash::parse(s)
    }
}

impl TryFrom<String> for Hash {
    type Error = InvalidHash;
    fn try_from(s: String) -> Result<Self, InvalidHash> {
        Hash::parse(&s)
    }
}

impl From<Hash> for String {
    fn from(h: Hash) -> String {
        h.to_hex()
    }
}

/// One chunk of a file: its hash and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRef {
    pub hash: Hash,
    pub size: u32,
}

/// A file's content: the BLAKE3 hash of all its bytes, its length, and the
/// ordered chunks that make it up. Carried in Atom as
/// `<link rel="enclosure" href="urn:blake3:HASH" length="N">` with one
/// `mesh:chunk` child per chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRef {
    pub hash: Hash,
    pub length: u64,
    pub chunks: Vec<ChunkRef>,
}

/// A content reference whose chunks do not add up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidContentRef {
    #[error("the chunks add up to {sum} bytes but the content length is {length}")]
    LengthMismatch { sum: u64, length: u64 },
    #[error("chunk {index} has size {size}, outside 1..={MAX_CHUNK_SIZE}")]
    ChunkSize { index: usize, size: u32 },
}

impl ContentRef {
    /// The reference to empty content.
    pub fn empty() -> Self {
        ContentRef {
            hash: Hash::of(b""),
            length: 0,
            chunks: Vec::new(),
        }
    }

    /// Checks that every chunk has a size the server accepts and that the
    /// sizes add up to the length.
    pub fn validate(&self) -> Result<(), InvalidContentRef> {
        let mut sum = 0u64;
        for (index, c) in self.chunks.iter().enumerate() {
            if c.size == 0 || c.size > MAX_CHUNK_SIZE {
                return Err(InvalidContentRef::ChunkSize {
                    index,
                    size: c.size,
                });
            }
            sum += u64::from(c.size);
        }
        if sum != self.length {
            return Err(InvalidContentRef::LengthMismatch {
                sum,
                length: self.length,
            });
        }
        Ok(())
    }

    /// Bytes of the content that are largest chunks of zeros: the holes of
    /// a sparse file, as chunking stores them (a run of zeros has no cut
    /// point, so it is cut into [`MAX_CHUNK_SIZE`] chunks of zeros, all
    /// one chunk).
    pub fn zero_bytes(&self) -> u64 {
        let zeros = zero_chunk();
        self.chunks
            .iter()
            .filter(|c| c.size == MAX_CHUNK_SIZE && c.hash == zeros)
            .map(|c| u64::from(c.size))
            .sum()
    }

    /// The chunks that cover bytes `offset..offset+len`, with the offset at
    /// which each starts.
    pub fn chunks_covering(
        &self,
        offset: u64,
        len: u64,
    ) -> impl Iterator<Item = (u64, ChunkRef)> + '_ {
        let end = offset.saturating_add(len);
        let mut start = 0u64;
        self.chunks.iter().filter_map(move |c| {
            let at = start;
            start += u64::from(c.size);
            (at < end && start > offset).then_some((at, *c))
        })
    }
}

/// A largest chunk of zeros, shared by every hole that is one.
static ZEROS: [u8; MAX_CHUNK_SIZE as usize] = [0; MAX_CHUNK_SIZE as usize];

/// The hash of a [`MAX_CHUNK_SIZE`] chunk of zeros.
pub fn zero_chunk() -> Hash {
    static HASH: std::sync::OnceLock<Hash> = std::sync::OnceLock::new();
    *HASH.get_or_init(|| Hash::of(&ZEROS))
}

/// A chunk cut from a stream: where it starts, its bytes and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub data: bytes::Bytes,
    pub hash: Hash,
}

impl Chunk {
    fn new(offset: u64, data: Vec<u8>) -> Chunk {
        let hash = Hash::of(&data);
        Chunk {
            offset,
            data: data.into(),
            hash,
        }
    }

    pub fn reference(&self) -> ChunkRef {
        ChunkRef {
            hash: self.hash,
            size: self.data.len() as u32,
        }
    }
}

/// What chunks are cut from: bytes read in order, with what is known of
/// the runs of zeros ahead (a sparse file's holes), which need not be read.
pub trait Source {
    /// Reads from the current position on; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;

    /// How many bytes from the current position are known to be zeros.
    fn zeros_ahead(&mut self) -> std::io::Result<u64> {
        Ok(0)
    }

    /// Moves the position `n` bytes on, over zeros [`Source::zeros_ahead`]
    /// reported.
    fn skip(&mut self, n: u64) -> std::io::Result<()>;
}

/// A [`Source`] that knows of no holes.
struct Plain<R>(R);

impl<R: Read> Source for Plain<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }

    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let skipped = std::io::copy(&mut (&mut self.0).take(n), &mut std::io::sink())?;
        match skipped == n {
            true => Ok(()),
            false => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Cuts a [`Source`] into content-defined chunks with the frozen
/// parameters, as FastCDC's streaming chunker does: each cut is looked for
/// in the next [`MAX_CHUNK_SIZE`] bytes. Where a chunk would start in a
/// hole at least that long, the chunk is the largest chunk of zeros (a run
/// of zeros has no cut point), and the hole is not read.
pub struct Chunker<S> {
    source: S,
    /// Bytes read and not yet cut; `len` of them are valid.
    buf: Vec<u8>,
    len: usize,
    /// Where `buf` starts in the content.
    offset: u64,
    eof: bool,
    masks: (u64, u64),
}

impl<S: Source> Chunker<S> {
    pub fn new(source: S) -> Self {
        Chunker {
            source,
            buf: Vec::new(),
            len: 0,
            offset: 0,
            eof: false,
            masks: fastcdc::v2020::select_masks(
                AVG_CHUNK_SIZE as usize,
                fastcdc::v2020::Normalization::Level1,
            ),
        }
    }

    /// Reads until a largest chunk's worth is buffered or the source ends;
    /// the buffer grows as needed, so small content takes little memory.
    fn fill(&mut self) -> std::io::Result<()> {
        let max = MAX_CHUNK_SIZE as usize;
        while !self.eof && self.len < max {
            if self.len == self.buf.len() {
                let grown = (self.buf.len() * 2).clamp(64 * 1024, max);
                self.buf.resize(grown, 0);
            }
            match self.source.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let max = MAX_CHUNK_SIZE as usize;
        if self.len == 0 && !self.eof && self.source.zeros_ahead()? >= max as u64 {
            self.source.skip(max as u64)?;
            let chunk = Chunk {
                offset: self.offset,
                data: bytes::Bytes::from_static(&ZEROS),
                hash: zero_chunk(),
            };
            self.offset += max as u64;
            return Ok(Some(chunk));
        }
        self.fill()?;
        if self.len == 0 {
            return Ok(None);
        }
        let (mask_s, mask_l) = self.masks;
        let (_, cut) = fastcdc::v2020::cut(
            &self.buf[..self.len],
            MIN_CHUNK_SIZE as usize,
            AVG_CHUNK_SIZE as usize,
            max,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        );
        let chunk = Chunk::new(self.offset, self.buf[..cut].to_vec());
        self.buf.copy_within(cut..self.len, 0);
        self.len -= cut;
        self.offset += cut as u64;
        Ok(Some(chunk))
    }
}

impl<S: Source> Iterator for Chunker<S> {
    type Item = std::io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_chunk();
        if next.is_err() {
            // Nothing follows a failed read.
            self.eof = true;
            self.len = 0;
        }
        next.transpose()
    }
}

/// Cuts `reader` into content-defined chunks with the frozen parameters.
pub fn chunks<R: Read>(reader: R) -> Chunker<impl Source> {
    Chunker::new(Plain(reader))
}

/// Chunks all of `reader` and returns the content reference for it together
/// with the chunks, in order.
pub fn content_of<R: Read>(reader: R) -> std::io::Result<(ContentRef, Vec<Chunk>)> {
    let mut whole = blake3::Hasher::new();
    let mut refs = Vec::new();
    let mut all = Vec::new();
    let mut length = 0u64;
    for chunk in chunks(reader) {
        let chunk = chunk?;
        whole.update(&chunk.data);
        length += chunk.data.len() as u64;
        refs.push(chunk.reference());
        all.push(chunk);
    }
    Ok((
        ContentRef {
            hash: Hash::from_blake3(whole.finalize()),
            length,
            chunks: refs,
        },
        all,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_zeros_is_cut_into_largest_chunks_of_zeros() {
        let max = MAX_CHUNK_SIZE as usize;
        let mut data = pseudo_random(300_000, 7);
        data.resize(data.len() + 3 * max + 1000, 0);
        data.extend(pseudo_random(300_000, 8));
        let (content, _) = content_of(&data[..]).unwrap();
        // The zeros after the data's last cut fill the chunk they start
        // in; the rest are two largest chunks of zeros.
        let zero = content
            .chunks
            .iter()
            .filter(|c| c.hash == zero_chunk())
            .count();
        assert!(zero >= 2, "{:?}", content.chunks);
        assert_eq!(content.zero_bytes(), zero as u64 * MAX_CHUNK_SIZE as u64);
        assert!(content.zero_bytes() <= 3 * MAX_CHUNK_SIZE as u64 + 1000);
        let (dense, _) = content_of(&pseudo_random(5 * max, 9)[..]).unwrap();
        assert_eq!(dense.zero_bytes(), 0);
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn hash_parses_only_64_hex_digits() {
        let h = Hash::of(b"abc");
        assert_eq!(Hash::parse(&h.to_hex()), Ok(h));
        assert!(Hash::parse("abc").is_err());
        assert!(Hash::parse(&"g".repeat(64)).is_err());
        assert_eq!(
            h.to_hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
    }

    #[test]
    fn chunks_reassemble_and_respect_bounds() {
        let data = pseudo_random(9 * 1024 * 1024 + 17, 7);
        let (content, chunks) = content_of(&data[..]).unwrap();
        content.validate().unwrap();
        assert_eq!(content.length, data.len() as u64);
        assert_eq!(content.hash, Hash::of(&data));
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
        assert_eq!(joined, data);
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.data.len() as u32 >= MIN_CHUNK_SIZE && c.data.len() as u32 <= MAX_CHUNK_SIZE);
        }
    }

    /// Content in memory whose runs of zeros of at least `hole` bytes are
    /// holes, as a sparse file's are.
    struct Holey<'a> {
        data: &'a [u8],
        at: usize,
        hole: usize,
        skipped: u64,
    }

    impl Source for Holey<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.data.len() - self.at).min(100_000);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }

        fn zeros_ahead(&mut self) -> std::io::Result<u64> {
            let zeros = self.data[self.at..].iter().take_while(|b| **b == 0).count();
            Ok(if zeros >= self.hole { zeros as u64 } else { 0 })
        }

        fn skip(&mut self, n: u64) -> std::io::Result<()> {
            self.at += n as usize;
            self.skipped += n;
            Ok(())
        }
    }

    fn fastcdc_cuts(data: &[u8]) -> Vec<(u64, usize)> {
        fastcdc::v2020::StreamCDC::new(
            data,
            MIN_CHUNK_SIZE as usize,
            AVG_CHUNK_SIZE as usize,
            MAX_CHUNK_SIZE as usize,
        )
        .map(|c| c.map(|c| (c.offset, c.length)).unwrap())
        .collect()
    }

    #[test]
    fn holes_are_skipped_and_cut_as_fastcdc_cuts_their_zeros() {
        let max = MAX_CHUNK_SIZE as usize;
        let mut data = pseudo_random(700_000, 1);
        data.resize(data.len() + 5 * max + 12_345, 0);
        data.extend(pseudo_random(2 * max, 2));
        data.resize(data.len() + 3 * max, 0);
        let mut source = Holey {
            data: &data,
            at: 0,
            hole: 64 * 1024,
            skipped: 0,
        };
        let ours: Vec<Chunk> = Chunker::new(&mut source)
            .collect::<std::io::Result<_>>()
            .unwrap();
        let cuts: Vec<(u64, usize)> = ours.iter().map(|c| (c.offset, c.data.len())).collect();
        assert_eq!(cuts, fastcdc_cuts(&data));
        assert!(
            source.skipped >= 5 * max as u64,
            "{} skipped",
            source.skipped
        );
        for c in &ours {
            let at = c.offset as usize;
            assert_eq!(&c.data[..], &data[at..at + c.data.len()]);
            assert_eq!(c.hash, Hash::of(&c.data));
        }
    }

    impl Source for &mut Holey<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            (**self).read(buf)
        }
        fn zeros_ahead(&mut self) -> std::io::Result<u64> {
            (**self).zeros_ahead()
        }
        fn skip(&mut self, n: u64) -> std::io::Result<()> {
            (**self).skip(n)
        }
    }

    #[test]
    fn small_content_is_cut_exactly_as_fastcdc_cuts_it() {
        let min = MIN_CHUNK_SIZE as usize;
        for len in [0, 1, min - 1, min, min + 1, 3 * min + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            let ours: Vec<(u64, usize)> = chunks(&data[..])
                .map(|c| c.map(|c| (c.offset, c.data.len())).unwrap())
                .collect();
            assert_eq!(ours, fastcdc_cuts(&data), "{len} bytes");
        }
    }

    #[test]
    fn an_edit_in_the_middle_changes_few_chunks() {
        let mut data = pseudo_random(16 * 1024 * 1024, 3);
        let (before, _) = content_of(&data[..]).unwrap();
        for b in &mut data[8 * 1024 * 1024..8 * 1024 * 1024 + 1000] {
            *b = b.wrapping_add(1);
        }
        let (after, _) = content_of(&data[..]).unwrap();
        let new = after
            .chunks
            .iter()
            .filter(|c| !before.chunks.contains(c))
            .count();
        assert!(new <= 2, "{new} chunks changed for a 1000-byte edit");
    }

    #[test]
    fn validate_refuses_sizes_that_do_not_add_up() {
        let mut c = ContentRef {
            hash: Hash::of(b"x"),
            length: 10,
            chunks: vec![ChunkRef {
                hash: Hash::of(b"x"),
                size: 4,
            }],
        };
        assert!(matches!(
            c.validate(),
            Err(InvalidContentRef::LengthMismatch { .. })
        ));
        c.chunks[0].size = 0;
        assert!(matches!(
            c.validate(),
            Err(InvalidContentRef::ChunkSize { .. })
        ));
        assert_eq!(ContentRef::empty().validate(), Ok(()));
    }

    #[test]
    fn covering_chunks_are_only_those_touched() {
        let h = Hash::of(b"x");
        let c = ContentRef {
            hash: h,
            length: 30,
            chunks: vec![
                ChunkRef { hash: h, size: 10 },
                ChunkRef { hash: h, size: 10 },
                ChunkRef { hash: h, size: 10 },
            ],
        };
        let at: Vec<u64> = c.chunks_covering(12, 4).map(|(o, _)| o).collect();
        assert_eq!(at, vec![10]);
        let at: Vec<u64> = c.chunks_covering(9, 12).map(|(o, _)| o).collect();
        assert_eq!(at, vec![0, 10, 20]);
        assert_eq!(c.chunks_covering(30, 5).count(), 0);
    }
}
