//! `GET/PUT/DELETE /v1/objects/{id}/awareness`: an object's awareness
//! document, and the calling device's own entry in it. Any member may
//! publish (a reader has files open too); the entry lasts while the
//! device's presence lease does, and publishing renews that lease.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mesh_protocol::live::{Awareness, MAX_AWARENESS_STATE, PublishAwareness};

use super::objects::visible;
use super::parse_json;
use crate::auth::Caller;
use crate::awareness;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::accounts;

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Awareness>> {
    let object = visible(&state, caller, &id).await?.object.id;
    Ok(Json(state.awareness.document(object)))
}

pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let object = visible(&state, caller, &id).await?.object.id;
    let req: PublishAwareness = parse_json(&body)?;
    let size = serde_json::to_vec(&req.state).map_or(usize::MAX, |v| v.len());
    if size > MAX_AWARENESS_STATE {
        return Err(ApiError::BadRequest(format!(
            "an awareness state is at most {MAX_AWARENESS_STATE} bytes of JSON, not {size}"
        )));
    }
    let (email, device_name) = state
        .db
        .read(move |conn| Ok::<_, ApiError>(accounts::identity(conn, caller)?))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    // Publishing means the device is there: it holds a lease from now on.
    state.presence.renew(caller);
    state.awareness.publish(
        object,
        awareness::entry(caller.user, email, caller.device, device_name, req.state),
    );
    Ok(StatusCode::NO_CONTENT)
}

pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let object = visible(&state, caller, &id).await?.object.id;
    state.awareness.withdraw(object, caller.device);
    Ok(StatusCode::NO_CONTENT)
}
