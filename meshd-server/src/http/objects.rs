//! `GET/POST /v1/objects`, `GET/PATCH/DELETE /v1/objects/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mesh_protocol::api::{self, CreateObject, MeshObject, ObjectId, PatchObject, Role};
use mesh_protocol::folder::validate_object_name;
use serde::Deserialize;

use super::{Query, parse_json};
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sharing::require;
use crate::state::AppState;
use crate::store::objects::{self, Visible};

/// The object `id` as `who` sees it. Unknown ids, deleted objects and
/// objects of others (outside an app's scope) are all the same 404.
pub(crate) async fn visible(
    state: &AppState,
    who: impl Into<Principal>,
    id: &str,
) -> ApiResult<Visible> {
    let id: ObjectId = id.parse().map_err(|_| ApiError::NotFound)?;
    let who = who.into();
    state
        .db
        .read(move |conn| Ok::<_, ApiError>(objects::visible_to(conn, who, id)?))
        .await?
        .ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
pub struct ListQuery {
    kind: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<MeshObject>>> {
    let list = state
        .db
        .read(move |conn| Ok::<_, ApiError>(objects::list(conn, caller.user, q.kind.as_deref())?))
        .await?;
    Ok(Json(list))
}

/// Refuses a name no mesh object may have (the entry rules and more, see
/// [`validate_object_name`]), naming it and why.
fn check_name(name: &str) -> ApiResult<()> {
    validate_object_name(name).map_err(|why| {
        let shown: String = name.chars().take(80).collect();
        ApiError::BadRequest(format!("name {shown:?}: {why}"))
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MeshObject>)> {
    let req: CreateObject = parse_json(&body)?;
    check_name(&req.name)?;
    api::validate_kind(&req.kind).map_err(ApiError::BadRequest)?;
    let created = state
        .write(move |tx| {
            let id = objects::create(tx, caller.user, &req.name, &req.kind)?;
            objects::visible(tx, caller.user, id)?.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("a created object is not visible"))
            })
        })
        .await?;
    tracing::info!(object = %created.object.id, kind = %created.object.kind, "object created");
    Ok((StatusCode::CREATED, Json(created.object)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MeshObject>> {
    Ok(Json(visible(&state, caller, &id).await?.object))
}

pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<MeshObject>> {
    let object = visible(&state, caller, &id).await?.object;
    let req: PatchObject = parse_json(&body)?;
    require(&object, Role::Owner, "changing the object")?;
    let Some(name) = req.name else {
        return Ok(Json(object));
    };
    check_name(&name)?;
    let id = object.id;
    let updated = state
        .write(move |tx| {
            objects::rename(tx, id, &name)?;
            objects::visible(tx, caller.user, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(Json(updated.object))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let object = visible(&state, caller, &id).await?.object;
    require(&object, Role::Owner, "deleting the object")?;
    let id = object.id;
    state.write(move |tx| Ok(objects::delete(tx, id)?)).await?;
    state.awareness.forget_object(id);
    tracing::info!(object = %id, "object deleted");
    Ok(StatusCode::NO_CONTENT)
}
