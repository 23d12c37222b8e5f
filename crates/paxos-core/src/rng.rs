//! A tiny deterministic random number generator (SplitMix64).
//!
//! The core needs randomness only to spread election timeouts, and it must be reproducible in the
//! simulator, so the caller passes a seed and the core draws from this generator. The simulator
//! draws its runs from it too, and so does the nemesis runner in `paxos-tests` (through the
//! `check` feature, which makes this module public), so that one generator serves every seeded
//! run. It is not for anything secret.

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

/// The draws only the simulator and the nemesis runner make. They are compiled for them alone,
/// so that a release build of a server carries no unused code.
#[cfg(any(test, doc, feature = "check"))]
impl Rng {
    /// Stream `stream` of the run seeded with `seed`: a generator of its own for each thread or
    /// client of a run, so that no one's draws depend on another's timing, while the one seed
    /// still repeats them all.
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03));
        // The first draw of nearby seeds is alike; skip it.
        rng.next_u64();
        rng
    }

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

    /// A position in a collection of `len` items (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
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

    /// A whole number of milliseconds in `range` (the start alone if the range is empty).
    pub fn millis(&mut self, range: std::ops::Range<u64>) -> std::time::Duration {
        let span = range.end.saturating_sub(range.start).max(1);
        std::time::Duration::from_millis(range.start + self.next_u64() % span)
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}
