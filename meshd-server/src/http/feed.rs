//! `GET /v1/objects/{id}/feed` (paged by change cursor, JSON or Atom, with
//! ETags; from the start when the cursor is older than compacted tombstones) and `POST /v1/objects/{id}/feed` (merge posted items by FeedSync;
//! what it changes in a Live Folder becomes news).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mesh_protocol::api::{KIND_FOLDER, MeshObject, Role};
use mesh_protocol::content::Hash;
use mesh_protocol::feed::{Feed, Sharing};
use mesh_protocol::feedsync::{self, Item, Link};
use mesh_protocol::folder::EntryData;
use mesh_protocol::{atom, json};
use serde::Deserialize;
use std::collections::HashSet;

use super::objects::visible;
use super::{Format, Query};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::sharing::require;
use crate::state::AppState;
use crate::store::news::{self, FileChanges};
use crate::store::{chunks, entries, usage};

const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 5000;

#[derive(Deserialize)]
pub struct PageQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

fn link(rel: &str, href: String) -> Link {
    Link {
        href,
        rel: Some(rel.to_owned()),
        media_type: None,
        hreflang: None,
        title: None,
        length: None,
    }
}

fn feed_of(object: &MeshObject, items: Vec<Item>) -> Feed {
    Feed {
        title: Some(object.name.clone()),
        id: Some(format!("urn:uuid:{}", object.id)),
        updated: Some(object.updated),
        items,
        ..Feed::default()
    }
}

fn respond(status: StatusCode, format: Format, feed: &Feed, etag: Option<String>) -> Response {
    let body = match format {
        Format::Json => json::feed_to_vec(feed),
        Format::Atom => atom::write_feed(feed).into_bytes(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(header::ETAG, tag);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    response
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let visible = visible(&state, caller, &id).await?;
    let format = Format::accepted(&headers, Format::Json);
    let since = q.since.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    // The object's sequence moves with every change to it or its entries,
    // so it names this page's content together with the query.
    let etag = format!(
        "\"{}-{}-{since}-{limit}-{}\"",
        visible.object.id,
        visible.seq,
        if format == Format::Atom {
            "atom"
        } else {
            "json"
        }
    );
    if etag_matches(&headers, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return Ok(response);
    }
    let object_id = visible.object.id;
    let page = state
        .db
        .read(move |conn| Ok::<_, ApiError>(entries::page(conn, object_id, since, limit)?))
        .await?;
    // Below the horizon, the page starts the complete feed: `sharing.since`
    // says from where, so a reader knows to drop what it was not sent.
    let since = page.since;
    let until = page.items.last().map_or(since, |(seq, _)| *seq);
    let path = format!("/v1/objects/{object_id}/feed");
    let mut feed = feed_of(
        &visible.object,
        page.items.into_iter().map(|(_, item)| item).collect(),
    );
    feed.links
        .push(link("self", format!("{path}?since={since}&limit={limit}")));
    if page.more {
        feed.links
            .push(link("next", format!("{path}?since={until}&limit={limit}")));
    }
    feed.sharing = Some(Sharing {
        since: Some(since.to_string()),
        until: Some(until.to_string()),
        expires: None,
        related: Vec::new(),
    });
    Ok(respond(StatusCode::OK, format, &feed, Some(etag)))
}

/// Reads a posted feed in either encoding and checks every version it
/// carries: enclosures must add up, and a Live Folder's entries must be
/// valid entry data (names included).
fn read_posted(headers: &HeaderMap, body: &Bytes, kind: &str) -> ApiResult<(Format, Feed)> {
    let format = Format::of_body(headers, body)?;
    let feed = match format {
        Format::Atom => atom::read_feed(body)
            .map_err(|e| ApiError::BadRequest(format!("malformed Atom feed: {e}")))?,
        Format::Json => json::feed_from_json(body)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON feed: {e}")))?,
    };
    for (index, item) in feed.items.iter().enumerate() {
        let refuse =
            |what: String| ApiError::BadRequest(format!("item {index} ({}): {what}", item.id()));
        for version in item.versions() {
            if let Some(content) = &version.body.enclosure {
                content
                    .validate()
                    .map_err(|e| refuse(format!("enclosure: {e}")))?;
            }
            if kind == KIND_FOLDER {
                EntryData::from_body(&version.body).map_err(|e| refuse(e.to_string()))?;
            }
        }
    }
    Ok((format, feed))
}

pub async fn post(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let visible = visible(&state, caller, &id).await?;
    require(&visible.object, Role::Editor, "changing entries")?;
    let (posted_format, posted) = read_posted(&headers, &body, &visible.object.kind)?;
    let format = Format::accepted(&headers, posted_format);
    let object_id = visible.object.id;
    let folder = visible.object.kind == KIND_FOLDER;
    let news_window = state.limits.news_window;
    let skipped = posted.skipped;
    let incoming = posted.items;
    let count = incoming.len();
    let owner = visible.object.owner;
    let default_quota = state.limits.default_quota;
    let merged = state
        .write(move |tx| {
            // What members write counts against the owner's quota.
            let quota = usage::Guard::take(tx, owner, default_quota)?;
            let before = entries::latest(tx, object_id)?;
            let mut results = Vec::with_capacity(incoming.len());
            let mut files = FileChanges::default();
            for item in incoming {
                let local = entries::get(tx, object_id, item.id())?;
                check_chunks(tx, caller, local.as_ref(), &item)?;
                let merged = feedsync::merge(local.as_ref(), &item)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                if merged.changed {
                    entries::put(tx, object_id, &merged.item)?;
                    if folder {
                        files.note(local.as_ref(), &merged.item);
                    }
                }
                results.push(merged.item);
            }
            if let Some(quota) = &quota
                && let Err(over) = quota.check(tx)?
            {
                return Err(over_quota(over));
            }
            if !files.is_empty() {
                news::files(tx, object_id, caller.into(), news_window, files)?;
            }
            Ok((results, before, entries::latest(tx, object_id)?))
        })
        .await?;
    let (merged, before, after) = merged;
    tracing::debug!(object = %object_id, items = count, skipped = skipped.len(), "feed merged");
    let mut feed = feed_of(&visible.object, merged);
    feed.skipped = skipped;
    // Writes are one at a time: every change of the feed after `before` up
    // to `after` is this post's, and its items are in the answer. A reader
    // whose cursor was `before` has read all of the feed up to `after`.
    feed.sharing = Some(Sharing {
        since: Some(before.to_string()),
        until: Some(after.to_string()),
        expires: None,
        related: Vec::new(),
    });
    Ok(respond(StatusCode::OK, format, &feed, None))
}

/// The refusal of a change that would take the owner beyond their quota.
pub(super) fn over_quota(over: usage::Usage) -> ApiError {
    ApiError::OverQuota(format!(
        "this change would take the storage of the object's owner to {} bytes, beyond \
         their quota of {} bytes; nothing was changed (remove something, or ask the \
         server's administrator for a larger quota)",
        over.used,
        over.quota.unwrap_or_default()
    ))
}

/// Every chunk a posted version refers to must be stored, of the declared
/// size, and within the caller's scope (or already referred to by this
/// entry): knowing a hash never grants access to someone else's content.
fn check_chunks(
    conn: &rusqlite::Connection,
    caller: Principal,
    local: Option<&Item>,
    incoming: &Item,
) -> ApiResult<()> {
    let known: HashSet<Hash> = local
        .into_iter()
        .flat_map(|l| l.versions())
        .flat_map(|v| {
            v.body
                .enclosure
                .iter()
                .flat_map(|c| c.chunks.iter().map(|c| c.hash))
        })
        .collect();
    let mut missing = Vec::new();
    let mut checked = HashSet::new();
    for version in incoming.versions().filter(|v| !v.sync.deleted) {
        for chunk in version.body.enclosure.iter().flat_map(|c| &c.chunks) {
            if known.contains(&chunk.hash) || !checked.insert(chunk.hash) {
                continue;
            }
            match chunks::size_for(conn, caller, &chunk.hash)? {
                Some(size) if size == u64::from(chunk.size) => {}
                Some(size) => {
                    return Err(ApiError::BadRequest(format!(
                        "item {}: chunk {} has {size} bytes, not {}",
                        incoming.id(),
                        chunk.hash,
                        chunk.size
                    )));
                }
                None => missing.push(chunk.hash.to_hex()),
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::MissingChunks(format!(
            "item {} refers to chunks that are not uploaded; upload them first: {}",
            incoming.id(),
            missing.join(", ")
        )))
    }
}
