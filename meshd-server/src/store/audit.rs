//! The audit log of membership changes: who did what to whose membership
//! of which object, and when. Written in the transaction that makes the
//! change; kept for good.

use mesh_protocol::api::{ObjectId, Role, UserId};
use rusqlite::{Transaction, params};

use crate::db::now_ms;

/// What happened to a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Invited,
    Accepted,
    Declined,
    Revoked,
    RoleChanged,
    Removed,
    Left,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Invited => "invited",
            Action::Accepted => "accepted",
            Action::Declined => "declined",
            Action::Revoked => "revoked",
            Action::RoleChanged => "role_changed",
            Action::Removed => "removed",
            Action::Left => "left",
        }
    }
}

/// Records that `actor` did `action` to `subject` (the e-mail address whose
/// membership or invitation it is) on `object`, with the role it grants,
/// if any.
pub fn record(
    tx: &Transaction<'_>,
    object: ObjectId,
    actor: UserId,
    action: Action,
    subject: &str,
    role: Option<Role>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at, object_id, actor, action, subject, role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            now_ms(),
            object.to_string(),
            actor.to_string(),
            action.as_str(),
            subject,
            role.map(Role::as_str)
        ],
    )?;
    Ok(())
}
