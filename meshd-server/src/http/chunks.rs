//! `PUT/GET/HEAD /v1/chunks/{hash}`, `POST /v1/chunks` (several in one
//! upload) and `POST /v1/chunks/missing`: the
//! content-addressed chunk store, scoped per user (see `store::chunks`).
//! `GET …?slice=OFFSET,LEN` answers a verified slice (`mesh_protocol::slice`):
//! a range with the proof that lets the reader check it against the hash. An
//! upload beyond the quota of the owner it counts against (`?object=ID`'s,
//! or the uploader's) is refused before anything is stored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mesh_protocol::api::{MissingRequest, MissingResponse};
use mesh_protocol::chunk_batch::{self, BatchError};
use mesh_protocol::content::{Hash, MAX_CHUNK_SIZE};
use std::collections::HashSet;
use std::ops::Range;

use super::objects::visible;
use super::{Query, parse_json, require_media};
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sharing::require;
use crate::state::AppState;
use crate::store::{chunks, usage};
use mesh_protocol::api::Role;
use serde::Deserialize;

fn parse_hash(text: &str) -> ApiResult<Hash> {
    Hash::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[derive(Deserialize)]
pub struct PutQuery {
    /// The object the chunk is uploaded for: it counts against its
    /// owner's quota (the caller's own without one).
    object: Option<String>,
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
    Query(q): Query<PutQuery>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let hash = parse_hash(&hash)?;
    if body.is_empty() {
        return Err(ApiError::BadRequest("a chunk cannot be empty".into()));
    }
    if body.len() > MAX_CHUNK_SIZE as usize {
        return Err(ApiError::TooLarge(format!(
            "a chunk holds at most {MAX_CHUNK_SIZE} bytes"
        )));
    }
    store(&state, caller, q.object, vec![(hash, body)]).await?;
    Ok(StatusCode::CREATED)
}

/// `POST /v1/chunks`: several chunks in one body (`chunk_batch`), all
/// stored or none.
pub async fn put_batch(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_media(&headers, chunk_batch::CONTENT_TYPE)?;
    let chunks = chunk_batch::decode(&body).map_err(|e| match e {
        BatchError::ChunkTooLarge { .. } | BatchError::TooManyChunks | BatchError::TooLarge => {
            ApiError::TooLarge(format!("{e}; nothing was stored"))
        }
        _ => ApiError::BadRequest(format!("{e}; nothing was stored")),
    })?;
    store(&state, caller, q.object, chunks).await?;
    Ok(StatusCode::CREATED)
}

/// Stores `chunks` uploaded by `caller` (for `object`, whose owner's quota
/// they count against; the caller's own without one), or none of them:
/// each must have the BLAKE3 hash it is named by, and the quota must admit
/// them all.
async fn store(
    state: &AppState,
    caller: Caller,
    object: Option<String>,
    chunks: Vec<(Hash, Bytes)>,
) -> ApiResult<()> {
    let chunks = tokio::task::spawn_blocking(move || {
        for (hash, data) in &chunks {
            let actual = Hash::of(data);
            if actual != *hash {
                return Err(ApiError::BadRequest(format!(
                    "the bytes sent as chunk {hash} have the BLAKE3 hash {actual}; nothing was stored"
                )));
            }
        }
        Ok(chunks)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))??;
    let owner = match object {
        Some(id) => {
            let visible = visible(state, caller, &id).await?;
            require(&visible.object, Role::Editor, "uploading content into it")?;
            visible.object.owner
        }
        None => caller.user,
    };
    let default = state.limits.default_quota;
    let sizes: Vec<(Hash, u64)> = chunks.iter().map(|(h, d)| (*h, d.len() as u64)).collect();
    state
        .db
        .read(move |conn| Ok::<_, ApiError>(usage::check_chunks(conn, owner, &sizes, default)?))
        .await?
        .map_err(super::feed::over_quota)?;
    // Small chunks go into the database with their records; the others
    // are in the blob store before them, held from collection until
    // recorded.
    let mut gate = None;
    for (hash, data) in chunks
        .iter()
        .filter(|(_, d)| !chunks::kept_inline(d.len() as u64))
    {
        if gate.is_none() {
            gate = Some(state.chunk_gate.read().await);
        }
        state.blobs.put(hash, data.clone()).await?;
    }
    let blobs: Vec<(Hash, Bytes)> = chunks
        .iter()
        .filter(|(_, d)| !chunks::kept_inline(d.len() as u64))
        .cloned()
        .collect();
    state
        .write(move |tx| {
            for (hash, data) in &chunks {
                chunks::record_upload(tx, caller.user, hash, data)?;
            }
            Ok(())
        })
        .await?;
    drop(gate);
    if !blobs.is_empty() {
        state.slice_trees.compute_later(blobs);
    }
    Ok(())
}

/// A chunk the caller may read.
struct Stored {
    hash: Hash,
    size: u64,
    /// Its bytes, when the database keeps them.
    inline: Option<Bytes>,
}

impl Stored {
    /// Looks `hash` up in `who`'s scope: not found outside it.
    async fn find(state: &AppState, who: Principal, hash: &str) -> ApiResult<Stored> {
        let hash = parse_hash(hash)?;
        state
            .db
            .read(move |conn| {
                let Some(size) = chunks::size_for(conn, who, &hash)? else {
                    return Err(ApiError::NotFound);
                };
                let inline = if chunks::kept_inline(size) {
                    chunks::inline_data(conn, &hash)?.map(Bytes::from)
                } else {
                    None
                };
                Ok(Stored { hash, size, inline })
            })
            .await
    }

    /// The bytes in `range` (clamped to the chunk's end), wherever they are.
    async fn read(&self, state: &AppState, range: Range<u64>) -> ApiResult<Bytes> {
        if let Some(data) = &self.inline {
            let end = range.end.min(self.size);
            return Ok(data.slice(range.start.min(end) as usize..end as usize));
        }
        state.blobs.get(&self.hash, range).await?.ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "chunk {} is recorded but its bytes are missing",
                self.hash
            ))
        })
    }
}

fn chunk_headers(response: &mut Response, hash: &Hash) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hash}\"")) {
        headers.insert(header::ETAG, v);
    }
}

#[derive(Deserialize)]
pub struct GetQuery {
    /// `OFFSET,LEN`: a verified slice of the chunk instead of its bytes.
    slice: Option<String>,
}

/// The media type of a verified slice (the bao slice format).
pub const SLICE_TYPE: &str = "application/x-mesh-slice";

/// Parses `OFFSET,LEN` against a chunk of `size` bytes: a slice must
/// start inside the chunk and hold at least one byte.
fn parse_slice(text: &str, size: u64) -> ApiResult<(u64, u64)> {
    let malformed = || {
        ApiError::BadRequest(format!(
            "malformed slice {text:?}: expected OFFSET,LEN in bytes, LEN at least 1"
        ))
    };
    let (offset, len) = text.split_once(',').ok_or_else(malformed)?;
    let offset: u64 = offset.parse().map_err(|_| malformed())?;
    let len: u64 = len.parse().map_err(|_| malformed())?;
    if len == 0 {
        return Err(malformed());
    }
    if offset >= size {
        return Err(ApiError::RangeNotSatisfiable { length: size });
    }
    Ok((offset, len))
}

/// A verified slice of a stored chunk, cut with its outboard tree (see
/// `slice_trees`).
async fn slice(state: &AppState, chunk: &Stored, text: &str) -> ApiResult<Response> {
    let (hash, size) = (chunk.hash, chunk.size);
    let (offset, len) = parse_slice(text, size)?;
    let trees = state.slice_trees.clone();
    // With its tree at hand, only the leaves the slice covers are read.
    let (part, at, tree) = match trees.get(&hash, size).await? {
        Some(tree) => {
            let leaves = mesh_protocol::slice::leaves(size, offset, len);
            let at = leaves.start;
            (chunk.read(state, leaves).await?, at, Some(tree))
        }
        None => (chunk.read(state, 0..size).await?, 0, None),
    };
    let computed = tree.is_none();
    let (encoded, tree) = tokio::task::spawn_blocking(move || {
        let tree = tree.unwrap_or_else(|| trees.compute(hash, &part));
        mesh_protocol::slice::extract_from_leaves(&part, at, &tree, offset, len)
            .map(|encoded| (encoded, tree))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::Internal(e.into()))?;
    // A chunk stored before trees were: its tree is kept from now on (an
    // inline chunk's is quick to compute, and goes with its record).
    if computed
        && chunk.inline.is_none()
        && let Err(e) = state.slice_trees.save(&hash, &tree).await
    {
        tracing::warn!(%hash, error = %e, "a computed slice tree was not stored");
    }
    let mut response = (StatusCode::OK, encoded).into_response();
    chunk_headers(&mut response, &hash);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SLICE_TYPE));
    Ok(response)
}

pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(hash): Path<String>,
    Query(q): Query<GetQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let chunk = Stored::find(&state, caller, &hash).await?;
    let size = chunk.size;
    if let Some(text) = q.slice {
        return slice(&state, &chunk, &text).await;
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) => parse_range(spec, size)?,
        None => None,
    };
    let bytes = chunk.read(&state, range.clone().unwrap_or(0..size)).await?;
    let mut response = match range {
        Some(r) => {
            let mut response = (StatusCode::PARTIAL_CONTENT, bytes).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
            {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            response
        }
        None => (StatusCode::OK, bytes).into_response(),
    };
    chunk_headers(&mut response, &chunk.hash);
    Ok(response)
}

pub async fn head(
    State(state): State<AppState>,
    caller: Principal,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let chunk = Stored::find(&state, caller, &hash).await?;
    let mut response = StatusCode::OK.into_response();
    chunk_headers(&mut response, &chunk.hash);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(chunk.size));
    Ok(response)
}

/// Parses a single `bytes=` range against a chunk of `size` bytes. A range
/// header naming several ranges is answered with the whole chunk (as HTTP
/// allows); one that cannot be satisfied is refused.
fn parse_range(spec: &str, size: u64) -> ApiResult<Option<Range<u64>>> {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if set.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = ApiError::RangeNotSatisfiable { length: size };
    let (first, last) = set
        .trim()
        .split_once('-')
        .ok_or(ApiError::BadRequest(format!(
            "malformed Range header {spec:?}"
        )))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("malformed Range header {spec:?}")))
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => {
            let suffix = number(last)?;
            if suffix == 0 {
                return Err(unsatisfiable);
            }
            size.saturating_sub(suffix)..size
        }
        (false, true) => number(first)?..size,
        (false, false) => {
            let (a, b) = (number(first)?, number(last)?);
            if b < a {
                return Err(ApiError::BadRequest(format!(
                    "malformed Range header {spec:?}"
                )));
            }
            a..b.saturating_add(1).min(size)
        }
        (true, true) => {
            return Err(ApiError::BadRequest(format!(
                "malformed Range header {spec:?}"
            )));
        }
    };
    if range.start >= size {
        return Err(unsatisfiable);
    }
    Ok(Some(range))
}

/// Which of the hashes asked about the caller may not refer to yet, in
/// the order asked, once each. At most `max_missing_hashes` a request: a
/// longer question is refused (`413`) and must be asked in batches.
pub async fn missing(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<MissingResponse>> {
    let req: MissingRequest = parse_json(&body)?;
    let cap = state.limits.max_missing_hashes;
    if req.hashes.len() > cap {
        return Err(ApiError::TooLarge(format!(
            "{} hashes in one question; ask about at most {cap} at a time",
            req.hashes.len()
        )));
    }
    let missing = state
        .db
        .read(move |conn| {
            let mut asked = HashSet::new();
            let mut missing = Vec::new();
            for hash in req.hashes {
                if asked.insert(hash) && chunks::size_in_scope(conn, caller.user, &hash)?.is_none()
                {
                    missing.push(hash);
                }
            }
            Ok::<_, ApiError>(missing)
        })
        .await?;
    Ok(Json(MissingResponse { missing }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices() {
        assert_eq!(parse_slice("0,4096", 100).unwrap(), (0, 4096));
        assert_eq!(parse_slice("99,1", 100).unwrap(), (99, 1));
        assert!(matches!(
            parse_slice("100,1", 100),
            Err(ApiError::RangeNotSatisfiable { length: 100 })
        ));
        for bad in ["", "1", "1,0", "-1,2", "a,b", "1,2,3", "1, 2"] {
            assert!(
                matches!(parse_slice(bad, 100), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=50-1000", 100).unwrap(), Some(50..100));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert!(matches!(
            parse_range("bytes=100-", 100),
            Err(ApiError::RangeNotSatisfiable { length: 100 })
        ));
        assert!(matches!(
            parse_range("bytes=-0", 100),
            Err(ApiError::RangeNotSatisfiable { .. })
        ));
        assert!(matches!(
            parse_range("bytes=9-2", 100),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_range("bytes=x-2", 100),
            Err(ApiError::BadRequest(_))
        ));
    }
}
