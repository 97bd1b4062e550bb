//! `cargo xtask wasm` (the threaded WebAssembly build into web/pkg), `cargo xtask serve` (web/ on localhost,
//! cross-origin isolated) and the browser test `cargo xtask test` runs.
//!
//! Threads in the browser need std rebuilt with atomics, which only a nightly toolchain does; it is pinned
//! here, used for this build alone (native builds stay on stable) and installed by rustup when missing, like
//! its rust-src and wasm32 target. wasm-bindgen-cli must be exactly the wasm-bindgen of Cargo.lock; it is built
//! from source by `cargo install` when missing. Nothing downloads a prebuilt binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo, root, run, target_dir};

/// The nightly the threaded build uses (the one the machine image ships), and its `rustc --version` stamp.
const NIGHTLY: &str = "nightly-2026-05-20";
const NIGHTLY_STAMP: &str = "(e50aa6fba 2026-05-19)";

/// playwright-core drives Debian's chromium in the browser test; installed under the target directory.
const PLAYWRIGHT_CORE: &str = "1.65.1";

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Shared memory, and the thread-local-storage exports wasm-bindgen-rayon's workers need; since nightly
/// 2025-10-03 the atomics feature no longer implies them.
const RUSTFLAGS: &str = "-C target-feature=+atomics,+bulk-memory,+mutable-globals \
    -C link-arg=--shared-memory -C link-arg=--max-memory=1073741824 -C link-arg=--import-memory \
    -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align \
    -C link-arg=--export=__tls_base";

/// The bundled example files the demo page loads (copied into web/pkg/examples).
const EXAMPLES: &[&str] = &[
    "lotka_volterra/fit.toml",
    "lotka_volterra/lotka_volterra.ds",
    "lotka_volterra/data.csv",
    "dosing/fit.toml",
    "dosing/dosing.ds",
    "dosing/data.csv",
    "robertson/fit.toml",
    "robertson/robertson.ds",
    "robertson/data.csv",
    "counties/fit.toml",
    "counties/Aging_Chain.mdl",
    "counties/Males_by_decade_and_county.csv",
    "regions/fit_many.toml",
    "regions/population.mdl",
    "regions/replicates.csv",
    // lifelib's 10,000 model points and tables (the 100K portfolio would add 3.6 MB to the page's download).
    "savings/run.toml",
    "savings/model_point_10000.csv",
    "savings/product_spec_table.csv",
    "savings/mort_table.csv",
    "savings/surr_charge_table.csv",
    "savings/disc_rate_ann.csv",
    "savings/std_norm_rand.csv",
    // A model file with its own table; it reads the savings tables above (../savings/…).
    "dynamic_lapse/run.toml",
    "dynamic_lapse/dynamic_lapse.prj",
    "dynamic_lapse/competitor_rate.csv",
    "wealth/run.toml",
    "wealth/sweep.toml",
    "wealth/wealth.mc",
];

pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A rustup command with the outer cargo's toolchain choice removed, so the named toolchain is used.
pub(crate) fn rustup() -> Command {
    let mut cmd = Command::new("rustup");
    for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO", "RUSTC_WRAPPER", "RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    cmd.current_dir(root());
    cmd
}

/// The pinned nightly's toolchain name, installing it when missing (the wasm build and the fuzz targets use it).
/// The image's `nightly` is used when it is the pinned build.
pub(crate) fn pinned_nightly() -> Result<&'static str> {
    let stamp = |tc: &str| output(rustup().args(["run", tc, "rustc", "--version"]));
    if stamp("nightly").is_some_and(|s| s.contains(NIGHTLY_STAMP)) {
        return Ok("nightly");
    }
    if stamp(NIGHTLY).is_none() {
        run(rustup().args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]))
            .map_err(|e| format!("{e}\nthis needs the {NIGHTLY} toolchain (rustup)"))?;
    }
    Ok(NIGHTLY)
}

/// The pinned nightly with rust-src and the wasm32 target, installed when missing.
fn nightly() -> Result<String> {
    let toolchain = pinned_nightly()?;
    let installed = |what: &str| output(rustup().args([what, "list", "--installed", "--toolchain", toolchain]));
    if !installed("component").is_some_and(|s| s.lines().any(|l| l.starts_with("rust-src"))) {
        run(rustup().args(["component", "add", "rust-src", "--toolchain", toolchain]))?;
    }
    if !installed("target").is_some_and(|s| s.lines().any(|l| l.trim() == WASM_TARGET)) {
        run(rustup().args(["target", "add", WASM_TARGET, "--toolchain", toolchain]))?;
    }
    Ok(toolchain.to_string())
}

/// The wasm-bindgen version Cargo.lock pins.
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_string());
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".into())
}

/// `wasm-bindgen` at exactly the locked version, built from source when missing.
fn wasm_bindgen() -> Result<PathBuf> {
    let version = locked_wasm_bindgen()?;
    let bin = home_cargo_bin().join("wasm-bindgen");
    let have = |p: &Path| output(Command::new(p).arg("--version")).is_some_and(|s| s.trim().ends_with(&version));
    if have(&bin) {
        return Ok(bin);
    }
    if have(Path::new("wasm-bindgen")) {
        return Ok("wasm-bindgen".into());
    }
    eprintln!("\nwasm-bindgen-cli {version} (the version in Cargo.lock) is missing: building it (a few minutes)");
    run(cargo()
        .args(["install", "wasm-bindgen-cli", "--version", &format!("={version}"), "--target-dir"])
        .arg(target_dir().join("tools-build")))?;
    Ok(bin)
}

/// `wasm-bindgen-test-runner` of the locked version (it comes with wasm-bindgen-cli).
fn test_runner() -> Result<PathBuf> {
    let bindgen = wasm_bindgen()?;
    Ok(match bindgen.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("wasm-bindgen-test-runner"),
        _ => "wasm-bindgen-test-runner".into(),
    })
}

/// The crates whose pure unit tests also run on wasm32 (single-threaded, stable, under node).
const WASM_TESTED: &[&str] = &[
    "parfit-core",
    "parfit-expr",
    "parfit-ode",
    "parfit-montecarlo",
    "parfit-actuarial",
    "parfit-actuarial-reference",
    "parfit-vensim",
];

/// Run the core's and the plugins' unit tests compiled for wasm32-unknown-unknown under node with
/// wasm-bindgen-test-runner; fails unless every test binary passed and the tests counted are not zero.
pub fn unit_tests() -> Result {
    let runner = test_runner()?;
    if Command::new("node").arg("--version").output().is_err() {
        return Err("the wasm unit tests run under node (Debian: apt-get install nodejs)".into());
    }
    let mut cmd = cargo();
    cmd.args(["test", "--target", WASM_TARGET, "--lib", "--tests"]);
    for krate in WASM_TESTED {
        cmd.args(["-p", krate]);
    }
    cmd.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", &runner);
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("\n$ {shown}");
    let out = cmd.stderr(std::process::Stdio::inherit()).output().map_err(|e| format!("`{shown}`: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        return Err(format!("the wasm unit tests failed ({})", out.status));
    }
    // "test result: ok. 107 passed; 0 failed; 3 ignored; …" per test binary.
    let count = |word: &str| -> usize {
        stdout
            .lines()
            .filter(|l| l.starts_with("test result:"))
            .filter_map(|l| l.split(';').find(|p| p.trim().ends_with(word)))
            .filter_map(|p| p.trim().split(' ').rev().nth(1)?.parse::<usize>().ok())
            .sum()
    };
    let (passed, ignored) = (count("passed"), count("ignored"));
    if passed == 0 {
        return Err("the wasm unit tests ran no test".into());
    }
    eprintln!(
        "\nwasm32 unit tests: {passed} passed, {ignored} ignored (timing runs; tests that need threads or a clock)"
    );
    Ok(())
}

fn home_cargo_bin() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin")
}

/// Build the threaded module and its JavaScript into web/pkg, with the example files the page loads.
pub fn build() -> Result {
    let toolchain = nightly()?;
    let bindgen = wasm_bindgen()?;
    // Its own target directory: nightly's host artifacts would otherwise invalidate stable's.
    let target = target_dir().join("wasm-threads");
    run(rustup()
        // The crate is an rlib (its native cdylib would look like a plugin): the module is its cdylib, asked for here.
        .args([
            "run",
            &toolchain,
            "cargo",
            "rustc",
            "--release",
            "-p",
            "parfit-wasm",
            "--lib",
            "--crate-type",
            "cdylib",
        ])
        .args(["--target", WASM_TARGET])
        .args(["-Z", "build-std=panic_abort,std", "--target-dir"])
        .arg(&target)
        .env("RUSTFLAGS", RUSTFLAGS)
        // The browser has no unwinding; the native release profile unwinds for the plugin ABI.
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        // Line tables would triple the download.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false"))?;
    let pkg = root().join("web/pkg");
    let module = target.join(WASM_TARGET).join("release/parfit_wasm.wasm");
    run(Command::new(&bindgen).args(["--target", "web", "--out-dir"]).arg(&pkg).arg(&module))?;
    for file in EXAMPLES {
        let to = pkg.join("examples").join(file);
        std::fs::create_dir_all(to.parent().expect("a file has a folder")).map_err(|e| e.to_string())?;
        std::fs::copy(root().join("examples").join(file), &to).map_err(|e| format!("examples/{file}: {e}"))?;
    }
    eprintln!(
        "\nbuilt {} ({} KiB)",
        pkg.display(),
        std::fs::metadata(pkg.join("parfit_wasm_bg.wasm")).map_or(0, |m| m.len() / 1024)
    );
    Ok(())
}

/// `cargo xtask serve [--port N] [--no-isolation]`.
pub fn serve(args: &[String]) -> Result {
    let mut port = 8000;
    let mut isolated = true;
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).ok_or("--port needs a number")?,
            "--no-isolation" => isolated = false,
            other => return Err(format!("serve: unknown option '{other}'")),
        }
    }
    if !root().join("web/pkg/parfit_wasm.js").exists() {
        return Err("web/pkg is missing: run `cargo xtask wasm` first".into());
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("127.0.0.1:{port}: {e}"))?;
    println!(
        "serving {} on http://127.0.0.1:{port}/ ({}); Ctrl-C stops",
        root().join("web").display(),
        if isolated { "cross-origin isolated" } else { "not isolated: single-threaded" }
    );
    serve_on(listener, root().join("web"), isolated);
    Ok(())
}

/// Answer GET requests for files under `dir` until the process ends, one thread per connection.
pub fn serve_on(listener: TcpListener, dir: PathBuf, isolated: bool) {
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let _ = answer(stream, &dir, isolated);
        });
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

/// One connection: requests are answered in turn (keep-alive) until the client closes.
fn answer(stream: TcpStream, dir: &Path, isolated: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
        let mut parts = request.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let path = target.split(['?', '#']).next().unwrap_or("/");
        let relative = Path::new(path.trim_start_matches('/'));
        // Only plain names below `dir`: no `..`, no absolute paths.
        let safe = relative.components().all(|c| matches!(c, Component::Normal(_)));
        let mut file = dir.join(relative);
        if file.is_dir() {
            file = file.join("index.html");
        }
        let (status, body, kind) = match (method, safe, std::fs::read(&file)) {
            ("GET" | "HEAD", true, Ok(bytes)) => ("200 OK", bytes, content_type(&file)),
            ("GET" | "HEAD", _, _) => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
            _ => ("405 Method Not Allowed", b"GET only\n".to_vec(), "text/plain"),
        };
        let isolation = if isolated {
            "Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n\
             Cross-Origin-Resource-Policy: same-origin\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{isolation}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        if method != "HEAD" {
            stream.write_all(&body)?;
        }
    }
}

/// playwright-core under the target directory (npm, pinned); returns its package directory.
fn playwright_core() -> Result<PathBuf> {
    let prefix = target_dir().join("browser-test");
    let package = prefix.join("node_modules/playwright-core");
    let version = std::fs::read_to_string(package.join("package.json")).unwrap_or_default();
    if !version.contains(&format!("\"version\": \"{PLAYWRIGHT_CORE}\"")) {
        std::fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
        run(Command::new("npm")
            .args(["install", "--no-save", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!("playwright-core@{PLAYWRIGHT_CORE}")))
        .map_err(|e| format!("{e}\nthe browser test needs npm (Debian: apt-get install npm)"))?;
    }
    Ok(package)
}

pub fn chromium() -> Result<PathBuf> {
    let candidates = [std::env::var_os("CHROMIUM").map(PathBuf::from), Some("/usr/bin/chromium".into())];
    candidates.into_iter().flatten().find(|p| p.exists()).ok_or_else(|| {
        "the browser test needs Debian's chromium (apt-get install chromium) or CHROMIUM=/path/to/chrome".into()
    })
}

/// The CLI's answers for the page's jobs, written to `out`: the LV, dosing and Robertson fits (2 threads), the first `counties`
/// rows of the county fits, the regional bootstrap (`regions/results`), the savings and dynamic-lapse projections (totals.json, result_cf.csv, result_pols.csv) and the wealth runs (JSON).
fn cli_reference(out: &Path, counties: usize) -> Result {
    run(cargo().args(["build", "-p", "parfit-cli", "-p", "parfit-ode", "-p", "parfit-vensim"]))?;
    run(cargo().args(["build", "-p", "parfit-montecarlo", "-p", "parfit-actuarial"]))?;
    let parfit = target_dir().join("debug").join(format!("parfit{}", std::env::consts::EXE_SUFFIX));
    for (config, file) in [
        ("examples/lotka_volterra/fit.toml", "lv.json"),
        ("examples/dosing/fit.toml", "dosing.json"),
        ("examples/robertson/fit.toml", "robertson.json"),
    ] {
        let fit = Command::new(&parfit)
            .current_dir(root())
            .args(["fit", config, "--threads", "2", "--format", "json"])
            .output()
            .map_err(|e| e.to_string())?;
        if !fit.status.success() {
            return Err(format!("parfit fit {config}: {}", String::from_utf8_lossy(&fit.stderr)));
        }
        std::fs::write(out.join(file), &fit.stdout).map_err(|e| e.to_string())?;
    }
    for (config, file) in
        [("examples/wealth/run.toml", "wealth.json"), ("examples/wealth/sweep.toml", "wealth-sweep.json")]
    {
        let mc = Command::new(&parfit)
            .current_dir(root())
            .args(["run", config, "--threads", "2", "--format", "json"])
            .output()
            .map_err(|e| e.to_string())?;
        if !mc.status.success() {
            return Err(format!("parfit run {config}: {}", String::from_utf8_lossy(&mc.stderr)));
        }
        std::fs::write(out.join(file), &mc.stdout).map_err(|e| e.to_string())?;
    }
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["run", "examples/savings/run.toml", "--threads", "2", "--output"])
        .arg(out.join("savings")))?;
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["run", "examples/dynamic_lapse/run.toml", "--threads", "2", "--output"])
        .arg(out.join("dynamic_lapse")))?;
    run(Command::new(&parfit)
        .current_dir(root())
        .args(["fit-many", "examples/regions/fit_many.toml", "--threads", "2", "--output"])
        .arg(out.join("regions/results")))?;

    // The same configuration over a table of the first rows (3 header rows).
    let dir = out.join("counties");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for file in ["fit.toml", "Aging_Chain.mdl"] {
        std::fs::copy(root().join("examples/counties").join(file), dir.join(file)).map_err(|e| e.to_string())?;
    }
    let table = std::fs::read_to_string(root().join("examples/counties/Males_by_decade_and_county.csv"))
        .map_err(|e| e.to_string())?;
    let head: Vec<&str> = table.lines().take(3 + counties).collect();
    std::fs::write(dir.join("Males_by_decade_and_county.csv"), head.join("\n") + "\n").map_err(|e| e.to_string())?;
    run(Command::new(&parfit)
        .current_dir(root())
        .arg("fit-many")
        .arg(dir.join("fit.toml"))
        .args(["--threads", "2", "--output"])
        .arg(dir.join("results")))
}

/// Build the module, serve web/ on a free port, and run the browser test against the CLI's answers.
pub fn browser_test() -> Result {
    build()?;
    let package = playwright_core()?;
    let chromium = chromium()?;
    let out = target_dir().join("browser-test");
    let counties = 40;
    cli_reference(&out, counties)?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    // And without the isolation headers, where the page must run single-threaded.
    let plain = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let plain_port = plain.local_addr().map_err(|e| e.to_string())?.port();
    let web = root().join("web");
    let web_plain = web.clone();
    std::thread::spawn(move || serve_on(listener, web, true));
    std::thread::spawn(move || serve_on(plain, web_plain, false));
    run(Command::new("node")
        .arg(root().join("web/test/browser.mjs"))
        .env("PARFIT_URL", format!("http://127.0.0.1:{port}/"))
        .env("PARFIT_URL_PLAIN", format!("http://127.0.0.1:{plain_port}/"))
        .env("PLAYWRIGHT_CORE", &package)
        .env("CHROMIUM", &chromium)
        .env("PARFIT_EXPECTED", &out)
        .env("PARFIT_COUNTIES", counties.to_string()))
}

/// The workloads `bench-wasm` times (the page's names).
const JOBS: [&str; 4] = ["lv", "counties", "projection", "wealth"];

/// `cargo xtask bench-wasm`: the LV fit, the county fits, the savings projection (10K points) and the Monte Carlo
/// wealth run in headless Chromium with 1 and 2 workers, and natively (release `parfit`) with 1 and 2 threads;
/// medians of the seconds each run reports.
pub fn bench() -> Result {
    let reps = 5;
    build()?;
    let package = playwright_core()?;
    let chromium = chromium()?;
    run(cargo().args(["build", "--release", "-p", "parfit-cli", "-p", "parfit-ode", "-p", "parfit-vensim"]))?;
    run(cargo().args(["build", "--release", "-p", "parfit-montecarlo", "-p", "parfit-actuarial"]))?;
    let parfit = target_dir().join("release").join(format!("parfit{}", std::env::consts::EXE_SUFFIX));
    let scratch = target_dir().join("bench/wasm-native");
    let mut native = serde_json::Map::new();
    for threads in ["1", "2"] {
        for (workload, args) in [
            ("lv", vec!["fit", "examples/lotka_volterra/fit.toml"]),
            ("counties", vec!["fit-many", "examples/counties/fit.toml", "--output"]),
            ("projection", vec!["run", "examples/savings/run.toml"]),
            ("wealth", vec!["run", "examples/wealth/run.toml"]),
        ] {
            let mut seconds = Vec::new();
            for _ in 0..reps {
                let mut cmd = Command::new(&parfit);
                cmd.current_dir(root()).args(&args);
                if workload == "counties" {
                    cmd.arg(&scratch);
                }
                let out = cmd.args(["--threads", threads, "--format", "json"]).output().map_err(|e| e.to_string())?;
                let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .map_err(|e| format!("parfit {workload}: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
                seconds.push(report["seconds"].as_f64().unwrap_or(f64::NAN));
            }
            eprintln!("native {workload} {threads} thread(s): {seconds:?} s");
            native.insert(format!("{workload}_{threads}"), seconds.into());
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let web = root().join("web");
    std::thread::spawn(move || serve_on(listener, web, true));
    let out = Command::new("node")
        .arg(root().join("web/test/bench.mjs"))
        .env("PARFIT_URL", format!("http://127.0.0.1:{port}/"))
        .env("PLAYWRIGHT_CORE", &package)
        .env("CHROMIUM", &chromium)
        .env("PARFIT_REPS", reps.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let wasm: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("bench.mjs: {e}"))?;
    let med = |v: &serde_json::Value| {
        crate::bench::median(v.as_array().into_iter().flatten().filter_map(|x| x.as_f64()).collect())
    };
    println!("\nmedian seconds of {reps} runs (each run's own clock)\n");
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "job", "native 1", "native 2", "wasm 1", "wasm 2", "wasm1/native1", "wasm 1/2"
    );
    for job in JOBS {
        let n1 = med(&native[&format!("{job}_1")]);
        let n2 = med(&native[&format!("{job}_2")]);
        let w1 = med(&wasm[format!("{job}_1")]);
        let w2 = med(&wasm[format!("{job}_2")]);
        println!("{job:<10} {n1:>12.3} {n2:>12.3} {w1:>12.3} {w2:>12.3} {:>14.2} {:>14.2}", w1 / n1, w1 / w2);
    }
    let path = target_dir().join("bench/wasm.json");
    std::fs::create_dir_all(path.parent().expect("has a folder")).map_err(|e| e.to_string())?;
    let doc = serde_json::json!({ "native": native, "wasm": wasm, "repetitions": reps });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap_or_default()).map_err(|e| e.to_string())?;
    println!("\nwrote {}", path.display());
    Ok(())
}
