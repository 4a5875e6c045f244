//! Seeded randomness for the random-operation tests: a small, fast
//! generator whose seed is printed, so that a failing run can be repeated
//! with `MESHFS_SEED`.

/// A xorshift64* generator. The same seed gives the same sequence on
/// every machine.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded from `MESHFS_SEED` when it is set (a decimal
    /// number; anything else panics, naming it), else from the clock. The
    /// seed is printed as `WHAT: MESHFS_SEED=N`.
    pub fn from_env(what: &str) -> (Rng, u64) {
        let seed = match std::env::var("MESHFS_SEED") {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("MESHFS_SEED must be a decimal number, not {text:?}")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is after 1970")
                .as_nanos() as u64,
        };
        eprintln!("{what}: MESHFS_SEED={seed}");
        (Rng::new(seed), seed)
    }

    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        // Spread the seed so that nearby seeds give unrelated sequences
        // (and 0 is a valid seed).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng {
            state: (z ^ (z >> 31)) | 1,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next_u64() % n
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One element of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_repeats_its_sequence_and_numbers_stay_below_the_bound() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let first: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        let again: Vec<u64> = (0..100).map(|_| b.below(10)).collect();
        assert_eq!(first, again);
        assert!(first.iter().all(|&n| n < 10));
        assert!((0..10).all(|n| first.contains(&n)), "{first:?}");
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }
}
