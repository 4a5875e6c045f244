//! Counted slots per key: at most so many held at once for each key (open
//! connections per client address, open event streams per device). A
//! [`Slot`] is given back when it is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct Slots<K> {
    max: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One slot of `key`, held until dropped.
pub struct Slot<K: Hash + Eq> {
    slots: Arc<Slots<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            max,
            held: Mutex::default(),
        })
    }

    /// The most slots one key may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot of `key`, or `None` when it holds `max` already.
    pub fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut held = self.held.lock().expect("slots");
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().expect("slots");
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_holds_at_most_max_until_one_is_given_back() {
        let slots = Slots::new(2);
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        let _b = slots.take("b").unwrap();
        drop(a1);
        let _a3 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        drop((_a2, _a3, _b));
        assert!(
            slots.held.lock().unwrap().is_empty(),
            "no key is kept once free"
        );
    }
}
