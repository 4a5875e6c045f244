//! The audit log: membership changes (who did what to whose membership of
//! which object) and an account's own events (a device enrolled by
//! signing in, with the second factor it gave, a device revoked, the
//! password changed, the second factor turned on or off), each with when.
//! Written in the transaction that makes the change; kept for good. An
//! account reads its own log: its events, and the membership events it
//! did or that were about its address.

use mesh_protocol::api::{AuditAction, AuditEntry, DeviceId, ObjectId, Role, SecondFactor, UserId};
use rusqlite::{Connection, Transaction, params};

use super::id_column;
use crate::db::{from_ms, now_ms};

/// What happened (the wire's names, written once in mesh-protocol).
pub type Action = AuditAction;

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

/// An event of `user`'s account.
pub struct AccountEvent<'a> {
    pub user: UserId,
    /// Who did it; `None` for the server's administrator.
    pub actor: Option<UserId>,
    pub action: Action,
    /// The device's name, or the account's address.
    pub subject: &'a str,
    pub device: Option<DeviceId>,
    /// The second factor a sign-in gave besides the password.
    pub second_factor: Option<SecondFactor>,
}

/// Records an event of an account.
pub fn record_account(tx: &Transaction<'_>, event: &AccountEvent<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at, user_id, actor, device, action, subject, second_factor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            now_ms(),
            event.user.to_string(),
            event.actor.map(|a| a.to_string()),
            event.device.map(|d| d.to_string()),
            event.action.as_str(),
            event.subject,
            event.second_factor.map(SecondFactor::as_str)
        ],
    )?;
    Ok(())
}

/// The most entries one page holds.
pub const MAX_PAGE: u32 = 500;

/// `user`'s log, newest first: at most `limit` entries older than entry
/// `before` (from the newest when `None`).
pub fn of_user(
    conn: &Connection,
    user: UserId,
    before: Option<u64>,
    limit: u32,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.seq, a.at, a.action, actor.email, a.subject, a.object_id, o.name, a.device,
                a.role, a.second_factor
         FROM audit a
         JOIN users me ON me.id = ?1
         LEFT JOIN users actor ON actor.id = a.actor
         LEFT JOIN objects o ON o.id = a.object_id
         WHERE a.seq < ?2
           AND (a.user_id = me.id OR a.actor = me.id
                OR (a.object_id IS NOT NULL AND a.subject = me.email COLLATE NOCASE))
         ORDER BY a.seq DESC
         LIMIT ?3",
    )?;
    let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    stmt.query_map(params![user.to_string(), before, limit], |r| {
        let role: Option<String> = r.get(8)?;
        let second_factor: Option<String> = r.get(9)?;
        Ok(AuditEntry {
            id: r.get::<_, i64>(0)? as u64,
            at: from_ms(r.get(1)?),
            action: Action::parse(&r.get::<_, String>(2)?),
            by: r.get(3)?,
            subject: r.get(4)?,
            object: optional_id(r, 5)?,
            object_name: r.get(6)?,
            device: optional_id(r, 7)?,
            role: role.as_deref().and_then(Role::parse),
            second_factor: second_factor.as_deref().map(SecondFactor::parse),
        })
    })?
    .collect()
}

fn optional_id<T: std::str::FromStr>(
    r: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match r.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => id_column(r, idx).map(Some),
    }
}
