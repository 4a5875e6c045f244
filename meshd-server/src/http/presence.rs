//! `POST /v1/presence` (a heartbeat: the device is online for another
//! lease) and `DELETE /v1/presence` (the device signs off: offline now,
//! and its awareness entries are withdrawn).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mesh_protocol::live::PresenceLease;

use crate::auth::Caller;
use crate::state::AppState;

pub async fn renew(State(state): State<AppState>, caller: Caller) -> Json<PresenceLease> {
    Json(state.presence.renew(caller))
}

pub async fn end(State(state): State<AppState>, caller: Caller) -> StatusCode {
    state.presence.end(caller);
    StatusCode::NO_CONTENT
}
