//! Who is calling: password hashing (argon2) for accounts, bearer tokens for
//! devices (random, shown once, stored only as a BLAKE3 hash), and the
//! extractor that turns `Authorization: Bearer …` into a [`Caller`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use mesh_protocol::api::{DeviceId, UserId};
use rand::RngCore;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts;

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

/// A new device token: `mesh_` and 256 random bits in hexadecimal.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("mesh_{}", mesh_protocol::folder::to_hex(&bytes))
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
        assert_eq!(TokenHash::of(&a).as_bytes(), TokenHash::of(&a).as_bytes());
        assert_ne!(TokenHash::of(&a).as_bytes(), TokenHash::of(&b).as_bytes());
    }
}
