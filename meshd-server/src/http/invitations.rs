//! `GET /v1/invitations` (mine, pending), `DELETE /v1/invitations/{id}`
//! (revoke), `POST /v1/invitations/{id}/accept|decline`, and
//! `POST /v1/invitations/accept` (by the token of an e-mailed link,
//! rate-limited per user). The rules are in `crate::sharing`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mesh_protocol::api::{AcceptToken, Invitation, InvitationId, MeshObject};

use super::parse_json;
use crate::auth::{Caller, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::sharing::{self, Answering};
use crate::state::AppState;
use crate::store::invitations;

/// The caller's pending invitations: those sent to their account's address.
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Invitation>>> {
    let list = state
        .db
        .read(move |conn| {
            let email = sharing::account(conn, caller.user)?.email;
            Ok::<_, ApiError>(invitations::pending_to(conn, &email)?)
        })
        .await?;
    Ok(Json(list))
}

fn invitation_id(text: &str) -> ApiResult<InvitationId> {
    text.parse().map_err(|_| ApiError::NotFound)
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = invitation_id(&id)?;
    state
        .write(move |tx| sharing::revoke(tx, caller.user, id))
        .await?;
    tracing::info!(invitation = %id, "invitation revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Answers an invitation as the caller.
async fn answer(
    state: &AppState,
    caller: Caller,
    which: Answering,
    accept: bool,
) -> ApiResult<Option<MeshObject>> {
    let (invitation, object) = state
        .write(move |tx| sharing::answer(tx, caller.into(), &which, accept))
        .await?;
    tracing::info!(invitation = %invitation.id, state = invitation.state.as_str(), "invitation answered");
    Ok(object)
}

fn accepted(object: Option<MeshObject>) -> ApiResult<Json<MeshObject>> {
    object.map(Json).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("an accepted invitation without its object"))
    })
}

pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MeshObject>> {
    let which = Answering::Id(invitation_id(&id)?);
    accepted(answer(&state, caller, which, true).await?)
}

pub async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let which = Answering::Id(invitation_id(&id)?);
    answer(&state, caller, which, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts by the token of an e-mailed link. Every refused attempt counts
/// against the caller; while they are throttled a refused token is
/// answered `429` (not telling an unknown token from another's), but a
/// token of their own invitation is still accepted: wrong links never
/// block the right one.
pub async fn accept_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<MeshObject>> {
    let key = caller.user.to_string();
    let throttled = state.invitation_throttle.check(&key);
    let result = async {
        let req: AcceptToken = parse_json(&body)?;
        let which = Answering::Token(TokenHash::of(req.token.trim()));
        accepted(answer(&state, caller, which, true).await?)
    }
    .await;
    match (&result, throttled) {
        (Ok(_), _) => state.invitation_throttle.succeeded(&key),
        (Err(_), throttled) => {
            state.invitation_throttle.failed(key);
            throttled.map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
        }
    }
    result
}
