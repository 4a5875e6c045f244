//! Who is calling: password hashing (argon2) and throttled sign-in for
//! accounts (with their second factor, see `crate::totp`), bearer tokens
//! for devices and apps and invitation tokens
//! (random, shown once, stored only as a BLAKE3 hash), and the extractors
//! that turn `Authorization: Bearer …` into a [`Principal`] (a device or an
//! app, for the routes an app may use) or a [`Caller`] (a device only: an
//! app's token never yields one, so a route that takes a `Caller` is out of
//! every app's reach).

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use mesh_protocol::api::{AppId, DeviceId, SecondFactor, UserId};
use rand::RngCore;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::accounts::{self, User};
use crate::store::apps;
use crate::store::totp;

/// An authenticated device of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    pub user: UserId,
    pub device: DeviceId,
}

/// An authenticated, unrevoked app. What it may reach is its scope (see
/// `store::apps`), read anew at each use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppCaller {
    pub app: AppId,
    pub owner: UserId,
}

/// Whoever holds the bearer token: a user's device, or an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Device(Caller),
    App(AppCaller),
}

impl From<Caller> for Principal {
    fn from(caller: Caller) -> Self {
        Principal::Device(caller)
    }
}

/// The hash under which a device token is stored.
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(*blake3::hash(token.as_bytes()).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// `bytes` random bytes in hexadecimal (URL-safe).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    mesh_protocol::folder::to_hex(&buf)
}

/// A new device token: `mesh_` and 256 random bits in hexadecimal.
pub fn new_token() -> String {
    format!("mesh_{}", random_hex(32))
}

/// A new app token: `mesh_app_` and 256 random bits in hexadecimal.
pub fn new_app_token() -> String {
    format!("mesh_app_{}", random_hex(32))
}

/// A new invitation token, the secret of an e-mailed link: 128 random bits
/// in hexadecimal, short enough to keep the link on one line of a
/// message. Single use, expiring, and tried at a throttled rate.
pub fn new_invitation_token() -> String {
    random_hex(16)
}

/// Hashes a password for storage (argon2id, random salt). Slow on purpose:
/// call it off the async runtime.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("making a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Checks a password against a stored hash, in `memory` (argon2's blocks,
/// grown to what the hash needs and kept for the next check, so that
/// memory is allocated once per concurrent check, not once per sign-in).
/// With no stored hash (unknown user) it still spends the same time, so
/// timing does not tell which e-mail addresses have accounts.
pub fn verify_password(password: &str, stored: Option<&str>, memory: &mut Vec<Block>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .ok()
        .and_then(|parsed| matches(password.as_bytes(), &parsed, memory))
        .unwrap_or(false);
    ok && real
}

/// Whether `password` hashes to `hash`; `None` when `hash` is not a
/// complete argon2 hash.
fn matches(password: &[u8], hash: &PasswordHash<'_>, memory: &mut Vec<Block>) -> Option<bool> {
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(hash).ok()?;
    let expected = hash.hash?;
    let mut salt = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .ok()?;
    // Output compares in constant time.
    Some(Output::new(&out).ok()? == expected)
}

/// The password checks that may run at once. Each argon2 check holds
/// 19 MiB while it runs; unbounded, a burst of sign-ins takes gigabytes. A
/// sign-in that waits longer than the queue allows is answered `503`.
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    queue_wait: Duration,
    /// argon2's memory, one for each check that has run at once.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl PasswordChecks {
    pub fn new(at_once: usize, queue_wait: Duration) -> Self {
        PasswordChecks {
            slots: Arc::new(Semaphore::new(at_once.max(1))),
            queue_wait,
            memory: Arc::default(),
        }
    }

    /// Whether `password` matches `stored` (see [`verify_password`]), off
    /// the async runtime, once a slot is free.
    async fn verify(&self, password: String, stored: Option<String>) -> ApiResult<bool> {
        let slot = tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                tracing::warn!("every password check is taken; a sign-in waited too long");
                ApiError::Unavailable {
                    retry_after: Duration::from_secs(1),
                }
            })?
            .map_err(|e| ApiError::Internal(e.into()))?;
        // The slot goes with the check, so that it is held until the check
        // ends even when the request that asked for it is gone.
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut memory = pool.lock().expect("memory").pop().unwrap_or_default();
            let ok = verify_password(&password, stored.as_deref(), &mut memory);
            pool.lock().expect("memory").push(memory);
            ok
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))
    }
}

/// A sign-in that succeeded: the account, and the second factor it gave
/// besides the password, if the account has one.
pub struct SignedIn {
    pub user: User,
    pub second_factor: Option<SecondFactor>,
}

/// Signs in with an e-mail address, a password and, for an account with a
/// second factor, `code` (a current code of its authenticator app or a
/// recovery code, used up here) from a client at `address`.
///
/// A wrong password is `BadCredentials` whatever the account (unknown
/// address and wrong password look the same, with or without a second
/// factor); only after the right password does an account with a second
/// factor answer `SecondFactorRequired` (no code given, which counts as
/// nothing) or `BadSecondFactor` (a wrong or used code). Wrong passwords
/// and wrong codes are throttled alike, per account and address and per
/// address (see `crate::throttle`); while throttled every attempt gets
/// `TooManyRequests`, so guessing runs at a crawl.
pub async fn sign_in(
    state: &AppState,
    address: IpAddr,
    email: &str,
    password: String,
    code: Option<String>,
) -> ApiResult<SignedIn> {
    let email = email.trim().to_owned();
    let account = email.to_lowercase();
    state
        .sign_in_throttle
        .check(&account, address)
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let found = state
        .db
        .read(move |conn| {
            let Some(user) = accounts::user_by_email(conn, &email)? else {
                return Ok::<_, ApiError>(None);
            };
            let second_factor = totp::state(conn, user.id)?.is_some();
            Ok(Some((user, second_factor)))
        })
        .await?;
    let stored = found.as_ref().map(|(u, _)| u.password_hash.clone());
    let ok = state.password_checks.verify(password, stored).await?;
    let (user, has_second_factor) = match (ok, found) {
        (true, Some(found)) => found,
        _ => {
            state.sign_in_throttle.failed(&account, address);
            tracing::info!(client = %address, "sign-in refused: wrong e-mail address or password");
            return Err(ApiError::BadCredentials);
        }
    };
    if !has_second_factor {
        state.sign_in_throttle.succeeded(&account, address);
        return Ok(SignedIn {
            user,
            second_factor: None,
        });
    }
    // Neither a failure nor a success: the code is yet to come, and
    // asking for it must not clear the failures of wrong codes.
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        tracing::info!(client = %address, user = %user.id, "sign-in needs an authentication code");
        return Err(ApiError::SecondFactorRequired);
    };
    let id = user.id;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let factor = state
        .write(move |tx| Ok(totp::redeem(tx, id, &code, now)?))
        .await?;
    match factor {
        Some(factor) => {
            state.sign_in_throttle.succeeded(&account, address);
            tracing::info!(user = %id, second_factor = factor.as_str(), "second factor accepted");
            Ok(SignedIn {
                user,
                second_factor: Some(factor),
            })
        }
        None => {
            state.sign_in_throttle.failed(&account, address);
            tracing::info!(
                client = %address,
                user = %id,
                "sign-in refused: wrong or already used authentication code"
            );
            Err(ApiError::BadSecondFactor)
        }
    }
}

/// Checks a new password: at least 8 characters.
pub fn validate_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        Err("the password must have at least 8 characters".into())
    } else {
        Ok(())
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let hash = TokenHash::of(token);
        let principal = state
            .db
            .read(move |conn| {
                Ok::<_, ApiError>(match accounts::authenticate(conn, &hash)? {
                    Some(caller) => Some(Principal::Device(caller)),
                    None => apps::authenticate(conn, &hash)?.map(Principal::App),
                })
            })
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if let Principal::Device(caller) = principal {
            state.presence.touch(caller);
        }
        Ok(principal)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Device(caller) => Ok(caller),
            Principal::App(_) => Err(ApiError::Forbidden(
                "this is an app's token; an app reads and posts the feeds and news of the \
                 objects it was given, and nothing else"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse").unwrap();
        let memory = &mut Vec::new();
        assert!(verify_password("correct horse", Some(&h), memory));
        assert!(!verify_password("wrong horse", Some(&h), memory));
        assert!(!verify_password("correct horse", None, memory));
        assert!(!verify_password("correct horse", Some("garbage"), memory));
        // The same as argon2's own verification.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(verify_password("correct horse", Some(&h), memory));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 64);
        let app = new_app_token();
        assert_eq!(app.len(), 9 + 64);
        assert_ne!(app, new_app_token());
        let invite = new_invitation_token();
        assert_eq!(invite.len(), 32);
        assert_ne!(invite, new_invitation_token());
        assert_eq!(TokenHash::of(&a).as_bytes(), TokenHash::of(&a).as_bytes());
        assert_ne!(TokenHash::of(&a).as_bytes(), TokenHash::of(&b).as_bytes());
    }
}
