//! The PySD cookbook's county workload end to end: the Vensim aging chain fitted to all 3,137 US counties
//! reaches the scipy L-BFGS-B reference, with byte-identical results for one and two threads.

use parfit_tests::{parfit, read_csv_text, root, scratch};

#[test]
fn every_county_is_fitted_as_well_as_scipy_and_threads_do_not_matter() {
    let dir = scratch("counties");
    let (one, two) = (dir.join("one"), dir.join("two"));
    let config = "examples/counties/fit.toml";
    let summary =
        parfit(&["fit-many", config, "--threads", "2", "--output", two.to_str().unwrap(), "--format", "json"])
            .assert_ok()
            .json();
    assert_eq!((summary["cases"].as_u64(), summary["failed"].as_u64()), (Some(3137), Some(0)));
    parfit(&["fit-many", config, "--threads", "1", "--output", one.to_str().unwrap()]).assert_ok();
    let results = std::fs::read_to_string(two.join("results.csv")).unwrap();
    assert_eq!(std::fs::read_to_string(one.join("results.csv")).unwrap(), results, "1 and 2 threads differ");

    // scipy's L-BFGS-B from 0.05, exactly as the cookbook calls it (tests/data/counties/make_reference.py).
    let reference =
        read_csv_text(&std::fs::read_to_string(root().join("tests/data/counties/scipy_lbfgsb.csv")).unwrap());
    let ours = read_csv_text(&results);
    assert_eq!(ours.len(), reference.len());
    // Every county reaches scipy's SSE to within 0.1 % (scipy stops on its own tolerances, not at the optimum).
    let mut short = Vec::new();
    for (row, expected) in ours.iter().zip(&reference) {
        assert_eq!((&row["state"], &row["county"]), (&expected["state"], &expected["county"]), "input order");
        assert!(row["error"].is_empty(), "county {}/{} failed: {}", row["state"], row["county"], row["error"]);
        let (sse, scipy): (f64, f64) = (row["sse"].parse().unwrap(), expected["sse_cookbook"].parse().unwrap());
        if sse > scipy * 1.001 {
            short.push(format!("{}/{}: {sse} vs scipy {scipy}", row["state"], row["county"]));
        }
    }
    assert!(short.is_empty(), "{} of {} counties miss scipy's SSE × 1.001: {short:?}", short.len(), ours.len());
}
