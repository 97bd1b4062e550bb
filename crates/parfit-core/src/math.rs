//! The one math library of every result: the `libm` crate (a pure-Rust port of musl's libm) on every target.
//!
//! `f64::exp`, `f64::ln`, `f64::powf`, … call the platform's C library natively (glibc on Linux) but Rust's
//! bundled libm on wasm32, and the two differ in the last bit for some arguments, so the browser's results
//! would differ from the command line's. Every transcendental function in code that affects a result goes
//! through here instead; the workspace `clippy.toml` forbids the `f64` methods. `sqrt`, `abs`, `floor`,
//! `trunc`, `round` and `mul_add` are correctly rounded everywhere and stay methods.
//!
//! The names are `f64`'s, so `x.exp()` becomes `math::exp(x)`.

#![allow(clippy::disallowed_methods)]

#[cfg(test)]
mod dd;
mod fast;
mod tables;

/// `e^x` (`fast`: table-driven, about 0.51 ULP).
#[inline]
pub fn exp(x: f64) -> f64 {
    fast::exp(x)
}

/// `e^x − 1`, accurate near 0.
#[inline]
pub fn exp_m1(x: f64) -> f64 {
    libm::expm1(x)
}

#[inline]
pub fn exp2(x: f64) -> f64 {
    libm::exp2(x)
}

/// The natural logarithm (`fast`: table-driven, about 0.51 ULP).
#[inline]
pub fn ln(x: f64) -> f64 {
    fast::ln(x)
}

/// `ln(1 + x)`, accurate near 0.
#[inline]
pub fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

#[inline]
pub fn log2(x: f64) -> f64 {
    libm::log2(x)
}

#[inline]
pub fn log10(x: f64) -> f64 {
    libm::log10(x)
}

/// `x^y` (`fast`: `e^(y ln x)` with `ln x` in double-double, about 0.52 ULP).
#[inline]
pub fn powf(x: f64, y: f64) -> f64 {
    fast::pow(x, y)
}

/// `x^n` for a whole `n`, by repeated squaring written out here: `f64::powi` is an LLVM intrinsic whose
/// lowering (a multiplication chain or a library call) LLVM chooses per target and optimisation level.
/// Small powers give the products one would write (`powi(x, 2)` is `x * x`, `powi(x, 3)` is `x * (x * x)`).
#[inline]
pub fn powi(x: f64, n: i32) -> f64 {
    let (mut base, mut e, mut r) = (x, n.unsigned_abs(), 1.0);
    loop {
        if e & 1 == 1 {
            r *= base;
        }
        e >>= 1;
        if e == 0 {
            break;
        }
        base *= base;
    }
    if n < 0 { 1.0 / r } else { r }
}

#[inline]
pub fn cbrt(x: f64) -> f64 {
    libm::cbrt(x)
}

/// `√(x² + y²)` without overflow.
#[inline]
pub fn hypot(x: f64, y: f64) -> f64 {
    libm::hypot(x, y)
}

#[inline]
pub fn sin(x: f64) -> f64 {
    libm::sin(x)
}

#[inline]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

/// `(sin x, cos x)`.
#[inline]
pub fn sin_cos(x: f64) -> (f64, f64) {
    libm::sincos(x)
}

#[inline]
pub fn tan(x: f64) -> f64 {
    libm::tan(x)
}

#[inline]
pub fn asin(x: f64) -> f64 {
    libm::asin(x)
}

#[inline]
pub fn acos(x: f64) -> f64 {
    libm::acos(x)
}

#[inline]
pub fn atan(x: f64) -> f64 {
    libm::atan(x)
}

/// The angle of the point `(x, y)`, in the argument order of `y.atan2(x)`.
#[inline]
pub fn atan2(y: f64, x: f64) -> f64 {
    libm::atan2(y, x)
}

#[inline]
pub fn sinh(x: f64) -> f64 {
    libm::sinh(x)
}

#[inline]
pub fn cosh(x: f64) -> f64 {
    libm::cosh(x)
}

#[inline]
pub fn tanh(x: f64) -> f64 {
    libm::tanh(x)
}

#[inline]
pub fn asinh(x: f64) -> f64 {
    libm::asinh(x)
}

#[inline]
pub fn acosh(x: f64) -> f64 {
    libm::acosh(x)
}

#[inline]
pub fn atanh(x: f64) -> f64 {
    libm::atanh(x)
}

/// The error function.
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// The complementary error function `1 − erf(x)`, accurate in the tail.
#[inline]
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// `ln |Γ(x)|`.
#[inline]
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// `Γ(x)`.
#[inline]
pub fn gamma(x: f64) -> f64 {
    libm::tgamma(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn each_name_is_its_function() {
        // Each name maps to the function it says (within an ulp: musl's functions are not all correctly
        // rounded). exp(1) is e (libm's was one ulp above).
        assert_eq!(exp(1.0), std::f64::consts::E);
        assert!((ln(std::f64::consts::E) - 1.0).abs() <= f64::EPSILON);
        assert_eq!(powf(2.0, 10.0), 1024.0);
        assert_eq!(powi(3.0, 4), 81.0);
        assert_eq!(powi(2.0, -2), 0.25);
        assert_eq!(powi(1.1, 0), 1.0);
        for x in [0.3f64, 1.7, -2.9, 1e-3] {
            assert_eq!(powi(x, 2).to_bits(), (x * x).to_bits());
            assert_eq!(powi(x, 3).to_bits(), (x * (x * x)).to_bits());
        }
        assert_eq!(log10(1000.0), 3.0);
        assert_eq!(log2(8.0), 3.0);
        assert_eq!(exp2(3.0), 8.0);
        assert_eq!(cbrt(27.0), 3.0);
        assert_eq!(hypot(3.0, 4.0), 5.0);
        assert_eq!(atan2(1.0, 1.0), std::f64::consts::FRAC_PI_4);
        assert_eq!(atan(1.0), std::f64::consts::FRAC_PI_4);
        assert_eq!(sin_cos(0.0), (0.0, 1.0));
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erfc(0.0), 1.0);
        assert_eq!(gamma(5.0), 24.0);
        assert_eq!(ln_gamma(1.0), 0.0);
        assert_eq!(exp_m1(0.0), 0.0);
        assert_eq!(ln_1p(0.0), 0.0);
    }
}
