//! The rules of apps. An app is a principal a user owns: a name, a token
//! and a grant on each of some named objects. Its owner grants at most the
//! role they hold on each object, and the grant stays bounded by it: what
//! the app may do is read anew at every use (`store::apps`), so an owner
//! demoted on an object, or removed from it, takes the app's access down
//! with them. Revocation takes effect at once, for every request and
//! stream of the app.
//!
//! An app is also invited to an object like a person (by an owner of the
//! object, granting at most their role): the invitation goes to the app's
//! owner, whose acceptance grants the app the role as granted by the
//! inviter — bounded by the inviter's role there now, as an owner's own
//! grant is by theirs. An owner of the object takes an app off it.

use mesh_protocol::api::{App, AppGrant, AppId, CreateApp, ObjectId, Role, UserId};
use rusqlite::{Connection, Transaction};
use std::collections::HashSet;

use crate::auth::TokenHash;
use crate::error::{ApiError, ApiResult};
use crate::sharing::{self, require};
use crate::store::audit::Action;
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

/// The address an invitation of `app` goes to: its owner's. An app that is
/// unknown or revoked is not found.
pub fn invitee(conn: &Connection, app: AppId) -> ApiResult<String> {
    let (owner, _) = apps::live(conn, app)?.ok_or(ApiError::NotFound)?;
    Ok(sharing::account(conn, owner)?.email)
}

/// Grants `app` the role an accepted invitation offers, as `inviter` (whose
/// right to grant it the caller checked). `owner` accepts it: the app must
/// still be theirs and live.
pub fn accept(
    tx: &Transaction<'_>,
    owner: UserId,
    app: AppId,
    object: ObjectId,
    role: Role,
    inviter: UserId,
) -> ApiResult<()> {
    match apps::live(tx, app)? {
        Some((o, _)) if o == owner => {}
        _ => {
            return Err(ApiError::Conflict(
                "this invitation can no longer be accepted: the app it invites was revoked".into(),
            ));
        }
    }
    apps::grant(tx, app, &AppGrant { object, role }, inviter)?;
    Ok(())
}

/// Takes `app` off `object`, as `actor`, an owner of the object; an app
/// without a grant there is not found.
pub fn remove(tx: &Transaction<'_>, actor: UserId, object: ObjectId, app: AppId) -> ApiResult<()> {
    let visible = objects::visible(tx, actor, object)?.ok_or(ApiError::NotFound)?;
    require(&visible.object, Role::Owner, "removing apps")?;
    if !apps::ungrant(tx, app, object)? {
        return Err(ApiError::NotFound);
    }
    let name = apps::name(tx, app)?;
    sharing::record(tx, object, actor, Action::Removed, &name, None)?;
    Ok(())
}
