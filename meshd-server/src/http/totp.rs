//! `POST /v1/account/totp`, `POST /v1/account/totp/confirm`,
//! `DELETE /v1/account/totp`: the account's owner turns its second factor
//! on and off from a signed-in device. Turning it on takes the password
//! and then a first code of the new key (so that nobody is locked out by
//! a key their app never got); turning it off takes the password and a
//! current code, checked and throttled exactly as a sign-in
//! (`auth::sign_in`), so that a stolen device token alone can do neither.

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mesh_protocol::api::{TotpBegin, TotpConfirm, TotpDisable, TotpKey};
use std::net::SocketAddr;

use super::parse_json;
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::accounts::{self, User};
use crate::store::totp::{self, Confirmed};
use crate::totp::NewKey;

/// The caller's account.
async fn account(state: &AppState, caller: Caller) -> ApiResult<User> {
    state
        .db
        .read(move |conn| Ok::<_, ApiError>(accounts::user_by_id(conn, caller.user)?))
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// Signs in again as the caller's account with `password` (and `code`):
/// what turning the second factor on or off needs.
async fn reauthenticate(
    state: &AppState,
    client: SocketAddr,
    caller: Caller,
    password: String,
    code: Option<String>,
) -> ApiResult<auth::SignedIn> {
    let user = account(state, caller).await?;
    let signed_in = auth::sign_in(state, client.ip(), &user.email, password, code).await?;
    // An e-mail address names one account; this is a check, not a branch.
    if signed_in.user.id != caller.user {
        return Err(ApiError::BadCredentials);
    }
    Ok(signed_in)
}

pub async fn begin(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TotpKey>)> {
    let req: TotpBegin = parse_json(&body)?;
    let enabled = state
        .db
        .read(move |conn| Ok::<_, ApiError>(totp::state(conn, caller.user)?))
        .await?;
    if enabled.is_some() {
        return Err(ApiError::Conflict(
            "this account has an authentication code already; turn it off first \
             (DELETE /v1/account/totp)"
                .into(),
        ));
    }
    let user = reauthenticate(&state, client, caller, req.password, None)
        .await?
        .user;
    let key = NewKey::generate(&user.email)?;
    let (secret, hashes) = (key.secret.clone(), key.recovery_hashes.clone());
    state
        .write(move |tx| Ok(totp::begin(tx, user.id, &secret, &hashes)?))
        .await?;
    tracing::info!(user = %caller.user, "a new authenticator key waits for its first code");
    Ok((
        StatusCode::CREATED,
        Json(TotpKey {
            secret: crate::totp::base32(&key.secret),
            uri: key.uri,
            recovery_codes: key.recovery_codes,
        }),
    ))
}

pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: TotpConfirm = parse_json(&body)?;
    let user = account(&state, caller).await?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let outcome = state
        .write(move |tx| Ok(totp::confirm(tx, &user, &req.totp, now)?))
        .await?;
    match outcome {
        Confirmed::Enabled => {
            tracing::info!(user = %caller.user, "second factor enabled by the account's owner");
            Ok(StatusCode::NO_CONTENT)
        }
        Confirmed::WrongCode => Err(ApiError::BadRequest(
            "that is not a current code of the new key; check that the app shows Mesh and \
             that this device's clock is right, and send the code it shows now"
                .into(),
        )),
        Confirmed::NothingWaits => Err(ApiError::Conflict(
            "no new authenticator key waits for a code; ask for one with POST /v1/account/totp"
                .into(),
        )),
    }
}

pub async fn disable(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: TotpDisable = parse_json(&body)?;
    let signed_in = reauthenticate(&state, client, caller, req.password, Some(req.totp)).await?;
    if signed_in.second_factor.is_none() {
        return Err(ApiError::Conflict(
            "this account has no authentication code to turn off".into(),
        ));
    }
    let user = signed_in.user;
    state
        .write(move |tx| Ok(totp::disable(tx, &user, Some(user.id))?))
        .await?;
    tracing::info!(user = %caller.user, "second factor disabled by the account's owner");
    Ok(StatusCode::NO_CONTENT)
}
