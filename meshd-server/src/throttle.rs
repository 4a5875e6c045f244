//! Slows repeated failures per key (an account and a client address at
//! sign-in, a client address across accounts, a user accepting invitation
//! links) so that guessing runs at a crawl: a few failures are free, then
//! each further attempt waits, and the wait doubles with every failure, up
//! to [`LONGEST_WAIT`]. In memory: a restart forgets, which only ever helps
//! a legitimate user.
//!
//! Sign-in is throttled per (account, address), so that an attacker
//! guessing one account's password slows only themself and the owner's own
//! devices (other addresses) still sign in, and per address across
//! accounts, so that one password sprayed over many accounts is slowed too.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The wait after the first failure beyond the free ones.
pub const FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest wait.
pub const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// A key with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

pub struct Throttle<K> {
    free: u32,
    /// Failures per key, and when the last one was.
    failures: Mutex<HashMap<K, (u32, Instant)>>,
}

/// How long a key with `failures` failures waits after its last one.
fn wait(free: u32, failures: u32) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(31);
    FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT)
}

impl<K: Hash + Eq> Throttle<K> {
    /// A throttle that lets `free` failures of a key through before it waits.
    pub fn new(free: u32) -> Self {
        Throttle {
            free,
            failures: Mutex::default(),
        }
    }

    /// `Err(wait)` while `key` must wait before its next attempt.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let failures = self.failures.lock().expect("throttle");
        let Some((n, last)) = failures.get(key) else {
            return Ok(());
        };
        match wait(self.free, *n).checked_sub(last.elapsed()) {
            Some(left) if !left.is_zero() => Err(left),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, key: K) {
        let mut failures = self.failures.lock().expect("throttle");
        // Forget keys that have been quiet long enough, so the map stays small.
        failures.retain(|_, (_, last)| last.elapsed() < FORGET_AFTER);
        let entry = failures.entry(key).or_insert((0, Instant::now()));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
    }

    pub fn succeeded(&self, key: &K) {
        self.failures.lock().expect("throttle").remove(key);
    }
}

/// Failed sign-ins per (account, client address) and per client address.
pub struct SignInThrottle {
    account: Throttle<(String, IpAddr)>,
    address: Throttle<IpAddr>,
}

impl SignInThrottle {
    /// `per_account` free failures for an account from one address,
    /// `per_address` from one address whatever the accounts.
    pub fn new(per_account: u32, per_address: u32) -> Self {
        SignInThrottle {
            account: Throttle::new(per_account),
            address: Throttle::new(per_address),
        }
    }

    /// `Err(wait)` while a sign-in to `account` from `address` must wait.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Duration> {
        let key = (account.to_owned(), address);
        match (self.account.check(&key), self.address.check(&address)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(w), _) | (_, Err(w)) => Err(w),
        }
    }

    pub fn failed(&self, account: &str, address: IpAddr) {
        self.account.failed((account.to_owned(), address));
        self.address.failed(address);
    }

    /// A right password from `address` clears that account's failures from
    /// it, not the address's: signing in to one's own account does not buy
    /// more guesses at others.
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        self.account.succeeded(&(account.to_owned(), address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_starts_after_the_free_failures_and_doubles() {
        assert_eq!(wait(3, 0), Duration::ZERO);
        assert_eq!(wait(3, 2), Duration::ZERO);
        assert_eq!(wait(3, 3), FIRST_WAIT);
        assert_eq!(wait(3, 4), FIRST_WAIT * 2);
        assert_eq!(wait(3, 5), FIRST_WAIT * 4);
        assert_eq!(wait(3, 40), LONGEST_WAIT);
        assert_eq!(wait(3, u32::MAX), LONGEST_WAIT);
    }

    #[test]
    fn a_key_waits_after_its_free_failures_until_it_succeeds() {
        let t = Throttle::new(2);
        t.failed("a");
        assert!(t.check(&"a").is_ok());
        t.failed("a");
        let left = t.check(&"a").unwrap_err();
        assert!(left <= FIRST_WAIT && left > Duration::ZERO);
        assert!(t.check(&"b").is_ok());
        t.succeeded(&"a");
        assert!(t.check(&"a").is_ok());
    }

    #[test]
    fn sign_in_failures_slow_that_address_only() {
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let owner: IpAddr = "192.0.2.2".parse().unwrap();
        let t = SignInThrottle::new(2, 3);
        t.failed("ann", attacker);
        t.failed("ann", attacker);
        assert!(t.check("ann", attacker).is_err());
        assert!(t.check("ann", owner).is_ok());
        // Across accounts, the address's own count catches a spray.
        t.failed("bob", attacker);
        assert!(t.check("carl", attacker).is_err());
        assert!(t.check("carl", owner).is_ok());
        // The owner's success does not clear the attacker's failures.
        t.succeeded("ann", owner);
        assert!(t.check("ann", attacker).is_err());
    }
}
