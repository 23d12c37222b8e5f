//! A tiny deterministic random number generator (SplitMix64).
//!
//! The core needs randomness only to spread election timeouts, and it must be reproducible in the
//! simulator, so the caller passes a seed and the core draws from this generator. It is not for
//! anything secret.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), with negligible bias for the small bounds used here.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// The draws only the simulator makes. They are compiled for tests alone, so that a release build
/// carries no unused code.
#[cfg(any(test, doc))]
impl Rng {
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi, "{lo}..={hi}");
        lo + self.below(hi - lo + 1)
    }

    /// A duration in `lo..=hi`, to the microsecond.
    pub fn duration(
        &mut self,
        lo: std::time::Duration,
        hi: std::time::Duration,
    ) -> std::time::Duration {
        let lo_us = lo.as_micros() as u64;
        let hi_us = hi.as_micros() as u64;
        std::time::Duration::from_micros(self.between(lo_us, hi_us))
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
