//! The body of `POST /v1/chunks`: several chunks in one upload, so that a
//! thousand small files cost a few requests, not a thousand. Each chunk is
//! framed as its BLAKE3 hash (32 bytes), its length (4 bytes, big-endian)
//! and its bytes, one after the other, nothing before or after. Decoding
//! checks the framing and each chunk's length; whoever stores the chunks
//! checks their hashes.

use crate::content::{Hash, MAX_CHUNK_SIZE};
use bytes::Bytes;

/// The media type of such a body.
pub const CONTENT_TYPE: &str = "application/x-mesh-chunks";
/// At most this many bytes of chunks in one batch...
pub const MAX_BATCH_BYTES: usize = 8 << 20;
/// ...and at most this many chunks.
pub const MAX_BATCH_CHUNKS: usize = 1024;
/// What one chunk's framing adds to its bytes.
pub const FRAME_OVERHEAD: usize = 32 + 4;
/// The largest body a batch within both limits can have.
pub const MAX_BODY: usize = MAX_BATCH_BYTES + MAX_BATCH_CHUNKS * FRAME_OVERHEAD;

/// Why a body is not a batch of chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the batch holds no chunks")]
    Empty,
    #[error("the batch ends inside the framing of chunk {index}")]
    Truncated { index: usize },
    #[error("chunk {index} is empty")]
    EmptyChunk { index: usize },
    #[error("chunk {index} is {size} bytes; a chunk holds at most {MAX_CHUNK_SIZE}")]
    ChunkTooLarge { index: usize, size: u64 },
    #[error("the batch holds more than {MAX_BATCH_CHUNKS} chunks")]
    TooManyChunks,
    #[error("the batch holds more than {MAX_BATCH_BYTES} bytes of chunks")]
    TooLarge,
}

/// The body carrying `chunks`, each named by its hash.
pub fn encode<'a>(chunks: impl IntoIterator<Item = (&'a Hash, &'a [u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (hash, data) in chunks {
        body.extend_from_slice(hash.as_bytes());
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(data);
    }
    body
}

/// The chunks of `body` with the hashes they are named by (not checked
/// here), in order; the bytes are slices of `body`, not copies.
pub fn decode(body: &Bytes) -> Result<Vec<(Hash, Bytes)>, BatchError> {
    let mut chunks = Vec::new();
    let mut at = 0;
    let mut total = 0;
    while at < body.len() {
        let index = chunks.len();
        if index == MAX_BATCH_CHUNKS {
            return Err(BatchError::TooManyChunks);
        }
        let header = body
            .get(at..at + FRAME_OVERHEAD)
            .ok_or(BatchError::Truncated { index })?;
        let hash = Hash::from_bytes(header[..32].try_into().expect("32 bytes"));
        let size = u32::from_be_bytes(header[32..].try_into().expect("4 bytes")) as usize;
        if size == 0 {
            return Err(BatchError::EmptyChunk { index });
        }
        if size > MAX_CHUNK_SIZE as usize {
            return Err(BatchError::ChunkTooLarge {
                index,
                size: size as u64,
            });
        }
        total += size;
        if total > MAX_BATCH_BYTES {
            return Err(BatchError::TooLarge);
        }
        let start = at + FRAME_OVERHEAD;
        if body.len() - start < size {
            return Err(BatchError::Truncated { index });
        }
        chunks.push((hash, body.slice(start..start + size)));
        at = start + size;
    }
    if chunks.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(chunks: &[&[u8]]) -> Bytes {
        let hashes: Vec<Hash> = chunks.iter().map(|c| Hash::of(c)).collect();
        Bytes::from(encode(hashes.iter().zip(chunks.iter().copied())))
    }

    #[test]
    fn chunks_come_back_in_order_with_their_names() {
        let chunks: [&[u8]; 3] = [b"one", &[7u8; 70_000], b"three"];
        let decoded = decode(&batch(&chunks)).unwrap();
        assert_eq!(decoded.len(), 3);
        for ((hash, data), sent) in decoded.iter().zip(chunks) {
            assert_eq!(&data[..], sent);
            assert_eq!(*hash, Hash::of(sent));
        }
    }

    #[test]
    fn every_malformed_body_is_refused_with_what_is_wrong() {
        let good = batch(&[b"first", b"second"]);
        assert_eq!(decode(&Bytes::new()), Err(BatchError::Empty));
        // Cut anywhere inside the second chunk's framing or bytes.
        for cut in [good.len() - 1, 32 + 4 + 5 + 10, 32 + 4 + 5 + 1] {
            assert_eq!(
                decode(&good.slice(..cut)),
                Err(BatchError::Truncated { index: 1 }),
                "cut at {cut}"
            );
        }
        let empty = Bytes::from(encode([(&Hash::of(b""), &b""[..])]));
        assert_eq!(decode(&empty), Err(BatchError::EmptyChunk { index: 0 }));
        let mut huge = Hash::of(b"x").as_bytes().to_vec();
        huge.extend_from_slice(&(MAX_CHUNK_SIZE + 1).to_be_bytes());
        assert_eq!(
            decode(&Bytes::from(huge)),
            Err(BatchError::ChunkTooLarge {
                index: 0,
                size: u64::from(MAX_CHUNK_SIZE) + 1
            })
        );
        let tiny: Vec<&[u8]> = vec![b"x"; MAX_BATCH_CHUNKS + 1];
        assert_eq!(decode(&batch(&tiny)), Err(BatchError::TooManyChunks));
        let big = vec![1u8; MAX_CHUNK_SIZE as usize];
        let over: Vec<&[u8]> = vec![&big; MAX_BATCH_BYTES / big.len() + 1];
        assert_eq!(decode(&batch(&over)), Err(BatchError::TooLarge));
        let at_most: Vec<&[u8]> = vec![&big; MAX_BATCH_BYTES / big.len()];
        assert_eq!(decode(&batch(&at_most)).unwrap().len(), at_most.len());
    }
}
