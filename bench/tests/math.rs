//! The speed of `parfit_core::math`'s `exp`, `ln` and `powf` against the `libm` crate (what they replaced)
//! and the platform's (glibc natively: `f64::exp`, `f64::ln`, `f64::powf`), on the same arguments in the same
//! run. Not a test of anything: run it with
//! `cargo test --release -p parfit-bench --test math -- --ignored --nocapture` (BENCHMARKS.md, "Math").

use parfit_core::math;
use std::hint::black_box;
use std::time::Instant;

/// SplitMix64: fixed arguments on every run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
}

const LEN: usize = 4096;

/// The best of 7 rounds of ns per call of `f` over the arguments (independent calls: throughput).
fn time<A: Copy>(args: &[A], f: impl Fn(A) -> f64) -> f64 {
    let reps = 200;
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let start = Instant::now();
        let mut sum = 0.0;
        for _ in 0..reps {
            for &a in black_box(args) {
                sum += f(a);
            }
        }
        black_box(sum);
        best = best.min(start.elapsed().as_secs_f64() * 1e9 / (reps * args.len()) as f64);
    }
    best
}

fn row(name: &str, ours: f64, libm: f64, platform: f64) {
    println!(
        "{name:<34} parfit {ours:6.2} ns   libm {libm:6.2} ns   glibc {platform:6.2} ns   libm/parfit {:4.2}×   parfit/glibc {:4.2}×",
        libm / ours,
        ours / platform
    );
}

#[test]
#[ignore = "a benchmark: run with --release --ignored --nocapture"]
fn math_speed() {
    let mut rng = Rng(7);
    let exp_args: Vec<f64> = (0..LEN).map(|_| rng.range(-20.0, 20.0)).collect();
    let ln_args: Vec<f64> = (0..LEN).map(|_| rng.range(1e-3, 1e3)).collect();
    let pow_args: Vec<(f64, f64)> = (0..LEN).map(|_| (rng.range(0.01, 100.0), rng.range(-10.0, 10.0))).collect();
    // The projection's monthly rates: (1 − annual rate)^(1/12).
    let rate_args: Vec<(f64, f64)> = (0..LEN).map(|_| (1.0 - rng.range(0.0, 0.3), 1.0 / 12.0)).collect();
    for _ in 0..2 {
        row("exp x in [-20, 20]", time(&exp_args, math::exp), time(&exp_args, libm::exp), time(&exp_args, f64::exp));
        row("ln x in [1e-3, 1e3]", time(&ln_args, math::ln), time(&ln_args, libm::log), time(&ln_args, f64::ln));
        row(
            "pow x in [0.01, 100], y in [-10, 10]",
            time(&pow_args, |(x, y)| math::powf(x, y)),
            time(&pow_args, |(x, y)| libm::pow(x, y)),
            time(&pow_args, |(x, y)| x.powf(y)),
        );
        row(
            "pow (1 - rate)^(1/12)",
            time(&rate_args, |(x, y)| math::powf(x, y)),
            time(&rate_args, |(x, y)| libm::pow(x, y)),
            time(&rate_args, |(x, y)| x.powf(y)),
        );
    }
}
