//! Mesh objects and their members. Every lookup is made as a user (or an
//! app): an object the user is not a member of (outside the app's scope)
//! does not exist for them.

use mesh_protocol::api::{Change, MeshObject, ObjectId, Role, UserId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::changes::{self, Audience};
use super::id_column;
use crate::auth::Principal;
use crate::db::{from_ms, now_ms};

const SELECT: &str =
    "SELECT o.id, o.kind, o.name, o.owner, m.role, o.created, o.updated, o.seq, u.email
     FROM objects o JOIN members m ON m.object_id = o.id AND m.user_id = ?1
     JOIN users u ON u.id = o.owner
     WHERE o.deleted IS NULL";

/// [`SELECT`] as an app sees objects: its scope, with the role it may use.
const SELECT_AS_APP: &str =
    "SELECT o.id, o.kind, o.name, o.owner, m.role, o.created, o.updated, o.seq, u.email
     FROM objects o JOIN app_scope m ON m.object_id = o.id AND m.app_id = ?1
     JOIN users u ON u.id = o.owner
     WHERE o.deleted IS NULL";

/// An object as a member sees it, with its feed's version.
#[derive(Debug, Clone)]
pub struct Visible {
    pub object: MeshObject,
    /// The sequence number of the object's newest change.
    pub seq: u64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Visible> {
    let role: String = r.get(4)?;
    Ok(Visible {
        object: MeshObject {
            id: id_column(r, 0)?,
            kind: r.get(1)?,
            name: r.get(2)?,
            owner: id_column(r, 3)?,
            owner_email: r.get(8)?,
            role: Role::parse(&role).ok_or_else(|| {
                rusqlite::Error::InvalidColumnType(4, role.clone(), rusqlite::types::Type::Text)
            })?,
            created: from_ms(r.get(5)?),
            updated: from_ms(r.get(6)?),
        },
        seq: r.get::<_, i64>(7)? as u64,
    })
}

/// Creates an object with `owner` as its only member.
pub fn create(
    tx: &Transaction<'_>,
    owner: UserId,
    name: &str,
    kind: &str,
) -> rusqlite::Result<ObjectId> {
    let id = ObjectId::generate();
    let now = now_ms();
    tx.execute(
        "INSERT INTO objects (id, kind, name, owner, created, updated, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0)",
        params![id.to_string(), kind, name, owner.to_string(), now],
    )?;
    tx.execute(
        "INSERT INTO members (object_id, user_id, role) VALUES (?1, ?2, 'owner')",
        params![id.to_string(), owner.to_string()],
    )?;
    changes::record(
        tx,
        Audience::Object(id),
        &Change::ObjectChanged { object: id },
    )?;
    Ok(id)
}

/// The object as `user` sees it, or `None` when it is unknown, deleted or
/// `user` is not a member.
pub fn visible(conn: &Connection, user: UserId, id: ObjectId) -> rusqlite::Result<Option<Visible>> {
    conn.prepare_cached(&format!("{SELECT} AND o.id = ?2"))?
        .query_row(params![user.to_string(), id.to_string()], row)
        .optional()
}

/// The object as `who` sees it: a device as its user does, an app as its
/// scope allows (the role it may use now).
pub fn visible_to(
    conn: &Connection,
    who: Principal,
    id: ObjectId,
) -> rusqlite::Result<Option<Visible>> {
    match who {
        Principal::Device(caller) => visible(conn, caller.user, id),
        Principal::App(app) => conn
            .prepare_cached(&format!("{SELECT_AS_APP} AND o.id = ?2"))?
            .query_row(params![app.app.to_string(), id.to_string()], row)
            .optional(),
    }
}

/// The objects `user` is a member of, optionally of one kind, by name.
pub fn list(
    conn: &Connection,
    user: UserId,
    kind: Option<&str>,
) -> rusqlite::Result<Vec<MeshObject>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} AND (?2 IS NULL OR o.kind = ?2) ORDER BY o.name, o.id"
    ))?;
    stmt.query_map(params![user.to_string(), kind], row)?
        .map(|r| r.map(|v| v.object))
        .collect()
}

pub fn rename(tx: &Transaction<'_>, id: ObjectId, name: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE objects SET name = ?1, updated = ?2 WHERE id = ?3",
        params![name, now_ms(), id.to_string()],
    )?;
    changes::record(
        tx,
        Audience::Object(id),
        &Change::ObjectChanged { object: id },
    )?;
    Ok(())
}

/// Deletes an object: its entries and their chunk references go at once
/// (the chunks follow at the next collection); the object row and its
/// member list stay so that members still receive the deletion event.
pub fn delete(tx: &Transaction<'_>, id: ObjectId) -> rusqlite::Result<()> {
    let key = id.to_string();
    tx.execute("DELETE FROM entries WHERE object_id = ?1", [&key])?;
    tx.execute("DELETE FROM chunk_refs WHERE object_id = ?1", [&key])?;
    tx.execute(
        "UPDATE objects SET deleted = ?1, updated = ?1 WHERE id = ?2",
        params![now_ms(), key],
    )?;
    changes::record(
        tx,
        Audience::Object(id),
        &Change::ObjectDeleted { object: id },
    )?;
    Ok(())
}
