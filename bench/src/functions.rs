//! The optimisation test functions of `bench/suite.json` (the peers define the same ones in Python).

/// `Σ x_i²`.
fn sphere(x: &[f64]) -> f64 {
    x.iter().map(|x| x * x).sum()
}

/// `Σ 10^(6 i/(n−1)) x_i²`: condition number 1e6.
fn ellipsoid(x: &[f64]) -> f64 {
    let denom = (x.len().max(2) - 1) as f64;
    x.iter().enumerate().map(|(i, x)| 10f64.powf(6.0 * i as f64 / denom) * x * x).sum()
}

/// `Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²`.
pub fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

/// `10 n + Σ x_i² − 10 cos(2π x_i)`.
fn rastrigin(x: &[f64]) -> f64 {
    10.0 * x.len() as f64 + x.iter().map(|x| x * x - 10.0 * (2.0 * std::f64::consts::PI * x).cos()).sum::<f64>()
}

/// The gradient of [`rosenbrock`].
pub fn rosenbrock_gradient(x: &[f64], g: &mut [f64]) {
    g.fill(0.0);
    for i in 0..x.len().saturating_sub(1) {
        let t = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * t - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * t;
    }
}

pub fn by_name(name: &str) -> Result<fn(&[f64]) -> f64, String> {
    match name {
        "sphere" => Ok(sphere),
        "ellipsoid" => Ok(ellipsoid),
        "rosenbrock" => Ok(rosenbrock),
        "rastrigin" => Ok(rastrigin),
        other => Err(format!("unknown test function '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minima_and_gradient() {
        assert_eq!(by_name("sphere").unwrap()(&[0.0; 10]), 0.0);
        assert_eq!(by_name("ellipsoid").unwrap()(&[0.0; 10]), 0.0);
        assert_eq!(by_name("ellipsoid").unwrap()(&[0.0, 0.0, 1.0]), 1e6);
        assert_eq!(rosenbrock(&[1.0; 10]), 0.0);
        assert!(by_name("rastrigin").unwrap()(&[0.0; 10]).abs() < 1e-12);
        let x = [-1.2, 1.0, 0.3, 2.0];
        let mut g = [0.0; 4];
        rosenbrock_gradient(&x, &mut g);
        for i in 0..4 {
            let h = 1e-6;
            let (mut a, mut b) = (x, x);
            a[i] += h;
            b[i] -= h;
            let fd = (rosenbrock(&a) - rosenbrock(&b)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-5 * g[i].abs().max(1.0), "{i}: {fd} vs {}", g[i]);
        }
    }
}
