//! Users and their devices: accounts with argon2 password hashes, device
//! enrollment with bearer tokens stored only as hashes, revocation, and
//! password changes; each of the last three goes to the account's audit
//! log in the same transaction.

use mesh_protocol::api::{Change, DeviceId, SecondFactor, UserId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::audit::{self, AccountEvent, Action};
use super::changes::{self, Audience};
use super::id_column;
use crate::auth::{Caller, TokenHash};
use crate::db::{from_ms, now_ms};

/// A user as stored.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

/// Adding a user failed.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error("a user with the e-mail address {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

/// Checks an e-mail address: one that mail can be sent to, at most 254
/// bytes.
pub fn validate_email(email: &str) -> Result<(), String> {
    if email.len() <= 254 && email.parse::<lettre::Address>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not an e-mail address",
            email.chars().take(80).collect::<String>()
        ))
    }
}

pub fn add_user(
    tx: &Transaction<'_>,
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<UserId, AddUserError> {
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)",
        [email],
        |r| r.get(0),
    )?;
    if exists {
        return Err(AddUserError::Exists(email.to_owned()));
    }
    let id = UserId::generate();
    tx.execute(
        "INSERT INTO users (id, email, name, password_hash, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.to_string(), email, name, password_hash, now_ms()],
    )?;
    Ok(id)
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: id_column(r, 0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        password_hash: r.get(3)?,
    })
}

/// The account with this e-mail address (case does not matter).
pub fn user_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<User>> {
    conn.query_row(
        "SELECT id, email, name, password_hash FROM users WHERE email = ?1",
        [email],
        user_row,
    )
    .optional()
}

pub fn user_by_id(conn: &Connection, id: UserId) -> rusqlite::Result<Option<User>> {
    conn.query_row(
        "SELECT id, email, name, password_hash FROM users WHERE id = ?1",
        [id.to_string()],
        user_row,
    )
    .optional()
}

pub fn list_users(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    let mut stmt =
        conn.prepare("SELECT id, email, name, password_hash FROM users ORDER BY email")?;
    stmt.query_map([], user_row)?.collect()
}

/// Enrolls a device for `user`, keeping only the hash of its token; the
/// sign-in gave `second_factor` besides the password.
pub fn enroll_device(
    tx: &Transaction<'_>,
    user: UserId,
    name: &str,
    public_key: Option<&str>,
    token: &TokenHash,
    second_factor: Option<SecondFactor>,
) -> rusqlite::Result<DeviceId> {
    let id = DeviceId::generate();
    let now = now_ms();
    tx.execute(
        "INSERT INTO devices (id, user_id, name, token_hash, public_key, enrolled, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            id.to_string(),
            user.to_string(),
            name,
            token.as_bytes(),
            public_key,
            now
        ],
    )?;
    changes::record(
        tx,
        Audience::User(user),
        &Change::DeviceChanged { device: id },
    )?;
    audit::record_account(
        tx,
        &AccountEvent {
            user,
            actor: Some(user),
            action: Action::DeviceEnrolled,
            subject: name,
            device: Some(id),
            second_factor,
        },
    )?;
    Ok(id)
}

/// The live (not revoked) device holding this token.
pub fn authenticate(conn: &Connection, token: &TokenHash) -> rusqlite::Result<Option<Caller>> {
    conn.prepare_cached(
        "SELECT id, user_id FROM devices WHERE token_hash = ?1 AND revoked IS NULL",
    )?
    .query_row([token.as_bytes()], |r| {
        Ok(Caller {
            device: id_column(r, 0)?,
            user: id_column(r, 1)?,
        })
    })
    .optional()
}

/// The e-mail address of `caller`'s user and the name of its device, as
/// others are shown them; `None` once the device is revoked.
pub fn identity(conn: &Connection, caller: Caller) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached(
        "SELECT u.email, d.name FROM devices d JOIN users u ON u.id = d.user_id
         WHERE d.id = ?1 AND d.revoked IS NULL",
    )?
    .query_row([caller.device.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// A device as stored.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub name: String,
    pub public_key: Option<String>,
    pub enrolled: chrono::DateTime<chrono::Utc>,
    pub last_seen: Option<chrono::DateTime<chrono::Utc>>,
}

/// The user's live devices, oldest first.
pub fn devices(conn: &Connection, user: UserId) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, public_key, enrolled, last_seen FROM devices
         WHERE user_id = ?1 AND revoked IS NULL ORDER BY enrolled, id",
    )?;
    stmt.query_map([user.to_string()], |r| {
        Ok(DeviceRow {
            id: id_column(r, 0)?,
            name: r.get(1)?,
            public_key: r.get(2)?,
            enrolled: from_ms(r.get(3)?),
            last_seen: r.get::<_, Option<i64>>(4)?.map(from_ms),
        })
    })?
    .collect()
}

/// Revokes one of `user`'s devices, by the user (`actor`) or by the
/// server's administrator (`None`); false when it has no such live device.
pub fn revoke_device(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
) -> rusqlite::Result<bool> {
    revoke(tx, user, Some(user), device)
}

fn revoke(
    tx: &Transaction<'_>,
    user: UserId,
    actor: Option<UserId>,
    device: DeviceId,
) -> rusqlite::Result<bool> {
    let name: Option<String> = tx
        .query_row(
            "UPDATE devices SET revoked = ?1 WHERE id = ?2 AND user_id = ?3 AND revoked IS NULL
             RETURNING name",
            params![now_ms(), device.to_string(), user.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(name) = name else {
        return Ok(false);
    };
    changes::record(tx, Audience::User(user), &Change::DeviceRevoked { device })?;
    audit::record_account(
        tx,
        &AccountEvent {
            user,
            actor,
            action: Action::DeviceRevoked,
            subject: &name,
            device: Some(device),
            second_factor: None,
        },
    )?;
    Ok(true)
}

/// Gives `user` a new password hash, as the server's administrator does
/// (`meshd user passwd`); with `revoke_devices`, every device of the
/// account is signed out too. Returns how many devices were revoked.
pub fn set_password(
    tx: &Transaction<'_>,
    user: &User,
    password_hash: &str,
    revoke_devices: bool,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![password_hash, user.id.to_string()],
    )?;
    audit::record_account(
        tx,
        &AccountEvent {
            user: user.id,
            actor: None,
            action: Action::PasswordChanged,
            subject: &user.email,
            device: None,
            second_factor: None,
        },
    )?;
    let mut revoked = 0;
    if revoke_devices {
        for device in devices(tx, user.id)? {
            if revoke(tx, user.id, None, device.id)? {
                revoked += 1;
            }
        }
    }
    Ok(revoked)
}

/// Records that a device was seen now, and, when `online` is given, that
/// its presence changed.
pub fn seen(tx: &Transaction<'_>, caller: Caller, online: Option<bool>) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE devices SET last_seen = ?1 WHERE id = ?2",
        params![now_ms(), caller.device.to_string()],
    )?;
    if let Some(online) = online {
        changes::record(
            tx,
            Audience::User(caller.user),
            &Change::DevicePresence {
                device: caller.device,
                online,
            },
        )?;
    }
    Ok(())
}
