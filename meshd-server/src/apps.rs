//! The rules of apps. An app is a principal a user owns: a name, a token
//! and a grant on each of some named objects. Its owner grants at most the
//! role they hold on each object, and the grant stays bounded by it: what
//! the app may do is read anew at every use (`store::apps`), so an owner
//! demoted on an object, or removed from it, takes the app's access down
//! with them. Revocation takes effect at once, for every request and
//! stream of the app.

use mesh_protocol::api::{App, AppId, CreateApp, UserId};
use rusqlite::Transaction;
use std::collections::HashSet;

use crate::auth::TokenHash;
use crate::error::{ApiError, ApiResult};
use crate::sharing::require;
use crate::store::{apps, objects};

/// The most objects one app may be granted.
pub const MAX_GRANTS: usize = 100;

/// Checks an app's name: 1 to 100 bytes, no control characters.
fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "an app's name must be 1 to 100 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// Creates an app of `owner` as `actor` (the owner, or `None` for the
/// server's administrator) with the grants asked for, each checked against
/// the owner's role now: an object they are not a member of is refused
/// (`400`, the same whether or not it exists), a role above theirs as
/// forbidden (`403`).
/// Nothing is stored unless every grant passes.
pub fn create(
    tx: &Transaction<'_>,
    owner: UserId,
    actor: Option<UserId>,
    req: &CreateApp,
    token: &TokenHash,
) -> ApiResult<App> {
    let name = req.name.trim();
    check_name(name)?;
    if req.objects.is_empty() || req.objects.len() > MAX_GRANTS {
        return Err(ApiError::BadRequest(format!(
            "an app is given 1 to {MAX_GRANTS} objects, not {}",
            req.objects.len()
        )));
    }
    let mut seen = HashSet::new();
    for grant in &req.objects {
        if !seen.insert(grant.object) {
            return Err(ApiError::BadRequest(format!(
                "object {} is named twice",
                grant.object
            )));
        }
        let visible = objects::visible(tx, owner, grant.object)?.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "object {}: the owner is not a member of such an object",
                grant.object
            ))
        })?;
        require(
            &visible.object,
            grant.role,
            &format!(
                "giving an app the role {} on {:?}",
                grant.role.as_str(),
                visible.object.name
            ),
        )?;
    }
    let id = apps::create(tx, owner, actor, name, &req.objects, token)?;
    live(tx, owner, id)
}

/// `owner`'s live app `id`.
fn live(tx: &Transaction<'_>, owner: UserId, id: AppId) -> ApiResult<App> {
    apps::list(tx, Some(owner))?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a created app is missing")))
}
