//! Randomness: SplitMix64, weighted choices, and stable ids derived from
//! names (see the module documentation of `gen` for why it is hand-written).

pub(super) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer, also used to
/// derive stable identifiers (access keys, resource ids) from names.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea and Flood, 2014), written here rather than taken
/// from `rand`: `StdRng` explicitly may change its algorithm between
/// versions, and this generator's output must never change for a seed
/// (benchmarks, tests and demos compare runs).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below n / 2^64).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `ppm` / 1,000,000.
    pub(super) fn chance(&mut self, ppm: u64) -> bool {
        self.below(1_000_000) < ppm
    }

    /// An index below `n` skewed towards 0 (P(i) ~ ln(n / i) / n): pools of
    /// resources where a few are much busier than the rest.
    pub(super) fn skew(&mut self, n: usize) -> usize {
        let m = self.below(n as u64) + 1;
        self.below(m) as usize
    }
}

/// A weighted choice among items, by binary search over cumulative weights.
pub(super) struct Weighted {
    cum: Vec<u32>,
    pub(super) items: Vec<u16>,
}

impl Weighted {
    pub(super) fn new(pairs: impl IntoIterator<Item = (usize, u32)>) -> Self {
        let (mut cum, mut items, mut total) = (Vec::new(), Vec::new(), 0u32);
        for (i, w) in pairs {
            if w > 0 {
                total = total.checked_add(w).expect("generator weights sum past u32::MAX (a table's weights are too large)");
                cum.push(total);
                items.push(i as u16);
            }
        }
        Self { cum, items }
    }

    pub(super) fn pick(&self, rng: &mut Rng) -> usize {
        let total = self.cum.last().copied().unwrap_or(0);
        let r = rng.below(u64::from(total)) as u32;
        let i = self.cum.partition_point(|&c| c <= r);
        self.items.get(i).copied().unwrap_or(0) as usize
    }
}

/// A stable 64-bit hash of (account, name): the seed of a principal's ids.
pub(super) fn ident_hash(acct: usize, name: &str) -> u64 {
    // FNV-1a, then the mixer for avalanche.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ acct as u64;
    for &b in name.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// A stable resource id seed for (kind, account, index).
pub(super) fn id64(kind: u8, acct: usize, idx: u64) -> u64 {
    mix((u64::from(kind) << 56 ^ (acct as u64) << 48 ^ idx).wrapping_mul(GOLDEN))
}
