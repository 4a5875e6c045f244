//! An account's second factor as stored: its TOTP secret, the last step
//! a code was accepted for, and its recovery codes as hashes. The server's
//! administrator turns it on at once; the account's owner in two steps —
//! a new key waits (and signs nothing in) until a first code of it
//! confirms that the app has it. Turning it on or off goes to the
//! account's audit log in the same transaction; a
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

/// The account's second factor; `None` when it has none (or one that
/// waits for its first code).
pub fn state(conn: &Connection, user: UserId) -> rusqlite::Result<Option<State>> {
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM recovery_codes r WHERE r.user_id = t.user_id)
         FROM totp t WHERE t.user_id = ?1 AND t.enabled IS NOT NULL",
    )?
    .query_row([user.to_string()], |r| {
        Ok(State {
            recovery_codes: r.get(0)?,
        })
    })
    .optional()
}

/// Keeps `secret` and these recovery codes (as
/// [`crate::totp::stored_recovery_hash`]es) as `user`'s, replacing any it
/// had: enabled now, or waiting for its first code.
fn store(
    tx: &Transaction<'_>,
    user: UserId,
    secret: &[u8],
    recovery_hashes: &[[u8; 32]],
    enabled: bool,
) -> rusqlite::Result<()> {
    let id = user.to_string();
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&id])?;
    tx.execute(
        "INSERT INTO totp (user_id, secret, last_step, enabled) VALUES (?1, ?2, NULL, ?3)
         ON CONFLICT (user_id) DO UPDATE
         SET secret = excluded.secret, last_step = NULL, enabled = excluded.enabled",
        params![id, secret, enabled.then(crate::db::now_ms)],
    )?;
    for hash in recovery_hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![id, &hash[..]],
        )?;
    }
    Ok(())
}

fn record(
    tx: &Transaction<'_>,
    user: &User,
    actor: Option<UserId>,
    action: Action,
) -> rusqlite::Result<()> {
    audit::record_account(
        tx,
        &AccountEvent {
            user: user.id,
            actor,
            action,
            subject: &user.email,
            device: None,
            second_factor: None,
        },
    )
}

/// Gives `user` the second factor `secret` with these recovery codes,
/// replacing any it had, as the server's administrator does.
pub fn enable(
    tx: &Transaction<'_>,
    user: &User,
    secret: &[u8],
    recovery_hashes: &[[u8; 32]],
) -> rusqlite::Result<()> {
    store(tx, user.id, secret, recovery_hashes, true)?;
    record(tx, user, None, Action::TotpEnabled)
}

/// Keeps a new key for `user`, as its owner asked, to be confirmed by a
/// first code ([`confirm`]); until then sign-in needs no code. Replaces
/// one that waited; the caller has checked that none is enabled.
pub fn begin(
    tx: &Transaction<'_>,
    user: UserId,
    secret: &[u8],
    recovery_hashes: &[[u8; 32]],
) -> rusqlite::Result<()> {
    store(tx, user, secret, recovery_hashes, false)
}

/// What a first code did to a key that waits for it.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The key is enabled now.
    Enabled,
    /// The code is not one of the key's near now.
    WrongCode,
    /// No key waits (none was begun, or it is enabled already).
    NothingWaits,
}

/// Enables `user`'s waiting key if `code` is one of its codes near
/// `now_secs`, which counts as used.
pub fn confirm(
    tx: &Transaction<'_>,
    user: &User,
    code: &str,
    now_secs: u64,
) -> rusqlite::Result<Confirmed> {
    let id = user.id.to_string();
    let secret: Option<Vec<u8>> = tx
        .query_row(
            "SELECT secret FROM totp WHERE user_id = ?1 AND enabled IS NULL",
            [&id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(secret) = secret else {
        return Ok(Confirmed::NothingWaits);
    };
    let Code::Totp(code) = Code::parse(code) else {
        return Ok(Confirmed::WrongCode);
    };
    let Some(step) = totp::matching_step(&secret, &code, now_secs, None) else {
        return Ok(Confirmed::WrongCode);
    };
    tx.execute(
        "UPDATE totp SET enabled = ?1, last_step = ?2 WHERE user_id = ?3",
        params![crate::db::now_ms(), step as i64, id],
    )?;
    record(tx, user, Some(user.id), Action::TotpEnabled)?;
    Ok(Confirmed::Enabled)
}

/// Takes `user`'s second factor away (and a key that waited), by the
/// user (`actor`) or the server's administrator (`None`); false when it
/// had none enabled.
pub fn disable(tx: &Transaction<'_>, user: &User, actor: Option<UserId>) -> rusqlite::Result<bool> {
    let had = state(tx, user.id)?.is_some();
    let id = user.id.to_string();
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&id])?;
    tx.execute("DELETE FROM totp WHERE user_id = ?1", [&id])?;
    if had {
        record(tx, user, actor, Action::TotpDisabled)?;
    }
    Ok(had)
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
            "SELECT secret, last_step FROM totp WHERE user_id = ?1 AND enabled IS NOT NULL",
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
