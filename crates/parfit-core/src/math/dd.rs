//! Double-double arithmetic for the tests of `math::fast`: the generator of its tables and the reference its
//! results are measured against. A value is the unevaluated sum `hi + lo` with `|lo| ≤ ulp(hi) / 2`, about 106
//! bits; every operation is plain f64 arithmetic (Dekker's splitting for exact products, Knuth's two-sum for
//! exact sums), so the tables come out the same on every target.
//!
//! References: T. J. Dekker, "A floating-point technique for extending the available precision", Numer. Math.
//! 18 (1971); D. E. Knuth, TAOCP vol. 2, §4.2.2; Y. Hida, X. S. Li, D. H. Bailey, "Algorithms for quad-double
//! precision floating point arithmetic", ARITH-15 (2001).

/// `hi + lo`, unevaluated.
#[derive(Clone, Copy, Debug)]
pub struct Dd {
    pub hi: f64,
    pub lo: f64,
}

/// `a + b = s + e` exactly (Knuth), whatever the magnitudes.
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `a + b = s + e` exactly when `|a| ≥ |b|` (Dekker).
fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// `a = hi + lo` with both halves of at most 26 significant bits (Dekker's splitting by 2^27 + 1).
fn split(a: f64) -> (f64, f64) {
    let c = 134_217_729.0 * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

/// `a · b = p + e` exactly (Dekker), for `|a|, |b|` well inside the range where the splitting cannot overflow.
pub fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

impl Dd {
    pub fn from(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    fn norm(hi: f64, lo: f64) -> Dd {
        let (hi, lo) = fast_two_sum(hi, lo);
        Dd { hi, lo }
    }

    pub fn add(self, o: Dd) -> Dd {
        let (s, e) = two_sum(self.hi, o.hi);
        let (t, f) = two_sum(self.lo, o.lo);
        let (s, e) = fast_two_sum(s, e + t);
        Dd::norm(s, e + f)
    }

    pub fn neg(self) -> Dd {
        Dd { hi: -self.hi, lo: -self.lo }
    }

    pub fn sub(self, o: Dd) -> Dd {
        self.add(o.neg())
    }

    pub fn mul(self, o: Dd) -> Dd {
        let (p, e) = two_prod(self.hi, o.hi);
        Dd::norm(p, e + (self.hi * o.lo + self.lo * o.hi))
    }

    pub fn mul_f(self, b: f64) -> Dd {
        let (p, e) = two_prod(self.hi, b);
        Dd::norm(p, e + self.lo * b)
    }

    pub fn div(self, o: Dd) -> Dd {
        // Three quotient digits, each from the remainder of the previous ones.
        let q1 = self.hi / o.hi;
        let r = self.sub(o.mul_f(q1));
        let q2 = r.hi / o.hi;
        let r = r.sub(o.mul_f(q2));
        let q3 = r.hi / o.hi;
        let (q1, q2) = fast_two_sum(q1, q2);
        Dd::from(q1).add(Dd { hi: q2, lo: q3 })
    }

    /// Multiplication by `2^k`, exact while the result stays normal.
    pub fn ldexp(self, k: i32) -> Dd {
        let mut r = self;
        let mut k = k;
        while k != 0 {
            let step = k.clamp(-1000, 1000);
            let f = f64::from_bits(((1023 + step) as u64) << 52);
            r = Dd { hi: r.hi * f, lo: r.lo * f };
            k -= step;
        }
        r
    }
}

/// ln 2 to 106 bits: the published double-double pair (e.g. Hida–Li–Bailey's QD library), checked against
/// Python's `decimal` when this file was written.
pub const LN2: Dd = Dd { hi: f64::from_bits(0x3FE6_2E42_FEFA_39EF), lo: f64::from_bits(0x3C7A_BC9E_3B39_803F) };

/// `e^a` for `|a| ≤ 1`, by its Taylor series summed in double-double until the terms vanish.
pub fn exp_small(a: Dd) -> Dd {
    let mut sum = Dd::from(1.0);
    let mut term = Dd::from(1.0);
    for n in 1..60 {
        term = term.mul(a).div(Dd::from(f64::from(n)));
        sum = sum.add(term);
        if term.hi.abs() < 1e-40 {
            break;
        }
    }
    sum
}

/// `e^a` for any `a` whose result is normal: `2^k · e^(a − k ln 2)` with `|a − k ln 2| ≤ ln 2 / 2`.
pub fn exp(a: Dd) -> Dd {
    let k = (a.hi / LN2.hi).round();
    exp_small(a.sub(LN2.mul_f(k))).ldexp(k as i32)
}

/// `ln v` for `v` in `[0.5, 2]`: `2 atanh s` with `s = (v − 1) / (v + 1)`, `|s| ≤ 1/3`, summed in double-double.
pub fn ln_near1(v: f64) -> Dd {
    let (d_hi, d_lo) = two_sum(v, 1.0);
    let s = Dd::from(v - 1.0).div(Dd { hi: d_hi, lo: d_lo });
    let s2 = s.mul(s);
    let mut power = s;
    let mut sum = s;
    for n in 1..200 {
        power = power.mul(s2);
        let term = power.div(Dd::from(f64::from(2 * n + 1)));
        sum = sum.add(term);
        if term.hi.abs() < 1e-40 * sum.hi.abs().max(1e-300) {
            break;
        }
    }
    sum.mul_f(2.0)
}

/// `ln x` for any positive finite `x` (subnormals too): `k ln 2 + ln m` with `x = m · 2^k`, `m` in `[0.75, 1.5)`.
pub fn ln(x: f64) -> Dd {
    let (mut m, mut k) = (x, 0i32);
    if m < f64::MIN_POSITIVE {
        m *= f64::from_bits((1023 + 64) << 52);
        k -= 64;
    }
    let e = ((m.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    m = f64::from_bits((m.to_bits() & !(0x7ff << 52)) | (1023 << 52));
    k += e;
    if m >= 1.5 {
        m *= 0.5;
        k += 1;
    }
    LN2.mul_f(f64::from(k)).add(ln_near1(m))
}
