//! `POST /v1/apps` (a new app of the caller's, scoped to named objects; its
//! token is shown once), `GET /v1/apps` (the caller's live apps) and
//! `DELETE /v1/apps/{id}` (revoked at once, its open streams closed). Only
//! a user's device may manage apps; the rules are in `crate::apps`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use mesh_protocol::api::{App, AppCreated, AppId, CreateApp};

use super::{parse_json, require_json};
use crate::apps;
use crate::auth::{self, Caller, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::apps as stored;

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AppCreated>)> {
    require_json(&headers)?;
    let req: CreateApp = parse_json(&body)?;
    let token = auth::new_app_token();
    let hash = TokenHash::of(&token);
    let app = state
        .write(move |tx| apps::create(tx, caller.user, Some(caller.user), &req, &hash))
        .await?;
    tracing::info!(app = %app.id, objects = app.objects.len(), "app added");
    Ok((StatusCode::CREATED, Json(AppCreated { app, token })))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<App>>> {
    let apps = state
        .db
        .read(move |conn| Ok::<_, ApiError>(stored::list(conn, Some(caller.user))?))
        .await?;
    Ok(Json(apps))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let app: AppId = id.parse().map_err(|_| ApiError::NotFound)?;
    let revoked = state
        .write(move |tx| {
            Ok(stored::revoke(
                tx,
                Some(caller.user),
                Some(caller.user),
                app,
            )?)
        })
        .await?;
    if !revoked {
        return Err(ApiError::NotFound);
    }
    tracing::info!(app = %app, "app revoked");
    Ok(StatusCode::NO_CONTENT)
}
