//! Plugin loading end to end: discovery, third-party plugins, ABI mismatch, panics, non-plugins.

use parfit_abi::core::Model;
use parfit_abi::host::{LoadError, LoadedPlugin};
use parfit_tests::{Run, build_external_plugin, parfit, parfit_bin, parse_csv, root, scratch};

#[test]
fn the_ode_plugin_is_found_next_to_the_executable() {
    let run = parfit(&["plugins"]);
    run.assert_ok();
    assert!(run.stdout.contains("ode ") && run.stdout.contains("kind diffsl [.ds]"), "{}", run.stdout);
    let json = parfit(&["plugins", "--format", "json"]).assert_ok().json();
    let plugins = json["plugins"].as_array().unwrap();
    let ode = plugins.iter().find(|p| p["name"] == "ode").expect("the ode plugin is listed");
    assert_eq!(ode["kinds"][0]["kind"], "diffsl");
    let vensim = plugins.iter().find(|p| p["name"] == "vensim").expect("the Vensim plugin is listed");
    assert_eq!(vensim["kinds"][0]["extensions"][0], "mdl");
}

#[test]
fn a_third_party_plugin_builds_against_the_abi_crate_alone_and_runs() {
    let lib = build_external_plugin("examples/plugin-logistic", "parfit_logistic");
    let lib = lib.to_str().unwrap();
    let listed = parfit(&["--plugin", lib, "plugins"]);
    assert!(listed.assert_ok().stdout.contains("kind logistic"), "{}", listed.stdout);

    let run = parfit(&["--plugin", lib, "run", "examples/plugin-logistic/run.toml", "--set", "K=60"]);
    let (header, rows) = parse_csv(&run.assert_ok().stdout);
    assert_eq!(header, vec!["time", "N"]);
    assert_eq!(rows.len(), 11);
    for row in rows {
        let (t, n) = (row[0], row[1]);
        let exact = 60.0 / (1.0 + (60.0 / 2.0 - 1.0) * (-0.8 * t).exp());
        assert!((n - exact).abs() <= 1e-12 * exact, "t={t}: {n} vs {exact}");
    }
}

#[test]
fn sensitivities_cross_the_abi_and_match_finite_differences() {
    let lib = build_external_plugin("examples/plugin-logistic", "parfit_logistic");
    let plugin = LoadedPlugin::load(&lib).unwrap();
    let model = plugin.create("logistic", "{}").unwrap();
    assert!(model.has_sensitivities());
    assert_eq!(model.stats(&model.workspace()), None, "the logistic model keeps no counters");
    let mut ws = model.workspace();
    let (p, times) = ([0.8, 60.0, 2.0], [0.0, 1.5, 4.0, 9.0]);
    let (mut out, mut sens) = ([0.0; 4], [0.0; 12]);
    model.simulate_sensitivities(&mut ws, &p, &[], &times, &mut out, &mut sens).unwrap();
    for j in 0..3 {
        let h = 1e-6 * p[j];
        let (mut up, mut down) = (p, p);
        up[j] += h;
        down[j] -= h;
        let (mut o_up, mut o_down) = ([0.0; 4], [0.0; 4]);
        model.simulate(&mut ws, &up, &[], &times, &mut o_up).unwrap();
        model.simulate(&mut ws, &down, &[], &times, &mut o_down).unwrap();
        for i in 0..4 {
            let fd = (o_up[i] - o_down[i]) / (2.0 * h);
            assert!((sens[i * 3 + j] - fd).abs() <= 1e-6 * fd.abs().max(1e-3), "d out[{i}] / d p[{j}]");
        }
    }
    // Wrong buffer sizes are refused by the plugin, not written past.
    let err = model.simulate_sensitivities(&mut ws, &p, &[], &times, &mut out, &mut [0.0; 5]).unwrap_err();
    assert!(err.to_string().contains("sensitivity slots"), "{err}");
}

#[test]
fn a_plugin_of_another_abi_version_is_refused_naming_both_versions_and_the_file() {
    let lib = build_external_plugin("tests/fixtures/plugin-future-abi", "parfit_future_abi");
    let err = LoadedPlugin::load(&lib).unwrap_err();
    assert!(matches!(err, LoadError::AbiMismatch { plugin: 999, host: parfit_abi::ABI_VERSION, .. }), "{err}");
    let run = parfit(&["--plugin", lib.to_str().unwrap(), "plugins"]);
    assert_eq!(run.code, 2, "{run:?}");
    let message = run.stderr;
    assert!(message.contains("version 999") && message.contains(&format!("version {}", parfit_abi::ABI_VERSION)));
    assert!(message.contains(lib.to_str().unwrap()), "{message}");
}

/// The third-party projection example: a level-premium endowment portfolio through ABI v3's projection entry
/// point, checked against the equivalence principle and, for a flat mortality table, closed forms.
#[test]
fn a_third_party_projection_plugin_runs_through_the_projection_entry_point() {
    let lib = build_external_plugin("examples/plugin-endowment", "parfit_endowment");
    let lib = lib.to_str().unwrap();
    let listed = parfit(&["--plugin", lib, "plugins"]);
    assert!(listed.assert_ok().stdout.contains("kind endowment"), "{}", listed.stdout);

    let dir = scratch("endowment");
    let out = dir.join("out");
    let run =
        parfit(&["--plugin", lib, "run", "examples/plugin-endowment/run.toml", "--output", out.to_str().unwrap()]);
    run.assert_ok();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let (header, pv) = parse_csv(&read("pv.csv"));
    assert_eq!(header, ["point_id", "pv_premiums", "pv_death_benefits", "pv_maturity_benefits", "pv_net_cashflow"]);
    assert_eq!(pv.len(), 8);
    for row in &pv {
        // Gross premiums are 1.05 × net premiums, whose present value equals the benefits'.
        let benefits = row[2] + row[3];
        assert!((row[1] - 1.05 * benefits).abs() <= 1e-12 * row[1], "{row:?}");
        assert!((row[4] - (row[1] - benefits)).abs() <= 1e-9 * row[1], "{row:?}");
    }
    let totals: serde_json::Value = serde_json::from_str(&read("totals.json")).unwrap();
    let sum: f64 = pv.iter().map(|r| r[1]).sum();
    assert!((totals["totals"]["pv_premiums"].as_f64().unwrap() - sum).abs() <= 1e-9 * sum);
    let (header, cashflows) = parse_csv(&read("cashflows.csv"));
    assert_eq!(header[..2], ["t", "premiums"]);
    assert_eq!(cashflows.len(), 360, "30 years, the longest term");
    assert_eq!(cashflows[0][5], 705.0, "every policy is in force at the start");
    for row in &cashflows {
        assert!((row[4] - (row[1] - row[2] - row[3])).abs() <= 1e-9 * row[1].abs().max(1.0), "{row:?}");
    }
    let (_, audit) = parse_csv(&read("audit.csv"));
    assert_eq!((audit[0][0], audit[0][1]), (40.0, 40.0), "point 3: 40 policies aged 40");
    assert_eq!(audit[119][4], audit[119][1] - audit[119][3], "the survivors mature at the end of the term");

    // One point under a flat q = 0.01: survival and discounting are geometric, so the present values have
    // closed forms.
    let qx: String = (20..=110).map(|age| format!("{age},0.01\n")).collect();
    std::fs::write(dir.join("flat.csv"), format!("age,qx\n{qx}")).unwrap();
    std::fs::write(dir.join("point.csv"), "policy_id,age,term_years,sum_assured,policy_count\n1,40,10,1000,1\n")
        .unwrap();
    std::fs::write(
        dir.join("flat.toml"),
        "[projection]\nkind = \"endowment\"\nmodel_points = \"point.csv\"\n[projection.tables]\nmortality = \
         \"flat.csv\"\n[projection.constants]\ninterest = 0.04\nloading = 0.0\n",
    )
    .unwrap();
    let run = parfit(&["--plugin", lib, "run", dir.join("flat.toml").to_str().unwrap(), "--format", "json"]);
    let totals = run.assert_ok().json()["totals"].clone();
    let (v, p, n) = (1.04f64.powf(-1.0 / 12.0), 0.99f64.powf(1.0 / 12.0), 120);
    let vp_n = (v * p).powi(n);
    let maturity = 1000.0 * vp_n;
    let death = 1000.0 * v * (1.0 - p) * (1.0 - vp_n) / (1.0 - v * p);
    let close = |name: &str, exact: f64| {
        let got = totals[name].as_f64().unwrap();
        assert!((got - exact).abs() <= 1e-11 * exact, "{name}: {got} vs {exact}");
    };
    close("pv_maturity_benefits", maturity);
    close("pv_death_benefits", death);
    close("pv_premiums", maturity + death);
}

#[test]
fn a_version_2_plugin_is_refused_naming_both_versions_and_the_file() {
    assert_eq!(parfit_abi::ABI_VERSION, 3);
    let lib = build_external_plugin("tests/fixtures/plugin-abi-v2", "parfit_abi_v2");
    let err = LoadedPlugin::load(&lib).unwrap_err();
    assert!(matches!(err, LoadError::AbiMismatch { plugin: 2, host: 3, .. }), "{err}");
    let run = parfit(&["--plugin", lib.to_str().unwrap(), "plugins"]);
    assert_eq!(run.code, 2, "{run:?}");
    let message = run.stderr;
    assert!(message.contains("plugin ABI version 2") && message.contains("speaks version 3"), "{message}");
    assert!(message.contains(lib.to_str().unwrap()), "{message}");
}

#[test]
fn a_panicking_plugin_yields_an_error_and_the_host_carries_on() {
    let lib = build_external_plugin("tests/fixtures/plugin-misbehaving", "parfit_misbehaving");
    let plugin = LoadedPlugin::load(&lib).unwrap();
    let model = plugin.create("panics", "{}").unwrap();
    let mut ws = model.workspace();
    let mut out = [0.0];
    let err = model.simulate(&mut ws, &[0.9], &[], &[], &mut out).unwrap_err();
    assert!(err.to_string().contains("panicked") && err.to_string().contains("too large"), "{err}");
    // The same model and workspace keep working after the panic.
    model.simulate(&mut ws, &[0.25], &[], &[], &mut out).unwrap();
    assert_eq!(out[0], 0.25);
    // Typed errors cross the boundary intact.
    let failing = plugin.create("errors", "{}").unwrap();
    let mut ws = failing.workspace();
    let err = failing.simulate(&mut ws, &[0.0], &[], &[], &mut out).unwrap_err();
    let worst = vec![parfit_abi::core::ComponentError { name: "y".into(), value: 2.5, error: 40.0 }];
    assert_eq!(err, parfit_abi::core::SimError::StepTooSmall { t: 3.0, h: 1e-14, worst });
    assert!(err.to_string().contains("at t = 3") && err.to_string().contains("y = 2.5 (40.000)"), "{err}");
    // Unknown kinds are the plugin's error message, not a crash.
    assert_eq!(plugin.create("nope", "{}").err().unwrap(), "no kind 'nope'");
}

/// Monte Carlo paths through ABI v3's paths entry point: the description, blocks placed by index, buffers
/// checked, a panic contained.
#[test]
fn paths_cross_the_abi_through_their_own_entry_point() {
    use parfit_abi::core::paths::PathRunner;
    let lib = build_external_plugin("tests/fixtures/plugin-misbehaving", "parfit_misbehaving");
    let plugin = LoadedPlugin::load(&lib).unwrap();
    assert_eq!(plugin.entry("paths"), Some(parfit_abi::Entry::Paths));
    assert_eq!(plugin.entry("panics"), Some(parfit_abi::Entry::Model));
    let paths = plugin.create_paths("paths", "{}").unwrap();
    assert_eq!(paths.spec().outputs, ["value", "periods"]);
    assert_eq!(paths.spec().params[0].upper, f64::INFINITY, "a null bound is unbounded");
    let mut ws = paths.workspace();
    let mut out = [0.0; 6];
    paths.run(&mut ws, &[0.5], 7, 40, 10, 3, &mut out).unwrap();
    assert_eq!(out, [12.0, 40.0, 12.5, 40.0, 13.0, 40.0]);
    // The plugin checks the buffers against its description.
    let e = paths.run(&mut ws, &[0.5], 7, 40, 10, 2, &mut out).unwrap_err().to_string();
    assert!(e.contains("paths_block: expected 1 parameters and 4 output slots, got 1 and 6"), "{e}");
    let e = paths.run(&mut ws, &[0.5, 1.0], 7, 40, 10, 3, &mut out).unwrap_err().to_string();
    assert!(e.contains("expected 1 parameters"), "{e}");
    let e = paths.run(&mut ws, &[0.5], 7, 40, u64::MAX, 3, &mut out).unwrap_err().to_string();
    assert!(e.contains("overflow the path index"), "{e}");
    // A panic is an error, and the paths keep working.
    let e = paths.run(&mut ws, &[0.5], 13, 40, 0, 3, &mut out).unwrap_err().to_string();
    assert!(e.contains("panicked") && e.contains("unlucky"), "{e}");
    paths.run(&mut ws, &[1.0], 0, 2, 0, 1, &mut out[..2]).unwrap();
    assert_eq!(out[..2], [0.0, 2.0]);
    // A model kind is not paths, and a plugin without paths refuses by the ABI's default.
    assert_eq!(plugin.create_paths("panics", "{}").err().unwrap(), "no paths kind 'panics'");
    let logistic = LoadedPlugin::load(&build_external_plugin("examples/plugin-logistic", "parfit_logistic")).unwrap();
    let e = logistic.create_paths("logistic", "{}").err().unwrap();
    assert_eq!(e, "this plugin makes no Monte Carlo paths of kind 'logistic'");
}

/// A third-party Monte Carlo plugin (geometric Brownian motion) runs through the paths entry point: the log
/// return's mean and sd and the mean price against their closed forms, the same numbers for any chunk size.
#[test]
fn a_third_party_monte_carlo_plugin_runs_through_the_paths_entry_point() {
    let lib = build_external_plugin("examples/plugin-gbm", "parfit_gbm");
    let lib = lib.to_str().unwrap();
    let run = |extra: &[&str]| {
        let args = [&["--plugin", lib, "run", "examples/plugin-gbm/run.toml", "--format", "json"], extra].concat();
        parfit(&args).assert_ok().json()
    };
    let report = run(&[]);
    let stats = &report["points"][0]["statistics"];
    let stat = |output: &str, name: &str| stats[output][name].as_f64().unwrap();
    let (n, t, mu, sigma, s0) = (20_000.0, 10.0, 0.06, 0.25, 100.0);
    let (mean, sd) = ((mu - sigma * sigma / 2.0) * t, sigma * f64::sqrt(t));
    // 4 standard errors of the sample mean and (approximately, for a normal sample) of the sample sd.
    assert!((stat("log_return", "mean") - mean).abs() < 4.0 * sd / f64::sqrt(n), "{stats}");
    assert!((stat("log_return", "sd") - sd).abs() < 4.0 * sd / f64::sqrt(2.0 * n), "{stats}");
    // The price is lognormal: its mean's standard error is s0·e^{μT}·sqrt((e^{σ²T} − 1)/n).
    let price = s0 * f64::exp(mu * t);
    assert!((stat("price", "mean") - price).abs() < 4.0 * price * f64::sqrt(((sigma * sigma * t).exp() - 1.0) / n));
    // Any split of the paths gives the same statistics, bit for bit.
    let chunked = run(&["--threads", "2", "--set", "mu=0.06"]);
    assert_eq!(chunked["points"], report["points"]);
    let dir = scratch("gbm-chunk");
    let text = std::fs::read_to_string(root().join("examples/plugin-gbm/run.toml")).unwrap();
    let config = dir.join("run.toml");
    std::fs::write(&config, text.replace("periods = 120", "periods = 120\nchunk = 333")).unwrap();
    let args = ["--plugin", lib, "run", config.to_str().unwrap(), "--threads", "1", "--format", "json"];
    assert_eq!(parfit(&args).assert_ok().json()["points"], report["points"]);
    // Bad input is the plugin's or the host's error, placed in the configuration.
    std::fs::write(&config, text.replace("kind = \"gbm\"\n", "kind = \"gbm\"\n[model.options]\ncolour = 1\n")).unwrap();
    let bad = parfit(&["--plugin", lib, "run", config.to_str().unwrap()]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("the gbm model takes no option 'colour'"), "{}", bad.stderr);
}

/// The Monte Carlo plugin through the ABI: its model entry refuses (a Monte Carlo model has no times to simulate
/// at) and says what runs it; its paths entry gives the same rows however the paths are split into blocks.
#[test]
fn monte_carlo_runs_only_through_the_paths_entry() {
    use parfit_abi::core::paths::PathRunner;
    let file = format!("{}parfit_montecarlo{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let plugin = LoadedPlugin::load(&parfit_bin().parent().unwrap().join(file)).unwrap();
    assert_eq!(plugin.entry("montecarlo"), Some(parfit_abi::Entry::Paths));
    let source = std::fs::read_to_string(root().join("examples/wealth/wealth.mc")).unwrap();
    let config = serde_json::json!({ "source": source, "source_name": "wealth.mc" }).to_string();
    let e = plugin.create("montecarlo", &config).err().unwrap();
    assert!(e.contains("kind 'montecarlo' is a Monte Carlo model: it runs as paths"), "{e}");
    let paths = plugin.create_paths("montecarlo", &config).unwrap();
    assert_eq!(paths.spec().outputs, ["w"]);
    let params = paths.spec().defaults();
    let mut whole = vec![0.0; 200];
    paths.run(&mut paths.workspace(), &params, 11, 30, 0, 200, &mut whole).unwrap();
    let mut by_blocks = vec![0.0; 200];
    let mut ws = paths.workspace();
    for (first, count) in [(0, 7), (7, 64), (71, 129)] {
        paths.run(&mut ws, &params, 11, 30, first as u64, count, &mut by_blocks[first..first + count]).unwrap();
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&whole), bits(&by_blocks));
    assert!(whole.windows(2).all(|w| w[0] != w[1]), "each path draws its own numbers");
}

#[test]
fn files_that_are_not_plugins_give_clear_errors() {
    let dir = scratch("not-a-plugin");
    let junk = dir.join(format!("{}parfit_junk{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    std::fs::write(&junk, "this is text, not a library").unwrap();
    let run = parfit(&["--plugin", junk.to_str().unwrap(), "plugins"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a loadable shared library") && run.stderr.contains("parfit_junk"), "{run:?}");

    // A real shared library that is not a parfit plugin: the logistic example's build dependency graph gives
    // us none, so use the C maths library every Linux test machine has.
    if let Some(libm) = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
    {
        let run = parfit(&["--plugin", libm, "plugins"]);
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains("not a parfit plugin") && run.stderr.contains("parfit_plugin_entry"), "{run:?}");
    }

    let run = parfit(&["--plugin", "/no/such/plugin.so", "plugins"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("/no/such/plugin.so"), "{run:?}");
}

/// A file named like a plugin that does not load: an error naming it and the loader's reason when its directory
/// is a `--plugin` path, a warning (and the run goes on) when the directory is on `PARFIT_PLUGIN_PATH`.
#[test]
fn a_broken_plugin_file_in_a_plugin_directory_is_reported() {
    let dir = scratch("broken-plugin-dir");
    let name = format!("{}parfit_broken{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let broken = dir.join(&name);
    std::fs::write(&broken, "truncated: not a shared library").unwrap();
    let broken = broken.to_str().unwrap();

    let named = parfit(&["--plugin", dir.to_str().unwrap(), "run", "examples/lotka_volterra/lotka_volterra.ds"]);
    assert_eq!(named.code, 2, "{named:?}");
    // The loader's own reason follows the file's name (glibc: "file too short" or "invalid ELF header").
    let reason = format!("{broken}: not a loadable shared library (");
    assert!(named.stderr.contains(&reason), "{}", named.stderr);
    assert!(named.stdout.is_empty(), "nothing runs: {}", named.stdout);

    let on_path: Run = std::process::Command::new(parfit_bin())
        .current_dir(root())
        .env("PARFIT_PLUGIN_PATH", &dir)
        .args(["run", "examples/lotka_volterra/lotka_volterra.ds", "--times", "0:1:3"])
        .output()
        .unwrap()
        .into();
    on_path.assert_ok();
    assert_eq!(on_path.stderr.matches(&format!("warning: {reason}")).count(), 1, "{}", on_path.stderr);
    assert!(on_path.stderr.contains("; skipped"), "{}", on_path.stderr);
}

/// A projection opens the plugin libraries along the search path only until one makes its kind (each costs
/// milliseconds to map): a library after that one is never opened, so a broken one there goes unreported,
/// while the same directory before the plugin is scanned and its broken file reported as before.
#[test]
fn a_projection_opens_no_plugin_library_after_the_one_that_makes_it() {
    let dir = scratch("after-the-projection-plugin");
    let broken = dir.join(format!("{}parfit_broken{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    std::fs::write(&broken, "truncated: not a shared library").unwrap();
    let warning = format!("warning: {}: not a loadable shared library (", broken.to_str().unwrap());
    let actuarial = parfit_bin().parent().unwrap().join(parfit_abi::host::plugin_file_name("actuarial"));
    let run = |named: bool| -> Run {
        let mut args = vec![];
        if named {
            args.extend(["--plugin", actuarial.to_str().unwrap()]);
        }
        args.extend(["run", "examples/savings/samples.toml", "--format", "csv"]);
        std::process::Command::new(parfit_bin())
            .current_dir(root())
            .env("PARFIT_PLUGIN_PATH", &dir)
            .args(&args)
            .output()
            .unwrap()
            .into()
    };
    let (first, after) = (run(true), run(false));
    first.assert_ok();
    assert!(!first.stderr.contains("warning"), "{}", first.stderr);
    after.assert_ok();
    assert_eq!(after.stderr.matches(&warning).count(), 1, "{}", after.stderr);
    assert_eq!(first.stdout, after.stdout);
}

/// A library in a plugin directory that exports a plugin not named by its file (as a native build of the
/// browser façade, linking the ODE plugin, once did) is not that plugin: skipped, listed by `parfit plugins`,
/// neither shadowing the real plugin nor failing a run, even in a `--plugin` directory. Named as a file, it loads.
#[test]
fn a_library_exporting_another_plugin_s_entry_is_not_taken_for_it() {
    let dir = scratch("linking-library");
    let ode = parfit_abi::host::plugin_file_name("ode");
    assert_eq!(ode, format!("{}parfit_ode{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    let impostor = dir.join(parfit_abi::host::plugin_file_name("facade"));
    std::fs::copy(parfit_bin().parent().unwrap().join(&ode), &impostor).unwrap();
    let listed = parfit(&["--plugin", dir.to_str().unwrap(), "plugins", "--format", "json"]).assert_ok().json();
    let ode_path = listed["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "ode").unwrap()["path"].clone();
    assert_eq!(ode_path.as_str().unwrap(), parfit_bin().parent().unwrap().join(&ode).to_str().unwrap());
    // (A stale native build of the browser façade beside the executable would be listed too.)
    let ignored = listed["ignored"].as_array().unwrap();
    let message = ignored.iter().filter_map(|m| m.as_str()).find(|m| m.starts_with(impostor.to_str().unwrap()));
    let message = message.unwrap_or_else(|| panic!("the copy is not listed as ignored: {listed}"));
    assert!(
        message.starts_with(impostor.to_str().unwrap())
            && message.contains(&format!("exports plugin 'ode', whose library is named {ode}")),
        "{message}"
    );
    assert!(listed["problems"].as_array().unwrap().is_empty(), "{listed}");
    let run = parfit(&[
        "--plugin",
        dir.to_str().unwrap(),
        "run",
        "examples/lotka_volterra/lotka_volterra.ds",
        "--times",
        "0:1:3",
    ]);
    run.assert_ok();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = parfit(&["--plugin", dir.to_str().unwrap(), "plugins"]);
    let text = &run.assert_ok().stdout;
    assert!(text.contains(&format!("skipped: {message}")), "{text}");
    // Named as a file, it is loaded whatever its name.
    let named = parfit(&["--plugin", impostor.to_str().unwrap(), "plugins", "--format", "json"]).assert_ok().json();
    let first = &named["plugins"][0];
    assert_eq!((first["name"].as_str(), first["path"].as_str()), (Some("ode"), impostor.to_str()));
}

/// The Vensim plugin's cdylib, built next to `parfit` by the test helper.
fn aging_chain_library() -> std::path::PathBuf {
    let file = format!("{}parfit_vensim{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    parfit_tests::parfit_bin().parent().unwrap().join(file)
}

fn aging_chain_mdl() -> String {
    std::fs::read_to_string(parfit_tests::root().join("tests/data/aging_chain/Aging_Chain.mdl")).unwrap()
}

/// The Vensim plugin through the C ABI agrees bit for bit with the same model linked directly.
#[test]
fn the_aging_chain_through_the_abi() {
    let plugin = LoadedPlugin::load(&aging_chain_library()).unwrap();
    assert_eq!(plugin.info().name, "vensim");
    assert!(plugin.offers("vensim"));
    let config = serde_json::json!({ "source": aging_chain_mdl(), "source_name": "Aging_Chain.mdl" }).to_string();
    let remote = plugin.create("vensim", &config).unwrap();
    let local = parfit_vensim::VensimModel::compile(&aging_chain_mdl(), "Aging_Chain.mdl", None).unwrap();
    assert_eq!(remote.spec(), local.spec());

    let times: Vec<f64> = (0..=10).map(|y| 2000.0 + y as f64).collect();
    let mut inputs = vec![3375.0, 3630.0, 2461.0, 3407.0, 3283.0, 2319.0, 1637.0, 825.0, 284.0];
    inputs[8] = f64::NAN; // the file's initial value
    let params = local.spec().defaults();
    let run = |m: &dyn parfit_abi::core::Model| {
        let mut ws = m.workspace();
        let mut out = vec![0.0; m.spec().output_len(times.len())];
        m.simulate(&mut ws, &params, &inputs, &times, &mut out).map(|()| out)
    };
    let (a, b) = (run(&remote).unwrap(), run(&local).unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(a[8], 10.0);

    // Errors come back as the same values.
    let mut ws = remote.workspace();
    let mut out = vec![0.0; remote.spec().output_len(1)];
    let err = remote.simulate(&mut ws, &params, &inputs, &[2000.3], &mut out).unwrap_err();
    assert!(matches!(err, parfit_abi::core::SimError::BadInput(m) if m.contains("2000.3")));
    let control = "INITIAL TIME = 0 ~~|\nFINAL TIME = 1 ~~|\nTIME STEP = 1 ~~|\n";
    let source = format!("x = DELAY MATERIAL(1, 2, 0, 0) ~~|\n{control}");
    let bad = serde_json::json!({ "source": source, "source_name": "m.mdl" }).to_string();
    let Err(err) = plugin.create("vensim", &bad) else { panic!("DELAY MATERIAL was accepted") };
    assert!(err.contains("m.mdl:1:5: the Vensim function DELAY MATERIAL is not supported"), "{err}");
}

/// The ODE plugin's forward sensitivities through the C ABI: offered, and agreeing with central differences
/// of the plugin's own simulations (`plugins/ode/tests/sensitivities.rs` checks them tightly).
#[test]
fn ode_sensitivities_through_the_abi() {
    let file = format!("{}parfit_ode{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let plugin = LoadedPlugin::load(&parfit_tests::parfit_bin().parent().unwrap().join(file)).unwrap();
    let source = std::fs::read_to_string(parfit_tests::root().join("tests/data/ode_problems/sir.ds")).unwrap();
    let config = serde_json::json!({ "source": source, "rtol": 1e-11, "atol": 1e-11 }).to_string();
    let model = plugin.create("diffsl", &config).unwrap();
    assert!(model.has_sensitivities());
    let times: Vec<f64> = (0..=20).map(|i| 8.0 * i as f64).collect();
    let p = model.spec().defaults();
    let (np, n) = (p.len(), model.spec().output_len(times.len()));
    let mut ws = model.workspace();
    let (mut out, mut sens) = (vec![0.0; n], vec![0.0; n * np]);
    model.simulate_sensitivities(&mut ws, &p, &[], &times, &mut out, &mut sens).unwrap();
    assert!(model.stats(&ws).unwrap().rhs_evaluations > 0);
    // d I / d infected0 at t = 0 is 1.
    assert_eq!(sens[np + 3], 1.0);
    for j in 0..np {
        let h = 1e-5 * p[j];
        let (mut up, mut down) = (p.clone(), p.clone());
        up[j] += h;
        down[j] -= h;
        let (mut o_up, mut o_down) = (vec![0.0; n], vec![0.0; n]);
        model.simulate(&mut ws, &up, &[], &times, &mut o_up).unwrap();
        model.simulate(&mut ws, &down, &[], &times, &mut o_down).unwrap();
        let scale = (0..n).map(|i| (o_up[i] - o_down[i]).abs() / (2.0 * h)).fold(0.0, f64::max);
        for i in 0..n {
            let fd = (o_up[i] - o_down[i]) / (2.0 * h);
            assert!((sens[i * np + j] - fd).abs() <= 1e-5 * fd.abs().max(1e-3 * scale), "d out[{i}] / d p[{j}]");
        }
    }
    let off = serde_json::json!({ "source": source, "sensitivities": false }).to_string();
    assert!(!plugin.create("diffsl", &off).unwrap().has_sensitivities());
}
