//! The HTTP API: routes, and the few helpers every handler shares (JSON in
//! and out, content negotiation between JSON and Atom).

mod accounts;
mod apps;
mod audit;
mod awareness;
mod chunks;
mod events;
mod feed;
mod invitations;
mod invite_page;
mod members;
mod news;
mod objects;
mod presence;
mod totp;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::http::{Request, Uri};
use axum::routing::{delete, get, patch, post, put};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let max_body = state.limits.max_body;
    let chunk_limit = mesh_protocol::content::MAX_CHUNK_SIZE as usize;
    Router::new()
        .route("/v1/tokens", post(accounts::enroll))
        .route("/v1/account/usage", get(accounts::usage))
        .route("/v1/devices", get(accounts::list_devices))
        .route("/v1/devices/{id}", delete(accounts::revoke_device))
        .route("/v1/audit", get(audit::mine))
        .route("/v1/account/totp", post(totp::begin).delete(totp::disable))
        .route("/v1/account/totp/confirm", post(totp::confirm))
        .route("/v1/apps", get(apps::list).post(apps::create))
        .route("/v1/apps/{id}", delete(apps::revoke))
        .route("/v1/presence", post(presence::renew).delete(presence::end))
        .route("/v1/objects", get(objects::list).post(objects::create))
        .route(
            "/v1/objects/{id}",
            get(objects::get)
                .patch(objects::patch)
                .delete(objects::delete),
        )
        .route("/v1/objects/{id}/feed", get(feed::get).post(feed::post))
        .route(
            "/v1/objects/{id}/awareness",
            get(awareness::get)
                .put(awareness::publish)
                .delete(awareness::withdraw),
        )
        .route(
            "/v1/chunks/{hash}",
            put(chunks::put)
                .get(chunks::get)
                .head(chunks::head)
                .layer(DefaultBodyLimit::max(chunk_limit)),
        )
        .route(
            "/v1/chunks",
            post(chunks::put_batch)
                .layer(DefaultBodyLimit::max(mesh_protocol::chunk_batch::MAX_BODY)),
        )
        .route("/v1/chunks/missing", post(chunks::missing))
        .route("/v1/events", get(events::stream))
        .route(
            "/v1/objects/{id}/members",
            get(members::list).post(members::share),
        )
        .route(
            "/v1/objects/{id}/members/{user}",
            patch(members::change_role).delete(members::remove),
        )
        .route("/v1/objects/{id}/apps", post(members::invite_app))
        .route("/v1/objects/{id}/apps/{app}", delete(members::remove_app))
        .route("/v1/objects/{id}/invitations", get(members::invitations))
        .route("/v1/news", get(news::mesh).post(news::post_mesh))
        .route(
            "/v1/objects/{id}/news",
            get(news::object).post(news::post_object),
        )
        .route("/v1/invitations", get(invitations::mine))
        .route("/v1/invitations/accept", post(invitations::accept_token))
        .route("/v1/invitations/{id}", delete(invitations::revoke))
        .route("/v1/invitations/{id}/accept", post(invitations::accept))
        .route("/v1/invitations/{id}/decline", post(invitations::decline))
        .route(
            "/invite/{token}",
            get(invite_page::show).post(invite_page::answer),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    uri = %loggable(request.uri()),
                    version = ?request.version(),
                )
            }),
        )
        .with_state(state)
}

/// A request's URI as logs may show it: the token in an invitation link
/// is a secret, so `/invite/…` paths are cut short.
fn loggable(uri: &Uri) -> Cow<'_, str> {
    match uri.path().strip_prefix("/invite/") {
        Some(_) => Cow::Borrowed("/invite/(token)"),
        None => Cow::Owned(uri.to_string()),
    }
}

/// A query string parsed into `T`; a malformed one is a `400` in the
/// API's error format.
pub(crate) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {}", e.body_text())))
    }
}

/// Parses a JSON request body, naming the problem when it is malformed.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}

/// Refuses a body that is not declared `application/json` (`415`).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    require_media(headers, "application/json")
}

/// Refuses a body that is not declared as of the media type `wanted` (`415`).
pub(crate) fn require_media(headers: &HeaderMap, wanted: &str) -> Result<(), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some(m) if m == wanted => Ok(()),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "{other}; send {wanted}"
        ))),
        None => Err(ApiError::UnsupportedMediaType(format!(
            "no Content-Type; send {wanted}"
        ))),
    }
}

/// The two encodings a feed is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Atom,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Atom => "application/atom+xml; charset=utf-8",
        }
    }

    /// The format the `Accept` header prefers, or `fallback` when it names
    /// neither.
    pub(crate) fn accepted(headers: &HeaderMap, fallback: Format) -> Format {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return fallback;
        };
        let mut best: Option<(f32, Format)> = None;
        for part in accept.split(',') {
            let mut fields = part.split(';');
            let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = fields
                .filter_map(|f| f.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = match media.as_str() {
                "application/atom+xml" | "application/xml" | "text/xml" => Format::Atom,
                "application/json" => Format::Json,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, format));
            }
        }
        best.map_or(fallback, |(_, f)| f)
    }

    /// The format of a request body, from its `Content-Type` (or, without
    /// one, from its first character).
    pub(crate) fn of_body(headers: &HeaderMap, body: &[u8]) -> Result<Format, ApiError> {
        match headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            Some(ct) => {
                let media = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                match media.as_str() {
                    "application/atom+xml" | "application/xml" | "text/xml" => Ok(Format::Atom),
                    "application/json" => Ok(Format::Json),
                    other => Err(ApiError::UnsupportedMediaType(format!(
                        "{other}; send application/atom+xml or application/json"
                    ))),
                }
            }
            None => match body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'<') => Ok(Format::Atom),
                _ => Ok(Format::Json),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn invitation_tokens_never_reach_the_log() {
        let uri: Uri = "/invite/invite_0123abcd".parse().unwrap();
        assert_eq!(loggable(&uri), "/invite/(token)");
        let uri: Uri = "/v1/objects?kind=folder".parse().unwrap();
        assert_eq!(loggable(&uri), "/v1/objects?kind=folder");
    }

    #[test]
    fn accept_picks_the_preferred_format() {
        assert_eq!(
            Format::accepted(&HeaderMap::new(), Format::Json),
            Format::Json
        );
        assert_eq!(
            Format::accepted(&accept("application/atom+xml"), Format::Json),
            Format::Atom
        );
        assert_eq!(
            Format::accepted(
                &accept("application/json;q=0.5, application/atom+xml"),
                Format::Json
            ),
            Format::Atom
        );
        assert_eq!(
            Format::accepted(
                &accept("application/atom+xml;q=0.1, application/json"),
                Format::Atom
            ),
            Format::Json
        );
        assert_eq!(Format::accepted(&accept("*/*"), Format::Atom), Format::Atom);
        assert_eq!(
            Format::accepted(&accept("application/atom+xml;q=0"), Format::Json),
            Format::Json
        );
    }
}
