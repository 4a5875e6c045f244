//! `GET/POST /v1/objects/{id}/members`, `PATCH/DELETE
//! /v1/objects/{id}/members/{user}`, `POST /v1/objects/{id}/apps` and
//! `DELETE /v1/objects/{id}/apps/{app}` (an app invited, taken off), and
//! `GET /v1/objects/{id}/invitations`: an object's members and the
//! invitations to it. The rules are in `crate::sharing` and `crate::apps`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use chrono::Utc;
use mesh_protocol::api::{
    AppId, ChangeRole, Invitation, InvitationId, InviteApp, Member, Role, Share, ShareOutcome,
    UserId,
};

use super::objects::visible;
use super::parse_json;
use crate::auth::{self, Caller, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::mail::InvitationMail;
use crate::sharing::{self, SharePlan};
use crate::state::AppState;
use crate::store::invitations::{self, NewInvitation};
use crate::store::members;
use crate::store::{accounts, apps as app_store};

/// The object's members, then the apps that may use it now (`kind: "app"`).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Member>>> {
    let object = visible(&state, caller, &id).await?.object.id;
    let list = state
        .db
        .read(move |conn| {
            let mut list = members::list(conn, object)?;
            list.extend(app_store::members_of(conn, object)?);
            Ok::<_, ApiError>(list)
        })
        .await?;
    Ok(Json(list))
}

/// Shares the object with an address: a member gets the role (`200`),
/// anyone else an invitation by e-mail (`201`). The invitation is stored
/// only once its e-mail is on its way, so a mail failure changes nothing.
pub async fn share(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ShareOutcome>)> {
    let object = visible(&state, caller, &id).await?.object;
    sharing::require(&object, Role::Owner, "managing members")?;
    let req: Share = parse_json(&body)?;
    let email = req.email.trim().to_owned();
    accounts::validate_email(&email).map_err(ApiError::BadRequest)?;
    let (object, role) = (object.id, req.role);
    let plan = {
        let email = email.clone();
        state
            .db
            .read(move |conn| sharing::plan_share(conn, caller.user, object, &email, role))
            .await?
    };
    let (inviter, object_name) = match plan {
        SharePlan::ChangeRole(user) => {
            let member = state
                .write(move |tx| sharing::change_role(tx, caller.user, object, user, role))
                .await?;
            return Ok((StatusCode::OK, Json(ShareOutcome::RoleChanged { member })));
        }
        SharePlan::Invite {
            inviter,
            object_name,
        } => (inviter, object_name),
    };
    let token = auth::new_invitation_token();
    let id = InvitationId::generate();
    let expires = expiry(&state);
    let mail = InvitationMail {
        id,
        to: email.clone(),
        inviter,
        object_name,
        role,
        expires,
        link: format!("{}/invite/{token}", state.public_url),
    };
    state.mailer.send(&mail).await.map_err(|e| {
        tracing::warn!(invitation = %id, error = format!("{e:#}"), "sending an invitation failed");
        ApiError::MailFailed(format!("{e:#}"))
    })?;
    let hash = TokenHash::of(&token);
    let invitation = state
        .write(move |tx| {
            sharing::invite(
                tx,
                &NewInvitation {
                    id,
                    object,
                    email: &email,
                    role,
                    invited_by: caller.user,
                    token: &hash,
                    expires,
                    app: None,
                },
            )
        })
        .await?;
    tracing::info!(object = %object, invitation = %id, "invitation sent");
    Ok((
        StatusCode::CREATED,
        Json(ShareOutcome::Invited { invitation }),
    ))
}

/// When an invitation sent now expires.
fn expiry(state: &AppState) -> chrono::DateTime<Utc> {
    Utc::now()
        + chrono::Duration::from_std(state.limits.invitation_ttl).unwrap_or(chrono::Duration::MAX)
}

/// Invites an app to the object (owners only, granting at most their own
/// role): the invitation goes to the app's owner, who sees it among their
/// invitations; no e-mail is sent, so it has no link. `201` and the
/// invitation.
pub async fn invite_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let object = visible(&state, caller, &id).await?.object;
    sharing::require(&object, Role::Owner, "managing members")?;
    let req: InviteApp = parse_json(&body)?;
    let id = InvitationId::generate();
    let expires = expiry(&state);
    // A secret nobody is given: the app's owner accepts by id, signed in.
    let hash = TokenHash::of(&auth::new_invitation_token());
    let invitation = state
        .write(move |tx| {
            let email = crate::apps::invitee(tx, req.app)?;
            sharing::invite(
                tx,
                &NewInvitation {
                    id,
                    object: object.id,
                    email: &email,
                    role: req.role,
                    invited_by: caller.user,
                    token: &hash,
                    expires,
                    app: Some(req.app),
                },
            )
        })
        .await?;
    tracing::info!(object = %object.id, invitation = %id, app = %req.app, "app invited");
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Takes an app off the object (owners only).
pub async fn remove_app(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, app)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let object = visible(&state, caller, &id).await?.object.id;
    let app: AppId = app.parse().map_err(|_| ApiError::NotFound)?;
    state
        .write(move |tx| crate::apps::remove(tx, caller.user, object, app))
        .await?;
    tracing::info!(object = %object, app = %app, "app removed");
    Ok(StatusCode::NO_CONTENT)
}

fn user_id(text: &str) -> ApiResult<UserId> {
    text.parse().map_err(|_| ApiError::NotFound)
}

pub async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Member>> {
    let object = visible(&state, caller, &id).await?.object.id;
    let subject = user_id(&user)?;
    let req: ChangeRole = parse_json(&body)?;
    let member = state
        .write(move |tx| sharing::change_role(tx, caller.user, object, subject, req.role))
        .await?;
    Ok(Json(member))
}

/// Removes a member; a member may remove themselves (leave).
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let object = visible(&state, caller, &id).await?.object.id;
    let subject = user_id(&user)?;
    state
        .write(move |tx| sharing::remove(tx, caller.into(), object, subject))
        .await?;
    state.awareness.forget_user(object, subject);
    tracing::info!(object = %object, member = %subject, "member removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Every invitation to the object, in every state (owners only).
pub async fn invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Invitation>>> {
    let object = visible(&state, caller, &id).await?.object;
    sharing::require(&object, Role::Owner, "listing invitations")?;
    let list = state
        .db
        .read(move |conn| Ok::<_, ApiError>(invitations::of_object(conn, object.id)?))
        .await?;
    Ok(Json(list))
}
