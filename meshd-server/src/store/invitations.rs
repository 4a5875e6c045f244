//! Invitations to become a member of an object, or of an app to use one
//! (addressed to the app's owner). The token of an
//! invitation is stored only as its hash. An invitation past its expiry
//! while still pending reads as `expired`; one to a deleted object does not
//! exist. The rules of who may invite, accept or revoke are in
//! `crate::sharing`.

use chrono::{DateTime, Utc};
use mesh_protocol::api::{
    AppId, Invitation, InvitationId, InvitationState, ObjectId, Role, UserId,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::id_column;
use crate::auth::TokenHash;
use crate::db::{from_ms, now_ms};

const SELECT: &str = "SELECT i.id, i.object_id, o.name, o.kind, i.email, i.role, u.email,
            i.state, i.created, i.expires, i.app_id
     FROM invitations i
     JOIN objects o ON o.id = i.object_id AND o.deleted IS NULL
     JOIN users u ON u.id = i.invited_by";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Invitation> {
    let bad = |idx: usize, text: &str| {
        rusqlite::Error::InvalidColumnType(idx, text.to_owned(), rusqlite::types::Type::Text)
    };
    let role: String = r.get(5)?;
    let state: String = r.get(7)?;
    let expires = from_ms(r.get(9)?);
    let state = match InvitationState::parse(&state).ok_or_else(|| bad(7, &state))? {
        InvitationState::Pending if expires <= Utc::now() => InvitationState::Expired,
        state => state,
    };
    Ok(Invitation {
        id: id_column(r, 0)?,
        object: id_column(r, 1)?,
        object_name: r.get(2)?,
        object_kind: r.get(3)?,
        email: r.get(4)?,
        role: Role::parse(&role).ok_or_else(|| bad(5, &role))?,
        invited_by: r.get(6)?,
        state,
        created: from_ms(r.get(8)?),
        expires,
        app: match r.get_ref(10)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(id_column(r, 10)?),
        },
    })
}

/// A new invitation, as [`create`] stores it.
pub struct NewInvitation<'a> {
    pub id: InvitationId,
    pub object: ObjectId,
    pub email: &'a str,
    pub role: Role,
    pub invited_by: UserId,
    pub token: &'a TokenHash,
    pub expires: DateTime<Utc>,
    /// The app invited, if it is an app's invitation.
    pub app: Option<AppId>,
}

/// Stores a pending invitation.
pub fn create(tx: &Transaction<'_>, new: &NewInvitation<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO invitations
             (id, object_id, email, role, invited_by, token_hash, state, created, expires, app_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)",
        params![
            new.id.to_string(),
            new.object.to_string(),
            new.email,
            new.role.as_str(),
            new.invited_by.to_string(),
            new.token.as_bytes(),
            now_ms(),
            new.expires.timestamp_millis(),
            new.app.map(|a| a.to_string())
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: InvitationId) -> rusqlite::Result<Option<Invitation>> {
    conn.prepare_cached(&format!("{SELECT} WHERE i.id = ?1"))?
        .query_row([id.to_string()], row)
        .optional()
}

/// The invitation whose token hashes to `token`.
pub fn by_token(conn: &Connection, token: &TokenHash) -> rusqlite::Result<Option<Invitation>> {
    conn.prepare_cached(&format!("{SELECT} WHERE i.token_hash = ?1"))?
        .query_row([token.as_bytes()], row)
        .optional()
}

/// Every invitation to an object, in every state, newest first.
pub fn of_object(conn: &Connection, object: ObjectId) -> rusqlite::Result<Vec<Invitation>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE i.object_id = ?1 ORDER BY i.created DESC, i.id"
    ))?;
    stmt.query_map([object.to_string()], row)?.collect()
}

/// The pending (not expired) invitations sent to an address, newest first.
pub fn pending_to(conn: &Connection, email: &str) -> rusqlite::Result<Vec<Invitation>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE i.email = ?1 AND i.state = 'pending' AND i.expires > ?2
         ORDER BY i.created DESC, i.id"
    ))?;
    stmt.query_map(params![email, now_ms()], row)?.collect()
}

/// The pending (not expired) invitation to an object of an address, or of
/// an app, if any.
pub fn pending_for(
    conn: &Connection,
    object: ObjectId,
    invitee: Invitee<'_>,
) -> rusqlite::Result<Option<Invitation>> {
    let (filter, key) = match invitee {
        Invitee::Person(email) => ("i.email = ?2 AND i.app_id IS NULL", email.to_owned()),
        Invitee::App(app) => ("i.app_id = ?2", app.to_string()),
    };
    conn.prepare_cached(&format!(
        "{SELECT} WHERE i.object_id = ?1 AND {filter} AND i.state = 'pending'
           AND i.expires > ?3"
    ))?
    .query_row(params![object.to_string(), key, now_ms()], row)
    .optional()
}

/// Who an invitation is for: a person's address, or an app.
#[derive(Debug, Clone, Copy)]
pub enum Invitee<'a> {
    Person(&'a str),
    App(AppId),
}

/// The pending (not expired) invitations `inviter` sent to an object.
pub fn pending_by(
    conn: &Connection,
    object: ObjectId,
    inviter: UserId,
) -> rusqlite::Result<Vec<Invitation>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE i.object_id = ?1 AND i.invited_by = ?2 AND i.state = 'pending'
           AND i.expires > ?3 ORDER BY i.created, i.id"
    ))?;
    stmt.query_map(
        params![object.to_string(), inviter.to_string(), now_ms()],
        row,
    )?
    .collect()
}

/// Settles a pending invitation as accepted, declined or revoked.
pub fn settle(
    tx: &Transaction<'_>,
    id: InvitationId,
    state: InvitationState,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE invitations SET state = ?1, settled = ?2 WHERE id = ?3 AND state = 'pending'",
        params![state.as_str(), now_ms(), id.to_string()],
    )?;
    Ok(())
}
