//! An account's second factor: time-based one-time codes (RFC 6238,
//! `totp-rs`) as authenticator apps make them — HMAC-SHA-1, 6 digits, 30 s
//! steps, one step of clock skew either way — and the single-use recovery
//! codes that stand in for a lost app. The secret is 160 random bits; the
//! recovery codes (50 random bits each) are kept only as BLAKE3 hashes,
//! like device tokens. What is stored, and the rule that no step is
//! accepted twice, is `store::totp`'s.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};

use crate::auth::TokenHash;

/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "Mesh";
/// Seconds a code stands for.
const STEP: u64 = 30;
const DIGITS: u8 = 6;
/// Steps either side of now whose codes are still taken (a clock that is
/// a little off, a code typed as it changed).
const SKEW: u64 = 1;
/// Recovery codes made at once.
const RECOVERY_CODES: usize = 10;
/// The characters of a recovery code: lower-case letters and digits
/// without the ones easily mistaken for others (i, l, o, u).
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RECOVERY_LEN: usize = 10;

/// A new second factor for an account, before it is stored.
pub struct NewKey {
    /// 160 random bits, as RFC 4226 recommends.
    pub secret: Vec<u8>,
    /// The link an authenticator app adds the account from.
    pub uri: String,
    /// The recovery codes, to be shown once…
    pub recovery_codes: Vec<String>,
    /// …and kept only as these hashes.
    pub recovery_hashes: Vec<[u8; 32]>,
}

impl NewKey {
    /// A new key and recovery codes for `account` (its e-mail address).
    pub fn generate(account: &str) -> anyhow::Result<NewKey> {
        let secret = new_secret();
        let uri = uri(&secret, account)?;
        let recovery_codes = new_recovery_codes();
        let recovery_hashes = recovery_codes
            .iter()
            .map(|c| stored_recovery_hash(c))
            .collect();
        Ok(NewKey {
            secret,
            uri,
            recovery_codes,
            recovery_hashes,
        })
    }
}

/// A secret as authenticator apps take it typed: base32 (RFC 4648).
pub fn base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> anyhow::Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP)
        .with_skew(0)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| anyhow::anyhow!("making the authenticator key: {e}"))
}

/// The `otpauth://totp/Mesh:ACCOUNT?secret=…&issuer=Mesh` URI an
/// authenticator app adds the account from.
fn uri(secret: &[u8], account: &str) -> anyhow::Result<String> {
    totp(secret, account)?
        .to_url()
        .map_err(|e| anyhow::anyhow!("making the authenticator link for {account}: {e}"))
}

/// What a second factor someone typed is.
#[derive(Debug, PartialEq, Eq)]
pub enum Code {
    /// Six digits: a code of the authenticator app.
    Totp(String),
    /// Anything else: maybe a recovery code, by its hash.
    Recovery([u8; 32]),
}

impl Code {
    /// Reads a typed code: spaces and dashes do not matter, nor case.
    pub fn parse(typed: &str) -> Code {
        let plain: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        if plain.len() == usize::from(DIGITS) && plain.bytes().all(|b| b.is_ascii_digit()) {
            Code::Totp(plain)
        } else {
            Code::Recovery(recovery_hash(&plain))
        }
    }
}

/// The step of the code `code` among now's and the `SKEW` steps either
/// side of it, later than `after` (the last step accepted, never accepted
/// twice); `None` when it matches none of them.
pub fn matching_step(secret: &[u8], code: &str, now_secs: u64, after: Option<u64>) -> Option<u64> {
    // Checking needs no account name; the secret is what counts.
    let totp = totp(secret, "check").ok()?;
    let now = now_secs / STEP;
    (now.saturating_sub(SKEW)..=now + SKEW)
        .filter(|step| after.is_none_or(|last| *step > last))
        .find(|step| totp.check(code, step * STEP).is_some())
}

/// `RECOVERY_CODES` new recovery codes, `xxxxx-xxxxx`.
fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: String = (0..RECOVERY_LEN)
                .map(|_| char::from(RECOVERY_ALPHABET[(rng.next_u32() % 32) as usize]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The hash a recovery code is stored under, of its plain form (no dash,
/// lower case).
fn recovery_hash(plain: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(TokenHash::of(plain).as_bytes());
    out
}

/// The hash of a recovery code as [`new_recovery_codes`] shows it.
fn stored_recovery_hash(code: &str) -> [u8; 32] {
    match Code::parse(code) {
        Code::Recovery(hash) => hash,
        // A recovery code is never six digits alone.
        Code::Totp(digits) => recovery_hash(&digits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 test vectors (appendix B), cut to six digits.
    #[test]
    fn codes_are_rfc_6238_s() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(matching_step(secret, code, time, None), Some(time / STEP));
        }
    }

    #[test]
    fn a_code_is_taken_one_step_either_side_and_never_twice() {
        let secret = new_secret();
        let t = totp(&secret, "a").unwrap();
        let now = 1_800_000_000;
        let code = t.generate(now).to_string();
        let step = now / STEP;
        assert_eq!(matching_step(&secret, &code, now, None), Some(step));
        assert_eq!(matching_step(&secret, &code, now + STEP, None), Some(step));
        assert_eq!(matching_step(&secret, &code, now - STEP, None), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 2 * STEP, None), None);
        assert_eq!(matching_step(&secret, &code, now, Some(step)), None);
        assert_eq!(
            matching_step(&secret, &code, now, Some(step - 1)),
            Some(step)
        );
        assert_eq!(matching_step(&new_secret(), &code, now, None), None);
        assert_eq!(matching_step(&secret, "12345", now, None), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account() {
        let uri = uri(b"12345678901234567890", "ann@example.org").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Mesh:ann%40example.org?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Mesh"), "{uri}");
        let back = Totp::from_url(&uri).unwrap();
        assert_eq!(back.secret().as_bytes(), b"12345678901234567890");
    }

    #[test]
    fn recovery_codes_are_random_and_read_however_typed() {
        let key = NewKey::generate("ann@example.org").unwrap();
        let codes = key.recovery_codes;
        assert_eq!(key.recovery_hashes.len(), RECOVERY_CODES);
        assert_eq!(key.recovery_hashes[0], stored_recovery_hash(&codes[0]));
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        let hash = stored_recovery_hash(code);
        assert_eq!(Code::parse(code), Code::Recovery(hash));
        assert_eq!(Code::parse(&code.to_uppercase()), Code::Recovery(hash));
        assert_eq!(Code::parse(&code.replace('-', "")), Code::Recovery(hash));
        assert_eq!(Code::parse(&format!(" {code}\n")), Code::Recovery(hash));
        assert_eq!(Code::parse("123 456"), Code::Totp("123456".into()));
    }
}
