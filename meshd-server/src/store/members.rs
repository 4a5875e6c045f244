//! The members of mesh objects and their roles. The rules of who may change
//! them are in `crate::sharing`; these functions only read and write.

use mesh_protocol::api::{Member, MemberKind, ObjectId, Role, UserId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashSet;

use super::id_column;

const SELECT: &str = "SELECT u.id, u.email, u.name, m.role
     FROM members m JOIN users u ON u.id = m.user_id
     WHERE m.object_id = ?1";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    let role: String = r.get(3)?;
    Ok(Member {
        user: id_column(r, 0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(3, role.clone(), rusqlite::types::Type::Text)
        })?,
        kind: MemberKind::User,
        app: None,
    })
}

/// The object's members: owners first, then editors, then readers, each by
/// e-mail address.
pub fn list(conn: &Connection, object: ObjectId) -> rusqlite::Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, u.email"
    ))?;
    stmt.query_map([object.to_string()], row)?.collect()
}

/// The objects `user` is a member of.
pub fn objects_of(conn: &Connection, user: UserId) -> rusqlite::Result<HashSet<ObjectId>> {
    conn.prepare_cached("SELECT object_id FROM members WHERE user_id = ?1")?
        .query_map([user.to_string()], |r| id_column(r, 0))?
        .collect()
}

/// One member, by user id.
pub fn get(conn: &Connection, object: ObjectId, user: UserId) -> rusqlite::Result<Option<Member>> {
    conn.prepare_cached(&format!("{SELECT} AND u.id = ?2"))?
        .query_row(params![object.to_string(), user.to_string()], row)
        .optional()
}

/// One member, by e-mail address (case does not matter).
pub fn by_email(
    conn: &Connection,
    object: ObjectId,
    email: &str,
) -> rusqlite::Result<Option<Member>> {
    conn.prepare_cached(&format!("{SELECT} AND u.email = ?2"))?
        .query_row(params![object.to_string(), email], row)
        .optional()
}

/// How many owners the object has.
pub fn owners(conn: &Connection, object: ObjectId) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM members WHERE object_id = ?1 AND role = 'owner'")?
        .query_row([object.to_string()], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Makes `user` a member with `role`, or gives a member `role`.
pub fn put(
    tx: &Transaction<'_>,
    object: ObjectId,
    user: UserId,
    role: Role,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO members (object_id, user_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (object_id, user_id) DO UPDATE SET role = excluded.role",
        params![object.to_string(), user.to_string(), role.as_str()],
    )?;
    Ok(())
}

pub fn remove(tx: &Transaction<'_>, object: ObjectId, user: UserId) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM members WHERE object_id = ?1 AND user_id = ?2",
        params![object.to_string(), user.to_string()],
    )?;
    Ok(())
}
