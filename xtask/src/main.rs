//! Project automation. `cargo xtask demo` runs the main job on bundled data, `cargo xtask test` runs every
//! check CI runs, `cargo xtask bench` measures parfit (and its peers, where installed).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod bench_mc;
mod bench_python;
mod bench_vensim;
mod fuzz;
mod mpi;
mod python;
mod savings_bench;
mod setup;
mod suite;
mod wasm;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo    build parfit in release mode, fit the Lotka–Volterra, regions, dosing and Robertson (DAE) examples and
          every US county, project lifelib's savings model over 10K and 100K policies, and run the Monte Carlo
          wealth example
  test    formatting, clippy (-D warnings), all tests, the Python package's pytest suite (its wheel built with
          maturin into the venv target/python/venv), a 30 s pass of every fuzz target, the MPI tests (mpirun
          on 1–3 ranks), the wasm32 build
          check of the core, the core's and the plugins' unit tests on wasm32 (node), and the browser test
          (threaded wasm build, headless Chromium); installs what is missing first (as root with apt-get:
          Open MPI, libclang, Chromium, node, npm; with rustup: rustfmt, clippy, the wasm32 target)
  bench   benchmarks; prints a report and writes target/bench/results.json (see BENCHMARKS.md)
          --peers   also run the peer tools (diffid, PySD, pycma, scipy, dynesty, pydiffsol, numba, lifelib;
                    installed into venvs under target/peers on first use)
          --report  print the last run's report again (from target/bench/results.json)
          montecarlo   only the Monte Carlo benchmarks (wealth, π; with --peers also numba)
          ode          only the ODE solves of the suite (with --peers also pydiffsol and scipy), in 2 alternating
                       rounds, into target/bench/ode.json
          lv           only the Lotka–Volterra comparison (one solve, the tutorial fit at matched accuracy;
                       with --peers diffid's fit), in 3 alternating rounds, into target/bench/lv.json
          vensim       only the Vensim models (test-models' samples, the aging chain; with --peers also
                       PySD 3.14.3), one run each, into target/bench/vensim.json
          python       only the Python package: the release wheel; PySD + scipy on the cookbook's county fit
                       (a sample, --counties N, default 10) against parfit.fit_many on every county in one Python
                       process, and parfit.fit against the release CLI on the LV fit (--runs N, default 20;
                       on --threads N, default all, and on 1), into target/bench/python.json (needs PyPI on
                       first use)
  bench-savings [--peers]   only the actuarial projection section of bench (parfit CashValue_ME 10K/100K and
                            BasicTerm_ME 10K; lifelib beside them with --peers or when its venv is there)
  fuzz [--seconds N] [target…]   run the fuzz targets of fuzz/ (cargo-fuzz on the pinned nightly; installs
          cargo-fuzz when missing) for N seconds each (default 30; `test` runs this pass after the tests):
          diffsl, montecarlo, vensim, config, observations, cases, projection; fails with the saved input on
          any crash, hang or out-of-memory (RELIABILITY.md)
  python  build the Python package's wheel (release, the plugins inside) with maturin and install it into the
          venv target/python/venv (made on first use with maturin, pytest, numpy, pandas, tqdm, matplotlib)
  test-python   only the Python part of `test`: the dev wheel into that venv, then its pytest suite
  wasm    build the threaded WebAssembly module into web/pkg (installs the pinned nightly's pieces and
          wasm-bindgen-cli when missing)
  serve   serve web/ on http://127.0.0.1:8000 with cross-origin isolation (--port N, --no-isolation)
  test-browser  only the browser test of `test` (builds the module first; Chromium, node, npm when missing)
  test-wasm     only the wasm32 unit tests of `test` (under node, with wasm-bindgen-test-runner)
  test-mpi      only the MPI part of `test`: Open MPI when missing, clippy with the mpi features, and
                parfit under mpirun on 1–3 ranks against the plain build (tests/tests/mpi.rs)
  bench-wasm    the LV fit, the county fits, the savings projection and the wealth run in headless Chromium
                (1 and 2 workers) and natively (1 and 2 threads); see BENCHMARKS.md";

/// Crates outside the workspace (their own Cargo.toml and lock file) that still get formatted and linted.
const EXTERNAL_CRATES: &[&str] = &[
    "examples/plugin-logistic",
    "examples/plugin-endowment",
    "examples/plugin-gbm",
    "tests/fixtures/plugin-misbehaving",
    "tests/fixtures/plugin-future-abi",
    "tests/fixtures/plugin-abi-v2",
    "fuzz",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(),
        Some("bench") if args.iter().any(|a| a == "--report") => bench::reprint(),
        Some("bench") if args.iter().any(|a| a == "montecarlo") => bench_mc_only(args.iter().any(|a| a == "--peers")),
        Some("bench") if args.iter().any(|a| a == "ode") => suite::ode_only(args.iter().any(|a| a == "--peers")),
        Some("bench") if args.iter().any(|a| a == "lv") => bench::lv(args.iter().any(|a| a == "--peers")),
        Some("bench") if args.iter().any(|a| a == "vensim") => {
            bench_vensim::standalone(args.iter().any(|a| a == "--peers"))
        }
        Some("bench") if args.iter().any(|a| a == "python") => bench_python::bench(&args[1..]),
        Some("bench") => bench::bench(args.iter().any(|a| a == "--peers")),
        Some("bench-savings") => savings_bench::standalone(args.iter().any(|a| a == "--peers")),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("python") => python::install(),
        Some("test-python") => python::test(),
        Some("wasm") => wasm::build(),
        Some("serve") => wasm::serve(&args[1..]),
        Some("test-browser") => {
            setup::debian("the browser test", &[setup::BROWSER]).and_then(|()| wasm::browser_test())
        }
        Some("test-wasm") => setup::debian("the wasm32 unit tests", &[setup::NODE])
            .and_then(|()| setup::rust_tools())
            .and_then(|()| wasm::unit_tests()),
        Some("test-mpi") => mpi::test(),
        Some("bench-wasm") => wasm::bench(),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace root").to_path_buf()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Run a command, echoing it, and fail with its description if it fails.
pub fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("\n$ {shown}");
    let status = cmd.status().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{shown}` failed ({status})")) }
}

fn demo() -> Result {
    run(cargo().args([
        "build",
        "--release",
        "--workspace",
        "--exclude",
        "xtask",
        "--exclude",
        "parfit-tests",
        "--exclude",
        "parfit-wasm",
    ]))?;
    let parfit = target_dir().join("release").join(format!("parfit{}", std::env::consts::EXE_SUFFIX));
    let out = target_dir().join("demo/lotka_volterra");
    run(Command::new(&parfit).current_dir(root()).arg("plugins"))?;
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["fit", "examples/lotka_volterra/fit.toml", "--output"])
        .arg(&out))?;
    println!(
        "\nThe least-squares optimum of the accurate model (scipy least_squares with DOP853 at rtol 1e-12, \
         tests/data/lotka_volterra/optimum.json) is SSE 328.5186 at alpha 1.11640, beta 0.424215, delta 0.0945095, \
         gamma 0.389077.\nPlots and result.json: {}",
        out.display()
    );
    let counties = target_dir().join("demo/counties");
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["fit-many", "examples/counties/fit.toml", "--output"])
        .arg(&counties))?;
    println!(
        "\nEvery US county fitted (the PySD cookbook's aging chain; scipy's L-BFGS-B reference is in \
         tests/data/counties/). Per-county results and histograms: {}",
        counties.display()
    );
    let regions = target_dir().join("demo/regions");
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["fit", "examples/regions/fit.toml", "--output"])
        .arg(regions.join("fit")))?;
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["fit-many", "examples/regions/fit_many.toml", "--output"])
        .arg(regions.join("bootstrap")))?;
    println!(
        "\nThe subscripted Vensim example (50 regions × 10 cohorts, a crowding lookup, a DELAY3) fitted to synthetic \
         data made at fertility 0.032, mortality scale 1.15, migration sensitivity 0.1, perception delay 3, and a \
         bootstrap over 50 replicate censuses: {}",
        regions.display()
    );
    for (example, what) in [
        (
            "dosing",
            "Repeated oral doses as DiffSL events (stop/reset), fitted to synthetic concentrations made at ka 1.2, \
             CL 4, V 35 (least-squares optimum 0.9733, 3.886, 30.51: tests/data/dosing/optimum.json)",
        ),
        (
            "robertson",
            "Robertson's kinetics as a DAE (a mass matrix), its rate constants fitted to synthetic concentrations \
             made at 0.04, 1e4, 3e7 (least-squares optimum 0.039285, 9702.4, 2.95627e7: tests/data/robertson/)",
        ),
    ] {
        let out = target_dir().join("demo").join(example);
        let config = format!("examples/{example}/fit.toml");
        run(Command::new(&parfit).current_dir(root()).args(["fit", &config, "--output"]).arg(&out))?;
        println!("\n{what}: {}", out.display());
    }
    let savings = target_dir().join("demo/savings");
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["run", "examples/savings/run.toml", "--output"])
        .arg(&savings))?;
    println!(
        "\nlifelib's savings model CashValue_ME over its 10,000 model points: present values per point, monthly \
         cash flows, point 1's audit and projection.svg in {}",
        savings.display()
    );
    let savings_100k = target_dir().join("demo/savings-100k");
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["run", "examples/savings/run_100k.toml", "--output"])
        .arg(&savings_100k))?;
    println!(
        "\nThe 100,000 policies of modelx's ipyparallel demo in one pass (totals above; lifelib's are in \
         tests/data/lifelib_savings/result_pv_100K_ipp_demo_totals.csv). Per-point present values: {}",
        savings_100k.display()
    );
    run(Command::new(&parfit).current_dir(root()).args(["run", "examples/wealth/run.toml"]))?;
    println!(
        "\nThe median wealth of 50,000 households after 1,000 periods (QuantEcon \"Parallelization\"); the stationary \
         median is 1.835241 and the 3σ band of a 50,000-household median around it is ± 0.021. Same numbers for any \
         --threads."
    );
    Ok(())
}

/// `cargo xtask bench montecarlo [--peers]`: the Monte Carlo section alone, into target/bench/montecarlo.json.
fn bench_mc_only(peers: bool) -> Result {
    run(cargo().args(["build", "--release", "-p", "parfit-cli", "--bins"]))?;
    bench_mc::build()?;
    let report = bench_mc::bench(peers)?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("montecarlo.json"), text).map_err(|e| format!("montecarlo.json: {e}"))?;
    bench_mc::print(&report);
    Ok(())
}

fn test() -> Result {
    // Everything missing first, in one apt-get run, so a fresh machine fails (or installs) before the long build.
    setup::debian("cargo xtask test", &[setup::MPI, setup::BROWSER])?;
    setup::rust_tools()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    for dir in EXTERNAL_CRATES {
        run(cargo().args(["fmt", "--manifest-path", &format!("{dir}/Cargo.toml"), "--", "--check"]))?;
    }
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    for dir in EXTERNAL_CRATES {
        run(cargo()
            .args(["clippy", "--quiet", "--manifest-path", &format!("{dir}/Cargo.toml"), "--target-dir"])
            .arg(target_dir().join("external-clippy"))
            .args(["--", "-D", "warnings"]))?;
    }
    run(cargo().args(["test", "--workspace"]))?;
    // The Python package: the wheel built and installed into a venv, its pytest suite against the CLI.
    python::test()?;
    // Every fuzz target for 30 s from the examples' seeds (RELIABILITY.md).
    fuzz::fuzz(&[])?;
    // parfit under mpirun on 1–3 ranks against the plain build.
    mpi::test()?;
    // The core (with rayon) and the ODE, Monte Carlo and actuarial plugins must build for the browser; the ABI
    // crate without its host side.
    run(cargo().args([
        "check",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "parfit-core",
        "-p",
        "parfit-expr",
        "-p",
        "parfit-ode",
        "-p",
        "parfit-montecarlo",
        "-p",
        "parfit-actuarial",
    ]))?;
    run(cargo().args(["check", "--target", "wasm32-unknown-unknown", "-p", "parfit-core", "--features", "parallel"]))?;
    // The same crates' pure unit tests, compiled for wasm32 and run under node.
    wasm::unit_tests()?;
    // The threaded module in headless Chromium, against the CLI's numbers.
    wasm::browser_test()?;
    eprintln!("\nall checks passed");
    Ok(())
}
