//! Who is calling: password hashing (argon2) and throttled sign-in for
//! accounts, bearer tokens for devices and invitation tokens (random, shown
//! once, stored only as a BLAKE3 hash), and the extractor that turns
//! `Authorization: Bearer …` into a [`Caller`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use mesh_protocol::api::{DeviceId, UserId};
use rand::RngCore;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::accounts::{self, User};

/// An authenticated device of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub device: DeviceId,
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

/// Checks a password against a stored hash. With no stored hash (unknown
/// user) it still spends the same time, so timing does not tell which
/// e-mail addresses have accounts.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

/// Signs in with an e-mail address and a password: the account, or
/// `BadCredentials` (unknown address and wrong password look the same).
/// Failures are throttled per address; while an address is throttled every
/// attempt gets `TooManyRequests`, so guessing runs at a crawl.
pub async fn sign_in(state: &AppState, email: &str, password: String) -> ApiResult<User> {
    let email = email.trim().to_owned();
    let throttle_key = email.to_lowercase();
    state
        .sign_in_throttle
        .check(&throttle_key)
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let user = state
        .db
        .read(move |conn| Ok::<_, ApiError>(accounts::user_by_email(conn, &email)?))
        .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    match (ok, user) {
        (true, Some(user)) => {
            state.sign_in_throttle.succeeded(&throttle_key);
            Ok(user)
        }
        _ => {
            state.sign_in_throttle.failed(&throttle_key);
            tracing::info!("sign-in refused: wrong e-mail address or password");
            Err(ApiError::BadCredentials)
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let hash = TokenHash::of(token);
        let caller = state
            .db
            .read(move |conn| Ok::<_, ApiError>(accounts::authenticate(conn, &hash)?))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        state.presence.touch(caller);
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong horse", Some(&h)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("correct horse", Some("garbage")));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 64);
        let invite = new_invitation_token();
        assert_eq!(invite.len(), 32);
        assert_ne!(invite, new_invitation_token());
        assert_eq!(TokenHash::of(&a).as_bytes(), TokenHash::of(&a).as_bytes());
        assert_ne!(TokenHash::of(&a).as_bytes(), TokenHash::of(&b).as_bytes());
    }
}
