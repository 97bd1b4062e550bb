//! Priors: one distribution per parameter and their product, the joint [`Prior`].
//!
//! Every distribution has a log-density and a quantile function (inverse CDF). Nested sampling works
//! in the unit cube and maps a point `u ∈ [0, 1)^d` to parameters through the quantiles
//! ([`Prior::transform`]); MCMC uses the log-density.
//!
//! In a configuration each parameter's prior is a table tagged by `kind`:
//!
//! ```toml
//! alpha = { kind = "uniform", lower = 0.0, upper = 5.0 }
//! beta = { kind = "normal", mu = 1.0, sigma = 0.1 }
//! gamma = { kind = "log_normal", mu = -1.0, sigma = 0.5 }   # mu, sigma of ln(gamma)
//! ```

use crate::math;
use serde::{Deserialize, Serialize};

use crate::check::{OptionError, positive, require};
use std::f64::consts::{FRAC_1_SQRT_2, PI, SQRT_2};

/// ln √(2π).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// A prior distribution of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParamPrior {
    /// Uniform on `[lower, upper]`.
    Uniform { lower: f64, upper: f64 },
    /// Normal with mean `mu` and standard deviation `sigma`.
    Normal { mu: f64, sigma: f64 },
    /// Log-normal: `ln x` is normal with mean `mu` and standard deviation `sigma`.
    LogNormal { mu: f64, sigma: f64 },
}

/// A prior whose settings make no distribution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriorError {
    #[error("parameter {index}: {kind} prior: {error}")]
    Setting { index: usize, kind: &'static str, error: OptionError },
    #[error("a prior needs at least one parameter")]
    Empty,
}

impl ParamPrior {
    pub fn name(&self) -> &'static str {
        match self {
            ParamPrior::Uniform { .. } => "uniform",
            ParamPrior::Normal { .. } => "normal",
            ParamPrior::LogNormal { .. } => "log_normal",
        }
    }

    /// Check every setting against its allowed range; the error names the key (`lower`, `upper`, `mu`, `sigma`).
    pub fn check(&self) -> Result<(), OptionError> {
        match *self {
            ParamPrior::Uniform { lower, upper } => {
                require(lower.is_finite(), "lower", "a finite number", lower)?;
                require(
                    upper.is_finite() && upper > lower,
                    "upper",
                    &format!("finite and above lower = {lower:?}"),
                    upper,
                )
            }
            ParamPrior::Normal { mu, sigma } | ParamPrior::LogNormal { mu, sigma } => {
                require(mu.is_finite(), "mu", "a finite number", mu)?;
                positive("sigma", sigma)
            }
        }
    }

    /// Check the settings; `index` names the parameter in the error.
    pub fn validate(&self, index: usize) -> Result<(), PriorError> {
        self.check().map_err(|error| PriorError::Setting { index, kind: self.name(), error })
    }

    /// Natural log of the density at `x`; `-inf` outside the support.
    pub fn ln_pdf(&self, x: f64) -> f64 {
        match *self {
            ParamPrior::Uniform { lower, upper } => {
                if (lower..=upper).contains(&x) {
                    -math::ln(upper - lower)
                } else {
                    f64::NEG_INFINITY
                }
            }
            ParamPrior::Normal { mu, sigma } => {
                let z = (x - mu) / sigma;
                -0.5 * z * z - math::ln(sigma) - LN_SQRT_2PI
            }
            ParamPrior::LogNormal { mu, sigma } => {
                if x > 0.0 {
                    let ln_x = math::ln(x);
                    let z = (ln_x - mu) / sigma;
                    -0.5 * z * z - math::ln(sigma) - LN_SQRT_2PI - ln_x
                } else {
                    f64::NEG_INFINITY
                }
            }
        }
    }

    /// The cumulative distribution function.
    pub fn cdf(&self, x: f64) -> f64 {
        match *self {
            ParamPrior::Uniform { lower, upper } => ((x - lower) / (upper - lower)).clamp(0.0, 1.0),
            ParamPrior::Normal { mu, sigma } => normal_cdf((x - mu) / sigma),
            ParamPrior::LogNormal { mu, sigma } => {
                if x > 0.0 {
                    normal_cdf((math::ln(x) - mu) / sigma)
                } else {
                    0.0
                }
            }
        }
    }

    /// The quantile function (inverse CDF): maps `u ∈ [0, 1]` to the parameter. `u` is clamped to
    /// `[1e-300, 1 − 2⁻⁵³]`, so unbounded distributions give finite values even at the cube's faces.
    pub fn quantile(&self, u: f64) -> f64 {
        match *self {
            ParamPrior::Uniform { lower, upper } => lower + u.clamp(0.0, 1.0) * (upper - lower),
            ParamPrior::Normal { mu, sigma } => mu + sigma * normal_quantile(clamp_open(u)),
            ParamPrior::LogNormal { mu, sigma } => math::exp(mu + sigma * normal_quantile(clamp_open(u))),
        }
    }

    /// Whether `x` lies in the support.
    pub fn contains(&self, x: f64) -> bool {
        match *self {
            ParamPrior::Uniform { lower, upper } => (lower..=upper).contains(&x),
            ParamPrior::Normal { .. } => x.is_finite(),
            ParamPrior::LogNormal { .. } => x > 0.0 && x.is_finite(),
        }
    }

    /// Mean and standard deviation, a natural scale for starting samplers.
    pub fn mean_sd(&self) -> (f64, f64) {
        match *self {
            ParamPrior::Uniform { lower, upper } => (0.5 * (lower + upper), (upper - lower) / 12f64.sqrt()),
            ParamPrior::Normal { mu, sigma } => (mu, sigma),
            ParamPrior::LogNormal { mu, sigma } => {
                let s2 = sigma * sigma;
                let mean = math::exp(mu + 0.5 * s2);
                (mean, mean * math::exp_m1(s2).sqrt())
            }
        }
    }
}

fn clamp_open(u: f64) -> f64 {
    // 1 − 2⁻⁵³ is the largest double below one.
    if u.is_nan() { 0.5 } else { u.clamp(1e-300, 1.0 - f64::EPSILON / 2.0) }
}

/// The joint prior: independent priors, one per parameter, in parameter order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<ParamPrior>", into = "Vec<ParamPrior>")]
pub struct Prior {
    params: Vec<ParamPrior>,
}

impl TryFrom<Vec<ParamPrior>> for Prior {
    type Error = PriorError;
    fn try_from(params: Vec<ParamPrior>) -> Result<Self, PriorError> {
        Prior::new(params)
    }
}

impl From<Prior> for Vec<ParamPrior> {
    fn from(prior: Prior) -> Self {
        prior.params
    }
}

impl Prior {
    /// A joint prior from valid per-parameter priors.
    pub fn new(params: Vec<ParamPrior>) -> Result<Self, PriorError> {
        if params.is_empty() {
            return Err(PriorError::Empty);
        }
        for (i, p) in params.iter().enumerate() {
            p.validate(i)?;
        }
        Ok(Prior { params })
    }

    /// Uniform priors on a box, e.g. an objective's bounds.
    pub fn uniform(lower: &[f64], upper: &[f64]) -> Result<Self, PriorError> {
        Prior::new(lower.iter().zip(upper).map(|(&lower, &upper)| ParamPrior::Uniform { lower, upper }).collect())
    }

    pub fn dim(&self) -> usize {
        self.params.len()
    }

    pub fn params(&self) -> &[ParamPrior] {
        &self.params
    }

    /// Joint log-density; `-inf` outside the support.
    pub fn ln_pdf(&self, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for (p, &xi) in self.params.iter().zip(x) {
            sum += p.ln_pdf(xi);
            if sum == f64::NEG_INFINITY {
                break;
            }
        }
        sum
    }

    pub fn contains(&self, x: &[f64]) -> bool {
        self.params.iter().zip(x).all(|(p, &xi)| p.contains(xi))
    }

    /// Map a point of the unit cube to parameters, coordinate by coordinate.
    pub fn transform(&self, u: &[f64], x: &mut [f64]) {
        for ((p, &ui), xi) in self.params.iter().zip(u).zip(x) {
            *xi = p.quantile(ui);
        }
    }

    /// The inverse of [`Prior::transform`].
    pub fn to_unit(&self, x: &[f64], u: &mut [f64]) {
        for ((p, &xi), ui) in self.params.iter().zip(x).zip(u) {
            *ui = p.cdf(xi);
        }
    }
}

/// Standard normal CDF Φ(x), with full relative accuracy in the lower tail.
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 { 0.5 * erfc(-x * FRAC_1_SQRT_2) } else { 1.0 - 0.5 * erfc(x * FRAC_1_SQRT_2) }
}

/// Complementary error function for `z ≥ 0` (negative `z` by reflection).
///
/// Below 1.5 it is `1 − erf(z)` from erf's series with positive terms,
/// `erf z = 2/√π e^(−z²) Σ 2ⁿ z^(2n+1) / (1·3·…·(2n+1))`, which has no cancellation; above, the
/// continued fraction `erfc z = e^(−z²)/√π · 1/(z + ½/(z + 1/(z + 3/2/(z + …))))`, evaluated
/// backwards from depth 100, which has converged to rounding there. Relative error below ~1e-14.
pub fn erfc(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z < 0.0 {
        return 2.0 - erfc(-z);
    }
    if z < 1.5 {
        let z2 = z * z;
        let mut term = z;
        let mut sum = z;
        let mut k = 0.0;
        while term > sum * 1e-17 {
            k += 1.0;
            term *= 2.0 * z2 / (2.0 * k + 1.0);
            sum += term;
        }
        1.0 - 2.0 / PI.sqrt() * math::exp(-z2) * sum
    } else if z > 27.3 {
        0.0 // below the smallest subnormal
    } else {
        let mut f = z;
        for k in (1..=100).rev() {
            f = z + 0.5 * k as f64 / f;
        }
        math::exp(-z * z) / (PI.sqrt() * f)
    }
}

/// Standard normal quantile Φ⁻¹(p) for `p ∈ (0, 1)`; `∓inf` at 0 and 1, NaN outside.
///
/// P. J. Acklam's rational approximations (relative error 1.15e-9) give the start, and one Halley
/// step on `Φ(x) − p` takes it to full double precision.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.024_25;

    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail((-2.0 * math::ln(p)).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * math::ln_1p(-p)).sqrt())
    };
    // Halley: with e = Φ(x) − p and u = e/φ(x), x ← x − u/(1 + x u/2). The residual is taken in
    // the tail nearer to x so that it keeps its relative accuracy.
    let e = if x < 0.0 { 0.5 * erfc(-x / SQRT_2) - p } else { (1.0 - p) - 0.5 * erfc(x / SQRT_2) };
    let u = e * (2.0 * PI).sqrt() * math::exp(0.5 * x * x);
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Reference values from mpmath at 50 digits.
    const QUANTILES: [(f64, f64); 9] = [
        (0.5, 0.0),
        (0.975, 1.959_963_984_540_054),
        (0.841_344_746_068_542_9, 1.0),
        (0.1, -1.281_551_565_544_600_5),
        (0.024_25, -1.972_961_051_311_884_8),
        (1e-5, -4.264_890_793_922_825),
        (1e-10, -6.361_340_902_404_056),
        (1e-300, -37.047_096_299_361_2),
        (0.999_999, 4.753_424_308_817_088),
    ];

    #[test]
    fn normal_quantile_matches_reference_values() {
        for (p, x) in QUANTILES {
            let q = normal_quantile(p);
            assert!((q - x).abs() <= 1e-14 * x.abs().max(1.0), "Φ⁻¹({p}) = {q}, expected {x}");
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn normal_cdf_matches_reference_values() {
        let cases = [
            (0.0, 0.5),
            (-1.0, 0.158_655_253_931_457_05),
            (-3.0, 1.349_898_031_630_094_6e-3),
            (-3.5, 2.326_290_790_355_250_4e-4),
            (-8.0, 6.220_960_574_271_784e-16),
            (-20.0, 2.753_624_118_606_233e-89),
            (1.5, 0.933_192_798_731_141_9),
        ];
        for (x, p) in cases {
            let c = normal_cdf(x);
            assert!((c - p).abs() <= 1e-13 * p, "Φ({x}) = {c:e}, expected {p:e}");
        }
    }

    #[test]
    fn quantile_inverts_cdf_across_the_range() {
        for i in 1..2000 {
            let p = i as f64 / 2000.0;
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() < 2e-15, "p {p}");
        }
        for k in 1..300 {
            let p = math::powi(10f64, -k);
            let x = normal_quantile(p);
            assert!(((normal_cdf(x) - p) / p).abs() < 1e-12, "p {p:e}");
        }
    }

    #[test]
    fn priors_have_the_right_densities_and_quantiles() {
        let u = ParamPrior::Uniform { lower: -1.0, upper: 3.0 };
        assert_eq!(u.quantile(0.25), 0.0);
        assert_eq!(u.ln_pdf(0.0), -(math::ln(4f64)));
        assert_eq!(u.ln_pdf(3.5), f64::NEG_INFINITY);

        let n = ParamPrior::Normal { mu: 1.0, sigma: 0.1 };
        assert!((n.quantile(0.975) - (1.0 + 0.1 * 1.959_963_984_540_054)).abs() < 1e-14);
        assert!((n.ln_pdf(1.0) - (-(math::ln(0.1f64)) - LN_SQRT_2PI)).abs() < 1e-14);

        let l = ParamPrior::LogNormal { mu: 0.5, sigma: 2.0 };
        assert!((l.quantile(0.5) - math::exp(0.5f64)).abs() < 1e-14);
        assert!((l.cdf(l.quantile(0.3)) - 0.3).abs() < 1e-14);
        assert_eq!(l.ln_pdf(-1.0), f64::NEG_INFINITY);
        // d/dx Φ((ln x − μ)/σ) = φ(z)/(σx).
        let x: f64 = 3.0;
        let z = (math::ln(x) - 0.5) / 2.0;
        assert!((l.ln_pdf(x) - (-0.5 * z * z - LN_SQRT_2PI - math::ln(2f64) - math::ln(x))).abs() < 1e-14);
        // Extreme cube coordinates stay finite.
        assert!(n.quantile(0.0).is_finite() && n.quantile(1.0).is_finite());
    }

    #[test]
    fn joint_prior_reads_its_configuration_form() {
        let text = r#"[{"kind": "uniform", "lower": 0.0, "upper": 2.0},
                       {"kind": "normal", "mu": 1.0, "sigma": 0.1},
                       {"kind": "log_normal", "mu": 0.0, "sigma": 1.0}]"#;
        let prior: Prior = serde_json::from_str(text).unwrap();
        assert_eq!(prior.dim(), 3);
        let mut x = [0.0; 3];
        prior.transform(&[0.5, 0.5, 0.5], &mut x);
        assert_eq!(x, [1.0, 1.0, 1.0]);
        let mut u = [0.0; 3];
        prior.to_unit(&x, &mut u);
        assert!(u.iter().all(|&v| (v - 0.5).abs() < 1e-15));
        let expected = -(math::ln(2f64)) + (-(math::ln(0.1f64)) - LN_SQRT_2PI) + (-LN_SQRT_2PI);
        assert!((prior.ln_pdf(&x) - expected).abs() < 1e-14);

        let bad_key = r#"[{"kind": "normal", "mu": 1.0, "sigma": 0.1, "lower": 0.0}]"#;
        assert!(serde_json::from_str::<Prior>(bad_key).is_err());
        let bad_sigma = r#"[{"kind": "normal", "mu": 1.0, "sigma": -0.1}]"#;
        let err = serde_json::from_str::<Prior>(bad_sigma).unwrap_err().to_string();
        assert!(err.contains("parameter 0: normal prior: sigma must be a positive finite number (got -0.1)"), "{err}");
        assert!(Prior::uniform(&[1.0], &[1.0]).is_err());
    }

    #[test]
    fn prior_settings_are_checked_at_their_boundaries() {
        let check = |p: ParamPrior| p.check().map_err(|e| e.to_string());
        assert!(check(ParamPrior::Uniform { lower: -1e300, upper: 1e300 }).is_ok());
        assert_eq!(
            check(ParamPrior::Uniform { lower: 1.0, upper: 1.0 }),
            Err("upper must be finite and above lower = 1.0 (got 1.0)".into())
        );
        assert!(check(ParamPrior::Uniform { lower: 2.0, upper: 1.0 }).is_err());
        assert!(check(ParamPrior::Uniform { lower: f64::NAN, upper: 1.0 }).unwrap_err().starts_with("lower"));
        assert!(check(ParamPrior::Uniform { lower: 0.0, upper: f64::INFINITY }).unwrap_err().starts_with("upper"));
        for kind in [|mu, sigma| ParamPrior::Normal { mu, sigma }, |mu, sigma| ParamPrior::LogNormal { mu, sigma }] {
            assert!(check(kind(0.0, f64::MIN_POSITIVE)).is_ok());
            assert!(check(kind(f64::NAN, 1.0)).unwrap_err().starts_with("mu"));
            for sigma in [0.0, -1.0, f64::NAN, f64::INFINITY] {
                assert!(check(kind(0.0, sigma)).unwrap_err().starts_with("sigma"), "{sigma}");
            }
        }
    }
}
