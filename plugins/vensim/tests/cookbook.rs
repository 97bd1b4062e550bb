//! The PySD cookbook's `Aging_Chain.mdl`, unchanged, against PySD 3.14.3's trajectory for county 1
//! (`tests/data/aging_chain/`, made by `make_golden.py`).

use parfit_abi::Plugin;
use parfit_core::{Model, OutputKind};
use parfit_vensim::{Method, VensimModel, VensimPlugin};

fn data(name: &str) -> String {
    let path = format!("{}/../../tests/data/aging_chain/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn aging_chain() -> VensimModel {
    VensimModel::compile(&data("Aging_Chain.mdl"), "tests/data/aging_chain/Aging_Chain.mdl", None).unwrap()
}

/// Rows of a golden CSV: `time, dec_1..dec_9`.
fn golden(name: &str) -> Vec<Vec<f64>> {
    let text = data(name);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert_eq!(header, "time,dec_1,dec_2,dec_3,dec_4,dec_5,dec_6,dec_7,dec_8,dec_9");
    lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect()
}

/// County 1's 2000 counts from the census extract (three header rows, then `state,county,2000 × 9,2010 × 9`).
fn county1_2000() -> Vec<f64> {
    let text = data("census_county1.csv");
    let row: Vec<f64> = text.lines().nth(3).unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(&row[..2], [1.0, 1.0]);
    row[2..11].to_vec()
}

fn run(m: &VensimModel, params: &[f64], inputs: &[f64], times: &[f64]) -> Vec<f64> {
    let mut ws = m.workspace();
    let mut out = vec![f64::NAN; m.spec().output_len(times.len())];
    m.simulate(&mut ws, params, inputs, times, &mut out).unwrap();
    out
}

#[test]
fn the_cookbook_model_parses() {
    let m = aging_chain();
    let spec = m.spec();
    assert_eq!(spec.name, "Aging_Chain");
    let decs: Vec<String> = (1..=9).map(|k| format!("dec {k}")).collect();
    // Every literal constant is a parameter: `births = 0` as well as the nine loss rates.
    let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
    let mut expected = vec!["births".to_string()];
    expected.extend((1..=9).map(|k| format!("dec {k} loss rate")));
    assert_eq!(names, expected);
    assert_eq!(spec.defaults(), [0.0, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]);
    assert!(spec.params.iter().all(|p| p.lower == f64::NEG_INFINITY && p.upper == f64::INFINITY && !p.log_scale));
    assert_eq!(spec.inputs, decs);
    let mut outputs = decs.clone();
    outputs.extend((1..=8).map(|k| format!("bday{k}0")));
    outputs.extend((1..=9).map(|k| format!("dec {k} loss")));
    // The constants close the list, as in Vensim's `.tab`.
    outputs.extend(expected);
    assert_eq!(spec.outputs, outputs);
    assert_eq!(spec.output_kind, OutputKind::TimeSeries);
    assert_eq!(m.method(), Method::Euler);
    assert_eq!(m.n_stocks(), 9);
    let c = m.control();
    assert_eq!((c.initial_time, c.final_time, c.time_step, c.saveper), (2000.0, 2010.0, 0.125, 0.125));
    let save = m.save_times();
    assert_eq!(save.len(), 81);
    assert_eq!((save[0], save[1], save[80]), (2000.0, 2000.125, 2010.0));
}

/// Every Euler step of county 1 at all loss rates 0.05 equals PySD's bit for bit.
#[test]
fn county_1_matches_pysd_at_every_step_bit_for_bit() {
    let m = aging_chain();
    let rows = golden("aging_chain_golden_county1_allsteps.csv");
    assert_eq!(rows.len(), 81);
    let times: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    let out = run(&m, &m.spec().defaults(), &county1_2000(), &times);
    let n_out = m.spec().outputs.len();
    for (i, row) in rows.iter().enumerate() {
        for k in 0..9 {
            let ours = out[i * n_out + k];
            assert_eq!(
                ours.to_bits(),
                row[1 + k].to_bits(),
                "t = {}, dec {}: {ours:e} vs PySD {:e}",
                row[0],
                k + 1,
                row[1 + k]
            );
        }
    }
    // The yearly golden is the same run sampled every 8 steps.
    let yearly = golden("aging_chain_golden_county1.csv");
    let years: Vec<f64> = yearly.iter().map(|r| r[0]).collect();
    let out = run(&m, &m.spec().defaults(), &county1_2000(), &years);
    for (i, row) in yearly.iter().enumerate() {
        assert_eq!(&out[i * n_out..i * n_out + 9], &row[1..]);
    }
}

/// The auxiliaries at a time come from the stocks at that time (Vensim's semantics).
#[test]
fn auxiliaries_are_computed_from_the_stocks_at_the_same_step() {
    let m = aging_chain();
    let out = run(&m, &m.spec().defaults(), &county1_2000(), &[2003.5]);
    let (stocks, aux) = out.split_at(9);
    for k in 0..8 {
        assert_eq!(aux[k], stocks[k] / 10.0, "bday{}0", k + 1);
    }
    for k in 0..9 {
        assert_eq!(aux[8 + k], stocks[k] * 0.05, "dec {} loss", k + 1);
    }
}

/// A NaN input starts that stock from the file's initial value (10 for every decade here).
#[test]
fn nan_inputs_take_the_file_initial_values() {
    let m = aging_chain();
    let mut inputs = county1_2000();
    inputs[3] = f64::NAN;
    let out = run(&m, &m.spec().defaults(), &inputs, &[2000.0]);
    assert_eq!(out[3], 10.0);
    assert_eq!(out[2], inputs[2]);
    let out = run(&m, &m.spec().defaults(), &[f64::NAN; 9], &[2000.0]);
    assert_eq!(&out[..9], &[10.0; 9]);
}

/// The plugin's configuration path builds the same model.
#[test]
fn through_the_plugin_configuration() {
    let info = VensimPlugin::info();
    assert_eq!(info.kinds[0].kind, "vensim");
    assert_eq!(info.kinds[0].extensions, ["mdl"]);
    let config = serde_json::json!({ "source": data("Aging_Chain.mdl"), "source_name": "Aging_Chain.mdl" });
    let m = VensimPlugin::create("vensim", &config.to_string()).unwrap();
    let direct = aging_chain();
    assert_eq!(m.spec(), direct.spec());
    let times = [2000.0, 2005.0, 2010.0];
    let mut ws = m.workspace();
    let mut out = vec![0.0; m.spec().output_len(times.len())];
    m.simulate(&mut ws, &direct.spec().defaults(), &county1_2000(), &times, &mut out).unwrap();
    assert_eq!(out, run(&direct, &direct.spec().defaults(), &county1_2000(), &times));
}

/// `cargo test --release -p parfit-vensim --test cookbook -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn simulate_cost() {
    let m = aging_chain();
    let mut ws = m.workspace();
    let inputs = county1_2000();
    let mut params = m.spec().defaults();
    let times: Vec<f64> = (0..=10).map(|y| 2000.0 + y as f64).collect();
    let mut out = vec![0.0; m.spec().output_len(times.len())];
    let n = 200_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        params[1 + i % 9] = 0.05 + 1e-9 * (i % 7) as f64;
        m.simulate(&mut ws, std::hint::black_box(&params), &inputs, &times, &mut out).unwrap();
        std::hint::black_box(&out);
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "aging chain, 80 Euler steps, 11 output times, native code: {:.2} µs per simulate, {:.1} ns per step",
        per * 1e6,
        per / 80.0 * 1e9
    );
    let options = parfit_vensim::Options { jit: false, ..Default::default() };
    let interpreted = VensimModel::compile_with(&data("Aging_Chain.mdl"), "Aging_Chain.mdl", &options).unwrap();
    assert!(m.is_native() && !interpreted.is_native());
    let mut ws_interpreted = interpreted.workspace();
    let start = std::time::Instant::now();
    for i in 0..n {
        params[1 + i % 9] = 0.05 + 1e-9 * (i % 7) as f64;
        interpreted.simulate(&mut ws_interpreted, std::hint::black_box(&params), &inputs, &times, &mut out).unwrap();
        std::hint::black_box(&out);
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!("the same, interpreted: {:.2} µs per simulate, {:.1} ns per step", per * 1e6, per / 80.0 * 1e9);

    // Baseline for this machine: the same Euler steps hand-written in Rust, in PySD's operation order.
    let hand = |r: &[f64], x: &mut [f64; 9], out: &mut [f64]| {
        for step in 0..=80 {
            if step % 8 == 0 {
                out[(step / 8) * 9..(step / 8) * 9 + 9].copy_from_slice(x);
            }
            if step == 80 {
                break;
            }
            let mut d = [0.0; 9];
            d[0] = (0.0 - x[0] / 10.0) - x[0] * r[1];
            for k in 1..8 {
                d[k] = (x[k - 1] / 10.0 - x[k] / 10.0) - x[k] * r[1 + k];
            }
            d[8] = x[7] / 10.0 - x[8] * r[9];
            for k in 0..9 {
                x[k] += d[k] * 0.125;
            }
        }
    };
    let mut hand_out = vec![0.0; 99];
    let start = std::time::Instant::now();
    for i in 0..n {
        params[1 + i % 9] = 0.05 + 1e-9 * (i % 7) as f64;
        let mut x: [f64; 9] = inputs.clone().try_into().unwrap();
        hand(std::hint::black_box(&params), &mut x, &mut hand_out);
        std::hint::black_box(&hand_out);
    }
    let per_hand = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "hand-written Rust baseline: {:.2} µs per simulate, {:.1} ns per step",
        per_hand * 1e6,
        per_hand / 80.0 * 1e9
    );
    let out = run(&m, &params, &inputs, &times);
    let mut x: [f64; 9] = inputs.clone().try_into().unwrap();
    hand(&params, &mut x, &mut hand_out);
    let n_out = m.spec().outputs.len();
    for (i, row) in hand_out.chunks(9).enumerate() {
        assert_eq!(row, &out[i * n_out..i * n_out + 9]);
    }
}
