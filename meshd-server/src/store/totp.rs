//! An account's second factor as stored: its TOTP secret, the last step
//! a code was accepted for, and its recovery codes as hashes. Turning it
//! on or off goes to the account's audit log in the same transaction; a
//! code is checked and used up in one transaction, so that no code (nor
//! any code of an earlier step) and no recovery code works twice, however
//! many sign-ins race.

use mesh_protocol::api::{SecondFactor, UserId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::accounts::User;
use super::audit::{self, AccountEvent, Action};
use crate::totp::{self, Code};

/// An account's second factor, as `meshd user list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Recovery codes not used yet.
    pub recovery_codes: u32,
}

/// The account's second factor; `None` when it has none.
pub fn state(conn: &Connection, user: UserId) -> rusqlite::Result<Option<State>> {
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM recovery_codes r WHERE r.user_id = t.user_id)
         FROM totp t WHERE t.user_id = ?1",
    )?
    .query_row([user.to_string()], |r| {
        Ok(State {
            recovery_codes: r.get(0)?,
        })
    })
    .optional()
}

/// Gives `user` the second factor `secret` with these recovery codes (as
/// [`crate::totp::stored_recovery_hash`]es), replacing any it had, by the
/// user (`actor`) or the server's administrator (`None`).
pub fn enable(
    tx: &Transaction<'_>,
    user: &User,
    actor: Option<UserId>,
    secret: &[u8],
    recovery_hashes: &[[u8; 32]],
) -> rusqlite::Result<()> {
    let id = user.id.to_string();
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&id])?;
    tx.execute(
        "INSERT INTO totp (user_id, secret, last_step, enabled) VALUES (?1, ?2, NULL, ?3)
         ON CONFLICT (user_id) DO UPDATE
         SET secret = excluded.secret, last_step = NULL, enabled = excluded.enabled",
        params![id, secret, crate::db::now_ms()],
    )?;
    for hash in recovery_hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![id, &hash[..]],
        )?;
    }
    audit::record_account(
        tx,
        &AccountEvent {
            user: user.id,
            actor,
            action: Action::TotpEnabled,
            subject: &user.email,
            device: None,
            second_factor: None,
        },
    )
}

/// Takes `user`'s second factor away; false when it had none.
pub fn disable(tx: &Transaction<'_>, user: &User, actor: Option<UserId>) -> rusqlite::Result<bool> {
    let id = user.id.to_string();
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&id])?;
    if tx.execute("DELETE FROM totp WHERE user_id = ?1", [&id])? == 0 {
        return Ok(false);
    }
    audit::record_account(
        tx,
        &AccountEvent {
            user: user.id,
            actor,
            action: Action::TotpDisabled,
            subject: &user.email,
            device: None,
            second_factor: None,
        },
    )?;
    Ok(true)
}

/// Checks `typed` as `user`'s second factor at `now_secs` and uses it up:
/// a code of the authenticator app for a step later than the last one
/// accepted (which it becomes), or a recovery code not used yet (which is
/// deleted). Which it was; `None` when it is neither.
pub fn redeem(
    tx: &Transaction<'_>,
    user: UserId,
    typed: &str,
    now_secs: u64,
) -> rusqlite::Result<Option<SecondFactor>> {
    let id = user.to_string();
    let stored: Option<(Vec<u8>, Option<i64>)> = tx
        .query_row(
            "SELECT secret, last_step FROM totp WHERE user_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((secret, last_step)) = stored else {
        return Ok(None);
    };
    match Code::parse(typed) {
        Code::Totp(code) => {
            let after = last_step.map(|s| s.max(0) as u64);
            let Some(step) = totp::matching_step(&secret, &code, now_secs, after) else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE totp SET last_step = ?1 WHERE user_id = ?2",
                params![step as i64, id],
            )?;
            Ok(Some(SecondFactor::Totp))
        }
        Code::Recovery(hash) => {
            let used = tx.execute(
                "DELETE FROM recovery_codes WHERE user_id = ?1 AND code_hash = ?2",
                params![id, &hash[..]],
            )?;
            Ok((used == 1).then_some(SecondFactor::RecoveryCode))
        }
    }
}
