//! `GET /v1/news` (the caller's mesh) and `GET /v1/objects/{id}/news`,
//! newest first and paged by `before`; `POST /v1/news` and
//! `POST /v1/objects/{id}/news`, an application's own item. An app (see
//! `crate::apps`) reads and posts an object's news within its scope, not
//! its owner's mesh's. The server's own news is recorded where its changes
//! happen (see `store::news`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mesh_protocol::api::Role;
use mesh_protocol::live::{NewsBody, NewsItem, NewsPage, PostNews};
use serde::Deserialize;

use super::objects::visible;
use super::{Query, parse_json};
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sharing::require;
use crate::state::AppState;
use crate::store::apps;
use crate::store::news::{self, Stream};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn page(state: &AppState, stream: Stream, q: PageQuery) -> ApiResult<Json<NewsPage>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let page = state
        .db
        .read(move |conn| Ok::<_, ApiError>(news::page(conn, stream, q.before, limit)?))
        .await?;
    Ok(Json(page))
}

pub async fn mesh(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<NewsPage>> {
    page(&state, Stream::Mesh(caller.user), q).await
}

pub async fn object(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<NewsPage>> {
    let object = visible(&state, caller, &id).await?.object.id;
    page(&state, Stream::Object(object), q).await
}

/// Records a posted item in `stream`, once it has been checked. An app's
/// item carries the app's own name, whatever it says.
async fn post(
    state: &AppState,
    caller: Principal,
    stream: Stream,
    body: &Bytes,
) -> ApiResult<(StatusCode, Json<NewsItem>)> {
    let req: PostNews = parse_json(body)?;
    req.validate().map_err(ApiError::BadRequest)?;
    let item = state
        .write(move |tx| {
            let app = match caller {
                Principal::Device(_) => req.app,
                Principal::App(app) => Some(apps::name(tx, app.app)?),
            };
            let body = NewsBody::Post {
                title: req.title,
                text: req.text,
                app,
            };
            Ok(news::record(tx, stream, caller.into(), &body)?)
        })
        .await?;
    tracing::info!(news = item.id, object = ?item.object, "news posted");
    Ok((StatusCode::CREATED, Json(item)))
}

pub async fn post_mesh(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<NewsItem>)> {
    post(&state, caller.into(), Stream::Mesh(caller.user), &body).await
}

pub async fn post_object(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<NewsItem>)> {
    let object = visible(&state, caller, &id).await?.object;
    require(&object, Role::Editor, "posting news")?;
    post(&state, caller, Stream::Object(object.id), &body).await
}
