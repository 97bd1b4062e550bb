//! The Robertson DAE example end to end (`examples/robertson/`): a mass-matrix model (the conservation of mass as
//! its algebraic equation) whose solution matches scipy's Radau on the equivalent ODE, and whose fit of the three
//! rate constants to synthetic concentrations reaches the least-squares optimum and recovers the constants the
//! data were made at, the same for 1 and 2 threads.

use parfit_tests::{
    assert_optimum_within_noise, assert_same_fit, fit_json, parfit, parse_csv, read_csv, root, scratch,
};

/// The rate constants `examples/robertson/make_data.py` made the data at.
const TRUTH: [(&str, f64); 3] = [("k1", 0.04), ("k2", 1e4), ("k3", 3e7)];

/// At the fit's tolerances (rtol 1e-8, atol 1e-12) every concentration above 1e-6 is within 1e-6 relative of
/// scipy's Radau at rtol 1e-12 (`reference_radau.csv`; pydiffsol's DAE solve lies within 1.5e-9 of it). Measured:
/// 2.9e-8 relative at worst (B); and A + B + C = 1 to rounding, C being the algebraic state (measured 4.6e-15
/// at worst, ~20 ulps: the algebraic row is linear, so every Newton iterate satisfies it up to the LU's rounding
/// and the CSV's B × 1e4).
#[test]
fn the_solution_matches_radau_on_the_equivalent_ode() {
    let (header, reference) = read_csv(&root().join("tests/data/robertson/reference_radau.csv"));
    assert_eq!(header, vec!["t", "A", "Bx1e4", "C"]);
    let dir = scratch("robertson-run");
    let times: Vec<String> = reference.iter().map(|r| format!("{:?}", r[0])).collect();
    let config = format!(
        "[model]\nkind = \"diffsl\"\nsource = {:?}\n\n[model.options]\nrtol = 1e-8\natol = 1e-12\nt0 = 0.0\n\n\
         [run]\ntimes = [{}]\n",
        root().join("examples/robertson/robertson.ds"),
        times.join(", ")
    );
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let run = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--format", "csv"]);
    let (header, rows) = parse_csv(&run.assert_ok().stdout);
    assert_eq!(header, vec!["time", "A", "Bx1e4", "C"]);
    assert_eq!(rows.len(), reference.len());
    let mut worst = 0.0f64;
    for (row, reference) in rows.iter().zip(&reference) {
        assert_eq!(row[0], reference[0]);
        let scale = [1.0, 1e4, 1.0];
        for j in 1..4 {
            if reference[j] / scale[j - 1] > 1e-6 {
                worst = worst.max((row[j] - reference[j]).abs() / reference[j].abs());
            }
        }
        let total = row[1] + row[2] / 1e4 + row[3];
        assert!((total - 1.0).abs() <= 1e-14, "t = {}: A + B + C = {total}", row[0]);
    }
    assert!(worst <= 1e-6, "max relative error {worst:e}");
}

/// The fit lands on the least-squares optimum (`optimum.json`: scipy `least_squares` on Radau solutions at rtol
/// 1e-12, its runs agreeing to 1.4e-7): measured within 5e-8 relative in the constants and 3e-11 in the SSE, so
/// held to 1e-6 and 1e-9. Each constant lies within three standard errors of the truth (the sandwich covariance of
/// the least-squares estimate under the data's 2 % proportional noise, at the truth: k1 8.0e-4, k2 310, k3 6.0e5;
/// here they are 0.9, 1.0 and 0.7 of them away).
#[test]
fn the_fit_reaches_the_optimum_and_recovers_the_truth_within_the_noise() {
    let result = fit_json("examples/robertson/fit.toml", "2", "robertson-fit");
    assert_optimum_within_noise(&result, "robertson", &TRUTH, 1e-6, 1e-9);
}

#[test]
fn the_fit_is_identical_for_one_and_two_threads() {
    let config = "examples/robertson/fit.toml";
    let (one, two) = (fit_json(config, "1", "robertson-threads-1"), fit_json(config, "2", "robertson-threads-2"));
    assert_eq!((one["threads"].as_u64(), two["threads"].as_u64()), (Some(1), Some(2)));
    assert_same_fit(&one, &two);
}
