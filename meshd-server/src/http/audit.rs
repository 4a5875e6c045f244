//! `GET /v1/audit?before=ID&limit=N`: the caller's account's audit log,
//! newest first (see `crate::store::audit` for what it holds). The next
//! page is `?before=` the last entry's id.

use axum::Json;
use axum::extract::State;
use mesh_protocol::api::AuditEntry;
use serde::Deserialize;

use super::Query;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit;

/// How many entries a page holds unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    before: Option<u64>,
    limit: Option<u32>,
}

pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=audit::MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {}",
            audit::MAX_PAGE
        )));
    }
    let entries = state
        .db
        .read(move |conn| Ok::<_, ApiError>(audit::of_user(conn, caller.user, page.before, limit)?))
        .await?;
    Ok(Json(entries))
}
