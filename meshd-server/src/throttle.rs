//! Limits repeated failures per key (an e-mail address at sign-in), so a
//! password cannot be guessed at network speed. In memory: a restart
//! forgets, which only ever helps a legitimate user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Throttle {
            max_failures,
            window,
            failures: Mutex::default(),
        }
    }

    /// `Err(wait)` while `key` has failed too often within the window.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let failures = self.failures.lock().expect("throttle");
        match failures.get(key) {
            Some((n, since)) if *n >= self.max_failures && since.elapsed() < self.window => {
                Err(self.window - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, key: &str) {
        let mut failures = self.failures.lock().expect("throttle");
        // Forget windows that have passed, so the map stays small.
        failures.retain(|_, (_, since)| since.elapsed() < self.window);
        let entry = failures
            .entry(key.to_owned())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("throttle").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_too_many_failures_until_the_window_passes() {
        let t = Throttle::new(2, Duration::from_millis(200));
        t.failed("a");
        assert!(t.check("a").is_ok());
        t.failed("a");
        assert!(t.check("a").is_err());
        assert!(t.check("b").is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.check("a").is_ok());
        t.failed("b");
        t.succeeded("b");
        t.failed("b");
        assert!(t.check("b").is_ok());
    }
}
