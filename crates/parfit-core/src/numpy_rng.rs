//! numpy's standard normal draws, bit for bit: what `numpy.random.default_rng(seed).standard_normal(n)` returns
//! (numpy ≥ 1.17's `Generator`), so a model written against numpy's draws (lifelib's savings examples) runs on the
//! same numbers without them being stored.
//!
//! Three parts, each numpy's algorithm written from its description:
//! - [`SeedSequence`]: the seed's 32-bit words hashed into a pool of four words, from which `generate_state`
//!   derives the generator's initial state (numpy's `SeedSequence` with no spawn key and the default pool size);
//! - [`Pcg64`]: PCG's 128-bit LCG with the XSL-RR output (numpy's `PCG64`), seeded by four 64-bit words of the
//!   seed sequence (state and increment);
//! - [`Generator::standard_normal`]: numpy's 256-layer ziggurat. One 64-bit draw gives the layer (low 8 bits),
//!   the sign (next bit) and a 52-bit magnitude; inside the layer's rectangle the value is returned at once; the
//!   base layer falls back to the tail (Marsaglia's method with `log1p` of 1 − U), the others to the wedge test
//!   against `exp(−x²/2)`. Doubles are the draw's top 53 bits over 2⁵³. The tables are numpy's (data, see
//!   `numpy_rng/ziggurat.rs`); `log1p` and `exp` are the `libm` crate's, the same on every target.
//!
//! The stream is sequential: how many 64-bit draws a normal consumes depends on its value, so draw *k* cannot be
//! reached without making the draws before it. A caller needing draws in several places makes the whole block
//! once (see [`standard_normal`]); the values never depend on threads or ranks.

mod ziggurat;

use ziggurat::{FI, KI, NOR_INV_R, NOR_R, WI};

const POOL: usize = 4;
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;

/// numpy's `SeedSequence(seed)`: the entropy pool made from a non-negative integer seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSequence {
    pool: [u32; POOL],
}

/// One step of the pool's hash: the value xor-ed with the running constant, which advances.
fn hashmix(value: u32, hash: &mut u32) -> u32 {
    let mut v = value ^ *hash;
    *hash = hash.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash);
    v ^ (v >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L.wrapping_mul(x).wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

impl SeedSequence {
    /// The pool for `seed`, whose entropy is its 32-bit words, least significant first (one word `0` for 0).
    pub fn new(seed: u64) -> SeedSequence {
        let entropy: Vec<u32> =
            if seed >> 32 == 0 { vec![seed as u32] } else { vec![seed as u32, (seed >> 32) as u32] };
        SeedSequence::from_entropy(&entropy)
    }

    /// The pool for an entropy array of 32-bit words (numpy's `SeedSequence` of a list of words below 2³²).
    pub fn from_entropy(entropy: &[u32]) -> SeedSequence {
        let mut pool = [0u32; POOL];
        let mut hash = INIT_A;
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash);
        }
        // Every word affects every other, then words beyond the pool are folded into each.
        for src in 0..POOL {
            for dst in 0..POOL {
                if src != dst {
                    let h = hashmix(pool[src], &mut hash);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        for &word in entropy.iter().skip(POOL) {
            for slot in pool.iter_mut() {
                let h = hashmix(word, &mut hash);
                *slot = mix(*slot, h);
            }
        }
        SeedSequence { pool }
    }

    /// `generate_state(n, uint32)`: `n` words hashed out of the pool, cycling through it.
    pub fn generate_state_u32(&self, n: usize) -> Vec<u32> {
        let mut hash = INIT_B;
        (0..n)
            .map(|i| {
                let mut v = self.pool[i % POOL] ^ hash;
                hash = hash.wrapping_mul(MULT_B);
                v = v.wrapping_mul(hash);
                v ^ (v >> XSHIFT)
            })
            .collect()
    }

    /// `generate_state(n, uint64)`: twice as many 32-bit words, paired low word first.
    pub fn generate_state_u64(&self, n: usize) -> Vec<u64> {
        self.generate_state_u32(2 * n).chunks_exact(2).map(|w| u64::from(w[0]) | u64::from(w[1]) << 32).collect()
    }
}

/// PCG's default 128-bit multiplier.
const PCG_MULT: u128 = (2_549_297_995_355_413_924u128 << 64) | 4_865_540_595_714_422_341u128;

/// numpy's `PCG64` bit generator: a 128-bit LCG whose 64-bit output is the xor of the state's halves rotated right
/// by its top six bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
}

impl Pcg64 {
    /// Seeded as numpy seeds it from a seed sequence: four 64-bit words, the first pair the initial state and the
    /// second the stream (each pair's first word the high half).
    pub fn from_seed_sequence(seq: &SeedSequence) -> Pcg64 {
        let w = seq.generate_state_u64(4);
        let state = (u128::from(w[0]) << 64) | u128::from(w[1]);
        let stream = (u128::from(w[2]) << 64) | u128::from(w[3]);
        let mut rng = Pcg64 { state: 0, inc: (stream << 1) | 1 };
        rng.step();
        rng.state = rng.state.wrapping_add(state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// The next 64-bit output (numpy's `random_raw`): the state advances, then the new state is output.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let (hi, lo) = ((self.state >> 64) as u64, self.state as u64);
        (hi ^ lo).rotate_right((self.state >> 122) as u32)
    }

    /// A double in [0, 1): the top 53 bits of the next output over 2⁵³.
    pub fn next_double(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// numpy's `Generator(PCG64(SeedSequence(seed)))`, i.e. `numpy.random.default_rng(seed)`, for normal draws.
#[derive(Debug, Clone)]
pub struct Generator {
    bits: Pcg64,
}

impl Generator {
    /// `numpy.random.default_rng(seed)` for a non-negative integer seed.
    pub fn default_rng(seed: u64) -> Generator {
        Generator { bits: Pcg64::from_seed_sequence(&SeedSequence::new(seed)) }
    }

    /// The bit generator, e.g. for raw outputs.
    pub fn bits(&mut self) -> &mut Pcg64 {
        &mut self.bits
    }

    /// The next standard normal draw.
    pub fn standard_normal(&mut self) -> f64 {
        loop {
            let r = self.bits.next_u64();
            let layer = (r & 0xff) as usize;
            let r = r >> 8;
            let negative = r & 1 == 1;
            let magnitude = (r >> 1) & 0x000f_ffff_ffff_ffff;
            let x = magnitude as f64 * WI[layer];
            let x = if negative { -x } else { x };
            if magnitude < KI[layer] {
                return x;
            }
            if layer == 0 {
                // The tail beyond r: 1 − U keeps log1p's argument above −1. Its sign is another bit of the draw.
                loop {
                    let xx = -NOR_INV_R * crate::math::ln_1p(-self.bits.next_double());
                    let yy = -crate::math::ln_1p(-self.bits.next_double());
                    if yy + yy > xx * xx {
                        return if (magnitude >> 8) & 1 == 1 { -(NOR_R + xx) } else { NOR_R + xx };
                    }
                }
            }
            // The wedge between this layer's rectangle and the curve.
            let u = self.bits.next_double();
            if (FI[layer - 1] - FI[layer]) * u + FI[layer] < crate::math::exp(-0.5 * x * x) {
                return x;
            }
        }
    }

    /// Fill `out` with successive standard normal draws (numpy's `standard_normal(out.len())`, row-major for any
    /// shape of the same size).
    pub fn fill_standard_normal(&mut self, out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = self.standard_normal());
    }
}

/// `numpy.random.default_rng(seed).standard_normal(count)`, with the size checked against the memory limit before
/// anything is allocated (`what` names the request in the error).
pub fn standard_normal(what: &str, seed: u64, count: usize) -> Result<Vec<f64>, String> {
    crate::limits::check_allocation(what, count as f64, 8.0)?;
    let mut out = vec![0.0; count];
    Generator::default_rng(seed).fill_standard_normal(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// numpy's values for several seeds (numpy_checks.csv, made by numpy_checks.py with numpy itself).
    #[test]
    fn matches_numpys_own_values() {
        let text = include_str!("numpy_rng/numpy_checks.csv");
        let mut streams: Vec<(u64, Generator, usize)> = vec![];
        let mut checked = std::collections::BTreeMap::<&str, usize>::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let (kind, seed, index) = (f[0], f[1].parse::<u64>().unwrap(), f[2].parse::<usize>().unwrap());
            let int = || f[3].parse::<u64>().unwrap();
            let float = || f[3].parse::<f64>().unwrap();
            let seq = SeedSequence::new(seed);
            match kind {
                "seed_u32" => assert_eq!(u64::from(seq.generate_state_u32(8)[index]), int(), "{line}"),
                "state_u64" => assert_eq!(seq.generate_state_u64(4)[index], int(), "{line}"),
                "raw" => {
                    let mut g = Pcg64::from_seed_sequence(&seq);
                    let v = (0..=index).map(|_| g.next_u64()).last().unwrap();
                    assert_eq!(v, int(), "{line}");
                }
                "double" => {
                    let mut g = Generator::default_rng(seed);
                    let v = (0..=index).map(|_| g.bits().next_double()).last().unwrap();
                    assert_eq!(v.to_bits(), float().to_bits(), "{line}");
                }
                "normal" | "tail" => {
                    // One stream per seed, drawn forward to each index in turn (the rows are in stream order).
                    if kind == "normal" && index == 0 {
                        streams.push((seed, Generator::default_rng(seed), 0));
                    }
                    let (s, g, next) = streams.last_mut().unwrap();
                    assert_eq!(*s, seed);
                    assert!(index >= *next, "{line}: rows out of stream order");
                    let v = (*next..=index).map(|_| g.standard_normal()).last().unwrap();
                    *next = index + 1;
                    assert_eq!(v.to_bits(), float().to_bits(), "{line}: {v:e}");
                    if kind == "tail" {
                        assert!(v.abs() > NOR_R, "{line}");
                    }
                }
                other => panic!("unknown kind {other}"),
            }
            *checked.entry(kind).or_default() += 1;
        }
        // Five seeds (one of them above 2^32, two words of entropy); over a thousand draws; the tail's fallback.
        assert_eq!(checked["seed_u32"], 40);
        assert_eq!(checked["normal"], 1500);
        assert!(checked["tail"] > 200, "{checked:?}");
    }

    /// lifelib's savings examples draw `default_rng(1234).standard_normal(10_000 * 242)` (EX1, EX2) and the first
    /// 1,000 × 242 of the same stream (EX4); their goldens keep the SHA-256 of the draws as little-endian doubles.
    #[test]
    fn lifelibs_draws_hash_to_the_goldens_checksums() {
        let ex1 = include_str!("../../../examples/lifelib/cashvalue_me_ex1/std_norm_rand_check.csv");
        let ex4 = include_str!("../../../examples/lifelib/cashvalue_me_ex4/std_norm_rand_check.csv");
        let draws = standard_normal("draws", 1234, 2_420_000).unwrap();
        for (check, n) in [(ex1, 2_420_000), (ex4, 242_000)] {
            let f: Vec<&str> = check.lines().nth(1).unwrap().split(',').collect();
            assert_eq!(f[1].parse::<usize>().unwrap(), n);
            let bytes: Vec<u8> = draws[..n].iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(sha256_hex(&bytes), f[2]);
            assert_eq!(draws[0], f[3].parse::<f64>().unwrap());
            assert_eq!(draws[n - 1], f[4].parse::<f64>().unwrap());
        }
    }

    /// The SHA-256 of the draws as lifelib's goldens record it (hex).
    fn sha256_hex(data: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn seed_words_follow_numpys_integer_coercion() {
        assert_eq!(SeedSequence::new(1234), SeedSequence::from_entropy(&[1234]));
        assert_eq!(SeedSequence::new(0), SeedSequence::from_entropy(&[0]));
        assert_eq!(SeedSequence::new((7 << 32) | 5), SeedSequence::from_entropy(&[5, 7]));
        assert_ne!(SeedSequence::new(1), SeedSequence::new(2));
    }

    #[test]
    fn a_size_beyond_memory_is_refused_before_allocating() {
        let e = standard_normal("draws", 1, usize::MAX / 2).unwrap_err();
        assert!(e.contains("draws"), "{e}");
    }
}
