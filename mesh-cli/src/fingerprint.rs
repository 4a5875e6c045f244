//! A TLS certificate's SHA-256 fingerprint, as `meshd` prints it and
//! `meshfs login --fingerprint` takes it: 32 bytes written as upper-case
//! hex pairs joined by colons (`AB:01:…`); read back with or without the
//! colons, in either case.

use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

/// A fingerprint that is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a SHA-256 fingerprint: give 64 hex digits, with or without colons (AB:01:…)")]
pub struct BadFingerprint(String);

impl Fingerprint {
    /// The fingerprint of the certificate `der`.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadFingerprint(s.to_owned());
        let digits: Vec<u8> = s.trim().bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_with_or_without_colons() {
        let f = Fingerprint::of(b"certificate");
        let shown = f.to_string();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert_eq!(shown.parse::<Fingerprint>().unwrap(), f);
        let bare = shown.replace(':', "").to_lowercase();
        assert_eq!(bare.parse::<Fingerprint>().unwrap(), f);
    }

    #[test]
    fn anything_but_64_hex_digits_is_refused() {
        for bad in [
            "",
            "AB:CD",
            &"G".repeat(64),
            &"A".repeat(66),
            &"+1".repeat(32),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?}");
        }
    }
}
