//! `POST /v1/tokens` (sign in, with the account's second factor if it has
//! one, and enroll a device, which is news of the user's mesh),
//! `GET /v1/devices`, `DELETE /v1/devices/{id}`,
//! `GET /v1/account/usage`.

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use mesh_protocol::api::{Device, DeviceId, TokenRequest, TokenResponse};
use mesh_protocol::live::NewsBody;
use std::net::SocketAddr;

use super::{parse_json, require_json};
use crate::auth::{self, Caller, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::news::{self, Actor, Stream};
use crate::store::{accounts, usage};

/// Signs in and enrolls a device. Only JSON is taken: a form or
/// `text/plain` is what a page on another site can post without asking,
/// and it gets `415` before anything else is done.
pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    require_json(&headers)?;
    state.public_rate.check(client.ip())?;
    let req: TokenRequest = parse_json(&body)?;
    let device_name = req.device_name.trim().to_owned();
    if device_name.is_empty()
        || device_name.len() > 255
        || device_name.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(
            "device_name must be 1 to 255 bytes without control characters".into(),
        ));
    }
    let signed_in = auth::sign_in(&state, client.ip(), &req.email, req.password, req.totp).await?;
    let second_factor = signed_in.second_factor;
    let user = signed_in.user;
    let token = auth::new_token();
    let hash = TokenHash::of(&token);
    let public_key = req.public_key;
    let user_id = user.id;
    let device_id = state
        .write(move |tx| {
            let device = accounts::enroll_device(
                tx,
                user_id,
                &device_name,
                public_key.as_deref(),
                &hash,
                second_factor,
            )?;
            news::record(
                tx,
                Stream::Mesh(user_id),
                Actor {
                    user: user_id,
                    device: Some(device),
                },
                &NewsBody::DeviceAdded {
                    device,
                    name: device_name,
                },
            )?;
            Ok(device)
        })
        .await?;
    tracing::info!(user = %user_id, device = %device_id, "device enrolled");
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            device_id,
            user_id,
            token,
        }),
    ))
}

/// `GET /v1/account/usage`: what the caller's objects store, and their
/// quota.
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<mesh_protocol::api::AccountUsage>> {
    let default = state.limits.default_quota;
    let usage = state
        .db
        .read(move |conn| Ok::<_, ApiError>(usage::of(conn, caller.user, default)?))
        .await?;
    Ok(Json(usage))
}

pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Device>>> {
    let rows = state
        .db
        .read(move |conn| Ok::<_, ApiError>(accounts::devices(conn, caller.user)?))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| Device {
                online: state.presence.is_online(d.id),
                current: d.id == caller.device,
                id: d.id,
                name: d.name,
                last_seen: d.last_seen,
                enrolled: d.enrolled,
                public_key: d.public_key,
            })
            .collect(),
    ))
}

pub async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let device: DeviceId = id.parse().map_err(|_| ApiError::NotFound)?;
    let revoked = state
        .write(move |tx| Ok(accounts::revoke_device(tx, caller.user, device)?))
        .await?;
    if revoked {
        tracing::info!(device = %device, "device revoked");
        // Offline now, and whatever it published is withdrawn.
        state.presence.end(Caller {
            user: caller.user,
            device,
        });
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
