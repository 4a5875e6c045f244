//! Apps as stored: a name, an owner, a token kept only as its hash, and
//! grants on named objects, each with who granted it (the owner, or an
//! owner of the object who invited the app). What an app may do on an
//! object *now* is the `app_scope` view (see `db.rs`): its grant, at most
//! the granter's role there, and nothing once the granter is no member or
//! the app is revoked.
//! Creation and revocation go to the owner's audit log in the same
//! transaction; a revocation is also the last change the app's streams are
//! told. The rules of what may be granted are in `crate::apps`.

use mesh_protocol::api::{
    App, AppGrant, AppId, Change, Member, MemberKind, ObjectId, Role, UserId,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashSet;

use super::audit::{self, AccountEvent, Action};
use super::changes::{self, Audience};
use super::id_column;
use crate::auth::{AppCaller, TokenHash};
use crate::db::{from_ms, now_ms};

fn role_column(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Role> {
    let text: String = r.get(idx)?;
    Role::parse(&text)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(idx, text, rusqlite::types::Type::Text))
}

/// Stores a new app of `owner` with its grants, as `actor` (the owner, or
/// `None` for the server's administrator).
pub fn create(
    tx: &Transaction<'_>,
    owner: UserId,
    actor: Option<UserId>,
    name: &str,
    grants: &[AppGrant],
    token: &TokenHash,
) -> rusqlite::Result<AppId> {
    let id = AppId::generate();
    tx.execute(
        "INSERT INTO apps (id, owner, name, token_hash, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            id.to_string(),
            owner.to_string(),
            name,
            token.as_bytes(),
            now_ms()
        ],
    )?;
    for grant in grants {
        self::grant(tx, id, grant, owner)?;
    }
    audit::record_account(
        tx,
        &AccountEvent {
            user: owner,
            actor,
            action: Action::AppAdded,
            subject: name,
            device: None,
            second_factor: None,
        },
    )?;
    Ok(id)
}

/// Lets `app` use an object with a role, as granted by `by` (bounded by
/// their role there, see `app_scope`); a grant it had is replaced.
pub fn grant(
    tx: &Transaction<'_>,
    app: AppId,
    grant: &AppGrant,
    by: UserId,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO app_objects (app_id, object_id, role, granted_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (app_id, object_id)
         DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by",
        params![
            app.to_string(),
            grant.object.to_string(),
            grant.role.as_str(),
            by.to_string()
        ],
    )?;
    Ok(())
}

/// Takes an object out of `app`'s grants; false when it had none.
pub fn ungrant(tx: &Transaction<'_>, app: AppId, object: ObjectId) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "DELETE FROM app_objects WHERE app_id = ?1 AND object_id = ?2",
        params![app.to_string(), object.to_string()],
    )?;
    Ok(n > 0)
}

/// A live app's owner and name.
pub fn live(conn: &Connection, app: AppId) -> rusqlite::Result<Option<(UserId, String)>> {
    conn.prepare_cached("SELECT owner, name FROM apps WHERE id = ?1 AND revoked IS NULL")?
        .query_row([app.to_string()], |r| Ok((id_column(r, 0)?, r.get(1)?)))
        .optional()
}

/// The live (not revoked) app holding this token.
pub fn authenticate(conn: &Connection, token: &TokenHash) -> rusqlite::Result<Option<AppCaller>> {
    conn.prepare_cached("SELECT id, owner FROM apps WHERE token_hash = ?1 AND revoked IS NULL")?
        .query_row([token.as_bytes()], |r| {
            Ok(AppCaller {
                app: id_column(r, 0)?,
                owner: id_column(r, 1)?,
            })
        })
        .optional()
}

/// Live apps, oldest first: `owner`'s, or everyone's.
pub fn list(conn: &Connection, owner: Option<UserId>) -> rusqlite::Result<Vec<App>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.name, a.owner, u.email, a.created, g.object_id, g.role
         FROM apps a JOIN users u ON u.id = a.owner
         LEFT JOIN app_objects g ON g.app_id = a.id
         WHERE a.revoked IS NULL AND (?1 IS NULL OR a.owner = ?1)
         ORDER BY a.created, a.id, g.object_id",
    )?;
    let rows = stmt.query_map([owner.map(|o| o.to_string())], |r| {
        let grant = match r.get_ref(5)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(AppGrant {
                object: id_column(r, 5)?,
                role: role_column(r, 6)?,
            }),
        };
        let app = App {
            id: id_column(r, 0)?,
            name: r.get(1)?,
            owner: id_column(r, 2)?,
            owner_email: r.get(3)?,
            created: from_ms(r.get(4)?),
            objects: Vec::new(),
        };
        Ok((app, grant))
    })?;
    let mut apps: Vec<App> = Vec::new();
    for row in rows {
        let (app, grant) = row?;
        if apps.last().is_none_or(|last| last.id != app.id) {
            apps.push(app);
        }
        let last = apps.last_mut().expect("just pushed");
        last.objects.extend(grant);
    }
    Ok(apps)
}

/// Revokes a live app, of `owner` only when given, as `actor` (`None`:
/// the server's administrator); false when there is no such live app.
pub fn revoke(
    tx: &Transaction<'_>,
    owner: Option<UserId>,
    actor: Option<UserId>,
    app: AppId,
) -> rusqlite::Result<bool> {
    let revoked: Option<(UserId, String)> = tx
        .query_row(
            "UPDATE apps SET revoked = ?1
             WHERE id = ?2 AND revoked IS NULL AND (?3 IS NULL OR owner = ?3)
             RETURNING owner, name",
            params![now_ms(), app.to_string(), owner.map(|o| o.to_string())],
            |r| Ok((id_column(r, 0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((owner, name)) = revoked else {
        return Ok(false);
    };
    changes::record(tx, Audience::App(app), &Change::AppRevoked { app })?;
    audit::record_account(
        tx,
        &AccountEvent {
            user: owner,
            actor,
            action: Action::AppRevoked,
            subject: &name,
            device: None,
            second_factor: None,
        },
    )?;
    Ok(true)
}

/// The objects `app` may reach now.
pub fn scope(conn: &Connection, app: AppId) -> rusqlite::Result<HashSet<ObjectId>> {
    conn.prepare_cached(
        "SELECT s.object_id FROM app_scope s JOIN objects o ON o.id = s.object_id
         WHERE s.app_id = ?1 AND o.deleted IS NULL",
    )?
    .query_map([app.to_string()], |r| id_column(r, 0))?
    .collect()
}

/// The apps that may reach `object` now, as members: listed by their
/// owner, with the app's name and the role it may use, by name.
pub fn members_of(conn: &Connection, object: ObjectId) -> rusqlite::Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.name, u.id, u.email, s.role
         FROM app_scope s JOIN apps a ON a.id = s.app_id JOIN users u ON u.id = a.owner
         WHERE s.object_id = ?1 ORDER BY a.name, a.id",
    )?;
    stmt.query_map([object.to_string()], |r| {
        Ok(Member {
            app: Some(id_column(r, 0)?),
            name: r.get(1)?,
            user: id_column(r, 2)?,
            email: r.get(3)?,
            role: role_column(r, 4)?,
            kind: MemberKind::App,
        })
    })?
    .collect()
}

/// The name of app `app`.
pub fn name(conn: &Connection, app: AppId) -> rusqlite::Result<String> {
    conn.prepare_cached("SELECT name FROM apps WHERE id = ?1")?
        .query_row([app.to_string()], |r| r.get(0))
}
