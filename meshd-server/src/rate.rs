//! Requests per minute per client address on the routes strangers reach
//! (sign-in, the invitation page), whatever their outcome: a burst of the
//! minute's allowance, then one request each 1/N minute (governor's
//! generic cell rate algorithm, one timestamp per address).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::ApiError;

/// Addresses kept before those that are back to a full allowance are
/// forgotten.
const KEEP: usize = 10_000;

pub struct AddressRate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl AddressRate {
    /// `per_minute` requests a minute per address (at least one).
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        AddressRate {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts a request from `address`: `429` with the wait when it has
    /// used its allowance.
    pub fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        if self.limiter.len() > KEEP {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            tracing::info!(client = %address, "too many requests from one address");
            ApiError::TooManyRequests {
                retry_after: wait.max(Duration::from_secs(1)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_free() {
        let rate = AddressRate::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            rate.check(a).unwrap();
        }
        match rate.check(a) {
            Err(ApiError::TooManyRequests { retry_after }) => {
                assert!(retry_after <= Duration::from_secs(20), "{retry_after:?}")
            }
            other => panic!("{other:?}"),
        }
        rate.check(b).unwrap();
    }
}
