//! `exp`, `ln` and `pow` of f64, table-driven, in plain f64 arithmetic (no fused multiply-add, no platform
//! function), so every target computes the same bits; about 0.51 ULP for `exp` and `ln` and 0.52 for `pow`.
//!
//! # Method
//!
//! **exp** (Tang's table-driven method, P. T. P. Tang, "Table-driven implementation of the exponential function
//! in IEEE floating-point arithmetic", ACM TOMS 15(2), 1989; the same reduction as ARM's optimized-routines and
//! glibc ≥ 2.28, Szabolcs Nagy, 2018). With `N = 128` and `k` the integer nearest to `x·N/ln 2`,
//! `x = k·ln2/N + r` with `|r| ≤ ln2/(2N)`, and `e^x = 2^(k div N) · 2^((k mod N)/N) · e^r`. `ln2/N` is held as
//! `hi + lo` with `hi` short enough (35 bits) that `k·hi` and `x − k·hi` are exact. The table holds
//! `2^(j/N)` rounded (its bits, so that adding `(k div N) << 52` to them makes the scale without a multiply)
//! and the rounding's relative error `τ_j`; `e^r − 1` is its Taylor polynomial of degree 5 (the first omitted
//! term is below 2^-60 of the result). The result is `s + s·(τ_j + p(r))`, one rounding after a sum whose
//! error is about 2^-60, so about 0.51 ULP.
//!
//! **ln** (Tang, "Table-driven implementation of the logarithm function in IEEE floating-point arithmetic", ACM
//! TOMS 16(4), 1990; the subinterval and exact-reduction scheme of ARM's optimized-routines). `x = 2^k·z` with
//! `z` in `[0.6875, 1.375)`; the top 7 bits of `z`'s representation pick one of 128 subintervals with centre
//! `c`, and the table holds `1/c` rounded to 12 bits and `ln c = −ln(1/c)` to 106 bits (`hi + lo`); the two
//! subintervals next to 1 use `c = 1`. `r = z·(1/c) − 1` is made exactly, as a sum of two doubles: `z` is
//! split into its leading 21 bits (rounded) and the rest, and each part times the 12-bit `1/c` is exact; the top part's
//! `r_hi` has at most 26 bits, so `r_hi²` is exact too. Then
//! `ln x = k·ln2 + ln c + r − r²/2 + r³·P(r)` with `|r| ≤ 2^-7` and `P` the Taylor coefficients of
//! `ln(1 + r)` up to `r^10`; the large terms are summed with exact two-sums (Knuth, Dekker) and the small ones
//! in plain f64, giving `ln x` as `hi + lo` within about 2^-68 relative, for `pow`. `ln` itself takes the same
//! reduction with a lighter sum (`−r²/2` inside the polynomial, which stops at `r^9`; about 2^-60 before its
//! one rounding).
//!
//! **pow** `x^y = e^(y·ln x)` with `ln x` in double-double (the approach of glibc ≥ 2.28 / optimized-routines).
//! `y` and `ln x`'s `hi` are each cut to 26 bits so `y_hi · l_hi` is exact, and the rest of the product is
//! added as the tail `t`; `e^(h + t)` is the exp above with `t` folded into `r`. The error of `y·ln x` is below
//! `|y ln x| · 2^-68`, at most 2^-58 relative in the result, so `pow` stays about 0.52 ULP.
//!
//! # The rare cases
//!
//! Everything outside the fast paths goes to the `libm` crate (musl's functions, correct for every IEEE / C99
//! special case), which is as deterministic as the rest: `exp` for `|x| ≥ 708` and NaN (overflow, subnormal
//! results); `ln` for zero, negative, infinite and NaN arguments (subnormal ones are scaled and stay here);
//! `pow` for `x` that is zero, subnormal, infinite, NaN or negative with a non-integer `y`, for `y` that is zero,
//! infinite, NaN, below 2^-65 or at least 2^63 in magnitude, and when `|y·ln x| ≥ 708` (overflow, underflow,
//! subnormal results).
//!
//! # The tables
//!
//! `tables.rs` is generated: the test `the_tables_are_the_generators` computes them in double-double
//! (`dd.rs`: `2^(j/N)` by the Taylor series of `e^(j·ln2/N)`, `ln(1/c)` by the series of `2·atanh`), prints the
//! file, and fails if the committed one differs (`PARFIT_WRITE_MATH_TABLES=1` rewrites it). Constant tables
//! cost nothing at run time, where tables built at first use would need a once-check on every call; the
//! generator running as a test on every target keeps them honest.

#![allow(clippy::disallowed_methods)]

use super::tables::{EXP_TABLE, LN2_HI, LN2_LO, LOG_TABLE};

/// `N / ln 2` for the exp reduction (`N = 128`); only rounds `k`, so its own rounding does not matter.
const INV_LN2_N: f64 = 184.664_965_233_787_3;
/// `ln2/N`, split: `k · LN2_N_HI` is exact for `|k| < 2^18`.
const LN2_N_HI: f64 = LN2_HI / 128.0;
const LN2_N_LO: f64 = LN2_LO / 128.0;
/// Adding and subtracting `1.5 · 2^52` rounds a double of magnitude below 2^51 to the nearest integer.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// The exp fast path: `|x| < 708` keeps the scale `2^(k div N)` and the result normal.
const EXP_LIMIT: f64 = 708.0;

/// Taylor coefficients of `e^r − 1` after `r`.
const E2: f64 = 0.5;
const E3: f64 = 1.0 / 6.0;
const E4: f64 = 1.0 / 24.0;
const E5: f64 = 1.0 / 120.0;

/// Taylor coefficients of `ln(1 + r)` from `r³` on.
const L3: f64 = 1.0 / 3.0;
const L4: f64 = -0.25;
const L5: f64 = 0.2;
const L6: f64 = -1.0 / 6.0;
const L7: f64 = 1.0 / 7.0;
const L8: f64 = -0.125;
const L9: f64 = 1.0 / 9.0;
const L10: f64 = -0.1;

/// The representation of `0.6875`: `z = x / 2^k` lands in `[0.6875, 1.375)`.
const LOG_OFF: u64 = 0x3FE6_0000_0000_0000;

/// `a + b` and its rounding error, exact when `a` is zero or its exponent is at least `b`'s (Dekker).
#[inline(always)]
fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// `a + b` and its rounding error, exact whatever the magnitudes (Knuth).
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `e^x`.
#[inline]
pub fn exp(x: f64) -> f64 {
    // NaN fails the comparison too.
    if x.abs() < EXP_LIMIT {
        return exp_core(x, 0.0, x);
    }
    exp_rare(x)
}

/// `e^(hi + lo)` for `|hi| < 708` and `|lo|` below about `2^-14 |hi|`; `whole` is `hi + lo` rounded.
#[inline(always)]
fn exp_core(hi: f64, lo: f64, whole: f64) -> f64 {
    // `z + ROUND` has the integer nearest to `z` in its low bits: `k` from them, `kd` as a double.
    let shifted = whole * INV_LN2_N + ROUND;
    let k = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    let kd = shifted - ROUND;
    // `hi − k·LN2_N_HI` is exact (the product is, and is 0 or within a factor of 2 of `hi`).
    let r = (hi - kd * LN2_N_HI) + (lo - kd * LN2_N_LO);
    // In bounds whatever `k`: the table has 128 entries.
    let (bits, tail) = EXP_TABLE[(k & 127) as usize];
    let scale = f64::from_bits(bits.wrapping_add(((k >> 7) as u64) << 52));
    let r2 = r * r;
    let p = r + r2 * (E2 + r * E3) + (r2 * r2) * (E4 + r * E5);
    scale + scale * (tail + p)
}

/// `x = 2^k · z` reduced by the table entry `c` nearest `z`: `ln x = k·ln 2 + ln c + ln(1 + r)`, `r = z/c − 1`
/// carried as `r_hi + r_lo`.
struct Reduced {
    kd: f64,
    logc_hi: f64,
    logc_lo: f64,
    r_hi: f64,
    r_lo: f64,
}

/// The reduction of `ix`, the representation of a positive normal double, times `2^k_extra`.
#[inline(always)]
fn reduce(ix: u64, k_extra: i64) -> Reduced {
    let t = ix.wrapping_sub(LOG_OFF);
    // In bounds whatever `t`: the table has 128 entries.
    let (invc, logc_hi, logc_lo) = LOG_TABLE[((t >> 45) & 127) as usize];
    let kd = (((t as i64) >> 52) + k_extra) as f64;
    let iz = ix.wrapping_sub(t & (0xFFF << 52));
    let z = f64::from_bits(iz);
    // `z` rounded to 21 bits: the rest is at most half of `z_hi`'s last bit, so when `c = 1` the exact `r` is
    // at least half of `r_hi` (or is `r_lo` alone) and the sums below cannot cancel.
    let z_hi = f64::from_bits((iz + (1 << 31)) & !0xFFFF_FFFF);
    // Both exact: 21 × 12 and 32 × 12 bits, and the subtraction of 1 by Sterbenz's lemma.
    Reduced { kd, logc_hi, logc_lo, r_hi: z_hi * invc - 1.0, r_lo: (z - z_hi) * invc }
}

/// `ln x` as `hi + lo` (`|lo|` below about `2^-25 |hi|`, not normalised) for `ix`, the representation of a positive normal double, times `2^k_extra`.
#[inline(always)]
fn ln_core(ix: u64, k_extra: i64) -> (f64, f64) {
    let Reduced { kd, logc_hi, logc_lo, r_hi, r_lo } = reduce(ix, k_extra);
    // `r_hi` has at most 26 bits, so `q = −r_hi²/2` is exact.
    let q = -0.5 * r_hi * r_hi;

    // The large terms, each sum exact: `k·LN2_HI` is exact (11 × 35 bits) and outweighs `ln c`, or is 0;
    // `ln c` outweighs `r_hi` (or `c = 1`); the sum so far outweighs `q`; `r_lo` may outweigh anything.
    let (t1, e1) = fast_two_sum(kd * LN2_HI, logc_hi);
    let (t2, e2) = fast_two_sum(t1, r_hi);
    let (t3, e3) = fast_two_sum(t2, q);
    let (t4, e4) = two_sum(t3, r_lo);

    // The small terms: the rest of −r²/2, whose exact value is q − r_lo·(r_hi + r_lo/2), and r³·P(r).
    let r = r_hi + r_lo;
    let r2 = r * r;
    let poly = (r2 * r) * ((L3 + r * L4) + r2 * (L5 + r * L6) + (r2 * r2) * ((L7 + r * L8) + r2 * (L9 + r * L10)));
    // Summed as a tree, so the terms known early do not wait for the polynomial.
    let early = ((kd * LN2_LO + logc_lo) + (e1 + e2)) + (e3 - r_lo * (r_hi + 0.5 * r_lo));
    (t4, early + (e4 + poly))
}

/// The natural logarithm.
#[inline]
pub fn ln(x: f64) -> f64 {
    let ix = x.to_bits();
    // Positive normal and finite: the top 12 bits in 0x001..=0x7FE.
    if ix.wrapping_sub(0x0010_0000_0000_0000) < 0x7FE0_0000_0000_0000 {
        return ln_rounded(ix, 0);
    }
    if ix != 0 && ix < 0x0010_0000_0000_0000 {
        // Positive subnormal: scaled by 2^64 into the normal range, exactly.
        return ln_rounded((x * f64::from_bits((1023 + 64) << 52)).to_bits(), -64);
    }
    ln_rare(x)
}

/// `ln x` rounded, for `ix` as in `ln_core`: the same reduction with the lighter sum a single result needs
/// (error about 2^-60 before the last rounding): `r²/2` goes into the polynomial, which stops at `r^9`.
#[inline(always)]
fn ln_rounded(ix: u64, k_extra: i64) -> f64 {
    let Reduced { kd, logc_hi, logc_lo, r_hi, r_lo } = reduce(ix, k_extra);
    let (t1, e1) = fast_two_sum(kd * LN2_HI, logc_hi);
    let (t2, e2) = fast_two_sum(t1, r_hi);
    let (t3, e3) = two_sum(t2, r_lo);
    let r = r_hi + r_lo;
    let r2 = r * r;
    let poly = r2 * ((-0.5 + r * L3) + r2 * (L4 + r * L5) + (r2 * r2) * ((L6 + r * L7) + r2 * (L8 + r * L9)));
    t3 + (((kd * LN2_LO + logc_lo) + (e1 + e2)) + (e3 + poly))
}

/// `x^y`.
#[inline]
pub fn pow(x: f64, y: f64) -> f64 {
    let (ix, iy) = (x.to_bits(), y.to_bits());
    // `|y|` in `[2^-65, 2^63)`: the exponent field in `0x3FF − 65 ..= 0x3FF + 62`.
    let y_ok = ((iy >> 52) & 0x7FF).wrapping_sub(0x3FF - 65) < 128;
    let x_normal = (ix & !(1 << 63)).wrapping_sub(0x0010_0000_0000_0000) < 0x7FE0_0000_0000_0000;
    if !(y_ok && x_normal) {
        return pow_rare(x, y);
    }
    let mut negate = false;
    if ix >> 63 != 0 {
        // A negative base needs a whole exponent; an odd one keeps the sign.
        if y.trunc() != y {
            return pow_rare(x, y);
        }
        negate = y.abs() < 9_007_199_254_740_992.0 && (y as i64) & 1 == 1;
    }
    let (l_hi, l_lo) = ln_core(ix & !(1 << 63), 0);
    // 26-bit halves: `y_hi · l_top` is exact, and `y_lo · l_top` (27 × 26 bits) too.
    let y_hi = f64::from_bits(iy & !0x7FF_FFFF);
    let y_lo = y - y_hi;
    let l_top = f64::from_bits(l_hi.to_bits() & !0x7FF_FFFF);
    let l_rest = l_lo + (l_hi - l_top);
    let e_hi = y_hi * l_top;
    let e_lo = y_lo * l_top + y * l_rest;
    // Never NaN: `x` and `y` are finite here.
    if e_hi.abs() >= EXP_LIMIT {
        return pow_rare(x, y);
    }
    let v = exp_core(e_hi, e_lo, e_hi + e_lo);
    if negate { -v } else { v }
}

/// The rare cases, kept out of line so the fast paths stay small.
#[cold]
#[inline(never)]
fn exp_rare(x: f64) -> f64 {
    libm::exp(x)
}

#[cold]
#[inline(never)]
fn ln_rare(x: f64) -> f64 {
    libm::log(x)
}

#[cold]
#[inline(never)]
fn pow_rare(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests;
