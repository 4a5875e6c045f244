//! The rules of membership. Roles are fixed: an `owner` may do everything
//! (including managing members and invitations, and deleting the object),
//! an `editor` reads and writes entries and content, a `reader` only reads.
//! Only owners manage members, and grant at most their own role; the last
//! owner can neither leave, be removed nor be demoted. An invitation is
//! single use, expires, and binds to the invited address. It grants its
//! role only while its sender may grant it: acceptance checks the sender's
//! role as it is then (by the same rule as inviting), and a member who
//! leaves or is removed takes their pending invitations with them
//! (revoked).
//!
//! Each operation runs inside one write transaction, checks its rules
//! there, and records its audit entry and change events with the change:
//! `MembersChanged` to the object's members (after the change, so a new
//! member gets it too), `ObjectChanged` to a member who is removed (so
//! their devices drop the object), `InvitationChanged` to an invitee
//! who has an account, and the object's news of members joining and
//! leaving. An app is invited like a person, the invitation addressed to
//! its owner, whose acceptance grants the app the role (see `crate::apps`).

use mesh_protocol::api::{
    Change, Invitation, InvitationId, InvitationState, Member, MeshObject, ObjectId, Role, UserId,
};
use mesh_protocol::live::NewsBody;
use rusqlite::{Connection, Transaction};

use crate::auth::{AppCaller, Principal, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::store::accounts::{self, User};
use crate::store::audit::{self, Action};
use crate::store::changes::{self, Audience};
use crate::store::invitations::{self, Invitee, NewInvitation};
use crate::store::members;
use crate::store::news::{self, Actor, Stream};
use crate::store::objects::{self, Visible};

/// The account of a signed-in user.
pub fn account(conn: &Connection, user: UserId) -> ApiResult<User> {
    accounts::user_by_id(conn, user)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a signed-in user without an account")))
}

/// Refuses the call unless the caller's role on `object` reaches `needed`.
pub fn require(object: &MeshObject, needed: Role, action: &str) -> ApiResult<()> {
    if object.role >= needed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "your role on this object is {}; {action} needs {}",
            object.role.as_str(),
            needed.as_str()
        )))
    }
}

/// The object as `actor` sees it, if they may manage its members and
/// grant `role`: a non-member gets 404, a member who is not an owner 403.
pub(crate) fn managed(
    conn: &Connection,
    actor: UserId,
    object: ObjectId,
    role: Role,
) -> ApiResult<Visible> {
    let visible = objects::visible(conn, actor, object)?.ok_or(ApiError::NotFound)?;
    require(&visible.object, Role::Owner, "managing members")?;
    if role > visible.object.role {
        return Err(ApiError::Forbidden(format!(
            "you can grant at most your own role ({})",
            visible.object.role.as_str()
        )));
    }
    Ok(visible)
}

/// Records a membership change: the audit entry and `MembersChanged` for
/// the object's members as they are now.
pub(crate) fn record(
    tx: &Transaction<'_>,
    object: ObjectId,
    actor: UserId,
    action: Action,
    subject: &str,
    role: Option<Role>,
) -> ApiResult<()> {
    audit::record(tx, object, actor, action, subject, role)?;
    changes::record(
        tx,
        Audience::Object(object),
        &Change::MembersChanged { object },
    )?;
    Ok(())
}

/// Tells the invitee, if they have an account, that their invitation changed.
fn tell_invitee(tx: &Transaction<'_>, invitation: &Invitation) -> ApiResult<()> {
    if let Some(invitee) = accounts::user_by_email(tx, &invitation.email)? {
        changes::record(
            tx,
            Audience::User(invitee.id),
            &Change::InvitationChanged {
                invitation: invitation.id,
            },
        )?;
    }
    Ok(())
}

/// Refuses an invitation that can no longer be answered: expired (410),
/// or already accepted, declined or revoked (409).
pub fn check_pending(invitation: &Invitation) -> ApiResult<()> {
    match invitation.state {
        InvitationState::Pending => Ok(()),
        InvitationState::Expired => Err(ApiError::Gone(format!(
            "the invitation expired at {}",
            invitation.expires.format("%Y-%m-%d %H:%M UTC")
        ))),
        state => Err(ApiError::Conflict(format!(
            "the invitation was {} already",
            state.as_str()
        ))),
    }
}

/// What sharing an object with an address will do.
pub enum SharePlan {
    /// The address is a member: give them the role.
    ChangeRole(UserId),
    /// Send an invitation, from `inviter`, to an object called `object_name`.
    Invite {
        inviter: String,
        object_name: String,
    },
}

/// Checks that `actor` may share `object` with `email` as `role`, and
/// says how. Nothing changes yet: an invitation is stored (by [`invite`])
/// only once its e-mail is on its way.
pub fn plan_share(
    conn: &Connection,
    actor: UserId,
    object: ObjectId,
    email: &str,
    role: Role,
) -> ApiResult<SharePlan> {
    let visible = managed(conn, actor, object, role)?;
    if let Some(member) = members::by_email(conn, object, email)? {
        return Ok(SharePlan::ChangeRole(member.user));
    }
    Ok(SharePlan::Invite {
        inviter: account(conn, actor)?.email,
        object_name: visible.object.name,
    })
}

/// Stores a pending invitation, revoking the address's (the app's) earlier
/// pending one to the same object.
pub fn invite(tx: &Transaction<'_>, new: &NewInvitation<'_>) -> ApiResult<Invitation> {
    let (actor, object) = (new.invited_by, new.object);
    managed(tx, actor, object, new.role)?;
    let invitee = match new.app {
        Some(app) => Invitee::App(app),
        None => Invitee::Person(new.email),
    };
    if let Some(earlier) = invitations::pending_for(tx, object, invitee)? {
        revoke_pending(tx, actor, &earlier)?;
    }
    invitations::create(tx, new)?;
    let invitation = invitations::get(tx, new.id)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a stored invitation is missing")))?;
    record(
        tx,
        object,
        actor,
        Action::Invited,
        new.email,
        Some(new.role),
    )?;
    tell_invitee(tx, &invitation)?;
    Ok(invitation)
}

/// Gives a member another role.
pub fn change_role(
    tx: &Transaction<'_>,
    actor: UserId,
    object: ObjectId,
    subject: UserId,
    role: Role,
) -> ApiResult<Member> {
    managed(tx, actor, object, role)?;
    let member = members::get(tx, object, subject)?.ok_or(ApiError::NotFound)?;
    if member.role == role {
        return Ok(member);
    }
    if member.role == Role::Owner && members::owners(tx, object)? == 1 {
        return Err(ApiError::Conflict(
            "the last owner cannot be given another role; make someone else an owner first".into(),
        ));
    }
    members::put(tx, object, subject, role)?;
    record(
        tx,
        object,
        actor,
        Action::RoleChanged,
        &member.email,
        Some(role),
    )?;
    Ok(Member { role, ..member })
}

/// Removes a member: an owner removes anyone, any member removes
/// themselves (leaves).
pub fn remove(tx: &Transaction<'_>, by: Actor, object: ObjectId, subject: UserId) -> ApiResult<()> {
    let actor = by.user;
    let visible = objects::visible(tx, actor, object)?.ok_or(ApiError::NotFound)?;
    let action = if actor == subject {
        Action::Left
    } else {
        require(&visible.object, Role::Owner, "removing members")?;
        Action::Removed
    };
    let member = members::get(tx, object, subject)?.ok_or(ApiError::NotFound)?;
    if member.role == Role::Owner && members::owners(tx, object)? == 1 {
        return Err(ApiError::Conflict(
            "the last owner cannot leave or be removed; make someone else an owner first".into(),
        ));
    }
    members::remove(tx, object, subject)?;
    record(tx, object, actor, action, &member.email, None)?;
    for invitation in invitations::pending_by(tx, object, subject)? {
        revoke_pending(tx, actor, &invitation)?;
    }
    news::record(
        tx,
        Stream::Object(object),
        by,
        &NewsBody::MemberLeft {
            member: member.email,
        },
    )?;
    changes::record(
        tx,
        Audience::User(subject),
        &Change::ObjectChanged { object },
    )?;
    Ok(())
}

/// Revokes a pending invitation. Only an owner of its object may; to
/// anyone else it does not exist.
pub fn revoke(tx: &Transaction<'_>, actor: UserId, id: InvitationId) -> ApiResult<()> {
    let invitation = invitations::get(tx, id)?.ok_or(ApiError::NotFound)?;
    match objects::visible(tx, actor, invitation.object)? {
        Some(v) if v.object.role == Role::Owner => {}
        _ => return Err(ApiError::NotFound),
    }
    check_pending(&invitation)?;
    revoke_pending(tx, actor, &invitation)
}

/// Revokes a pending invitation as `actor`: settled, audited, and the
/// invitee told.
fn revoke_pending(tx: &Transaction<'_>, actor: UserId, invitation: &Invitation) -> ApiResult<()> {
    invitations::settle(tx, invitation.id, InvitationState::Revoked)?;
    record(
        tx,
        invitation.object,
        actor,
        Action::Revoked,
        &invitation.email,
        Some(invitation.role),
    )?;
    tell_invitee(tx, invitation)
}

/// Refuses to accept an invitation whose sender may no longer grant what
/// it offers — no longer a member, no longer an owner — by the rule that
/// let them invite ([`managed`]), applied as things stand now. The
/// invitation stays as it is: should its sender be made an owner again,
/// it can be accepted.
fn check_inviter(tx: &Transaction<'_>, invitation: &Invitation) -> ApiResult<UserId> {
    let refused = |why: String| {
        ApiError::Conflict(format!(
            "this invitation can no longer be accepted: {} {why}; ask an owner of {:?} to invite you again",
            invitation.invited_by, invitation.object_name
        ))
    };
    let Some(inviter) = accounts::user_by_email(tx, &invitation.invited_by)? else {
        return Err(refused("has no account any more".into()));
    };
    match managed(tx, inviter.id, invitation.object, invitation.role) {
        Ok(_) => Ok(inviter.id),
        Err(ApiError::NotFound) => Err(refused("who sent it is no longer a member".into())),
        Err(ApiError::Forbidden(_)) => Err(refused(format!(
            "who sent it may no longer grant the role {}",
            invitation.role.as_str()
        ))),
        Err(e) => Err(e),
    }
}

/// How an invitee names the invitation they answer.
pub enum Answering {
    /// By id, signed in: an invitation to another address does not exist
    /// for them (404).
    Id(InvitationId),
    /// By the secret token of the e-mailed link: it proves the link, so an
    /// invitation to another address is refused as such (403).
    Token(TokenHash),
}

/// Accepts or declines an invitation as `by`, whose account must have
/// the invited address. Accepting makes them a member with the invited
/// role (a member already keeps their role), or, for an app's invitation,
/// grants their app the role. Returns the invitation as it
/// is now and, once accepted, the object as they see it.
pub fn answer(
    tx: &Transaction<'_>,
    by: Actor,
    which: &Answering,
    accept: bool,
) -> ApiResult<(Invitation, Option<MeshObject>)> {
    let user = account(tx, by.user)?;
    let found = match which {
        Answering::Id(id) => invitations::get(tx, *id)?,
        Answering::Token(hash) => invitations::by_token(tx, hash)?,
    };
    let invitation = found.ok_or(ApiError::NotFound)?;
    if !invitation.email.eq_ignore_ascii_case(&user.email) {
        return Err(match which {
            Answering::Id(_) => ApiError::NotFound,
            Answering::Token(_) => ApiError::Forbidden(
                "this invitation was sent to another e-mail address; sign in with that one".into(),
            ),
        });
    }
    check_pending(&invitation)?;
    let inviter = if accept {
        Some(check_inviter(tx, &invitation)?)
    } else {
        None
    };
    let (state, action) = if accept {
        (InvitationState::Accepted, Action::Accepted)
    } else {
        (InvitationState::Declined, Action::Declined)
    };
    invitations::settle(tx, invitation.id, state)?;
    let object = invitation.object;
    match (inviter, invitation.app) {
        (Some(inviter), Some(app)) => {
            crate::apps::accept(tx, user.id, app, object, invitation.role, inviter)?;
        }
        (Some(_), None) if members::get(tx, object, user.id)?.is_none() => {
            members::put(tx, object, user.id, invitation.role)?;
            news::record(
                tx,
                Stream::Object(object),
                by,
                &NewsBody::MemberJoined {
                    member: user.email.clone(),
                    role: invitation.role,
                },
            )?;
        }
        _ => {}
    }
    record(
        tx,
        object,
        user.id,
        action,
        &invitation.email,
        Some(invitation.role),
    )?;
    tell_invitee(tx, &invitation)?;
    let visible = if accept {
        // An app's invitation: the object as the app sees it now.
        let found = match invitation.app {
            Some(app) => {
                let app = Principal::App(AppCaller {
                    app,
                    owner: user.id,
                });
                objects::visible_to(tx, app, object)?
            }
            None => objects::visible(tx, user.id, object)?,
        };
        let v = found
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an accepted object is missing")))?;
        Some(v.object)
    } else {
        None
    };
    Ok((
        Invitation {
            state,
            ..invitation
        },
        visible,
    ))
}
