//! The projection language's models (`models/cashvalue_me.prj`, `models/basicterm_me.prj`, see LANGUAGE.md)
//! against the hand-written engine on the repository's tables: every monthly quantity and every present value,
//! bit for bit, for the sample points and all 10,000 points of each model. The micro-benchmark (ignored; run
//! with `--ignored --nocapture`, ideally `--release`) times both on the same points.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::time::Instant;

use parfit_actuarial_reference::{
    Constants, Files, Kind, Month, Portfolio, PvSink, Sink, TextFile, audit_columns, project, run_length,
};
use parfit_expr::projection::{
    AttrValue, Attribute, Points, Projection, ProjectionProgram, SCENARIO, Table, ValueKind, compile_projection,
    read_points, read_table, table_declarations,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository as text (gzip-compressed files, `.gz`, decompressed).
fn text(path: &str) -> String {
    if path.ends_with(".gz") {
        use std::io::Read;
        let bytes = std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap_or_else(|e| panic!("{path}: {e}"));
        return s;
    }
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The model's tables as it declares them, read from `files` (table name → repository path) by the
/// language's one reader, and its model points.
fn declared(model: &str, points: &str, files: &[(&str, &str)]) -> (Vec<Table>, Points) {
    let decls = table_declarations(model, &text(model)).unwrap_or_else(|e| panic!("{e}"));
    let mut tables = vec![];
    let mut mp = None;
    for d in &decls {
        if d.name == "mp" {
            mp = Some(read_points(Some(d), points, &text(points)).unwrap_or_else(|e| panic!("{e}")));
            continue;
        }
        let path = files.iter().find(|f| f.0 == d.name).unwrap_or_else(|| panic!("no file for table {}", d.name)).1;
        tables.push(read_table(d, path, &text(path)).unwrap_or_else(|e| panic!("{e}")));
    }
    (tables, mp.expect("the model declares its model points"))
}

/// A model, its tables compiled, the engine's portfolio of the same points and the points' attributes.
struct Case {
    kind: Kind,
    program: ProjectionProgram,
    pf: Portfolio,
    points: Points,
}

fn case(kind: Kind, points: &str, native: bool) -> Case {
    let file = |p: &str| Some(TextFile { name: p.into(), text: text(p) });
    let s = "examples/savings/";
    let mort = ("mort", "examples/savings/mort_table.csv");
    let disc = ("disc_rate_ann", "examples/savings/disc_rate_ann.csv");
    let (model, tables, files) = match kind {
        Kind::CashValue => (
            "plugins/actuarial/models/cashvalue_me.prj",
            vec![
                mort,
                disc,
                ("product", "examples/savings/product_spec_table.csv"),
                ("surr_charge_table", "examples/savings/surr_charge_table.csv"),
                ("std_norm_rand", "examples/savings/std_norm_rand.csv"),
            ],
            Files {
                model_points: file(points),
                product_spec: file(&format!("{s}product_spec_table.csv")),
                mortality: file(&format!("{s}mort_table.csv")),
                surrender_charge: file(&format!("{s}surr_charge_table.csv")),
                discount: file(&format!("{s}disc_rate_ann.csv")),
                scenarios: file(&format!("{s}std_norm_rand.csv")),
                premium: None,
            },
        ),
        Kind::BasicTerm => (
            "plugins/actuarial/models/basicterm_me.prj",
            vec![mort, disc, ("premium_table", "examples/basicterm/basicterm_premium_table.csv")],
            Files {
                model_points: file(points),
                premium: file("examples/basicterm/basicterm_premium_table.csv"),
                mortality: file(&format!("{s}mort_table.csv")),
                discount: file(&format!("{s}disc_rate_ann.csv")),
                ..Files::default()
            },
        ),
    };
    let pf = Portfolio::read(kind, &files, Constants::defaults(kind)).unwrap();
    let (tables, points) = declared(model, points, &tables);
    let mut attributes = points.attributes.clone();
    attributes.push(Attribute { name: SCENARIO.into(), kind: ValueKind::Number });
    let params: Vec<(&str, f64)> = match kind {
        Kind::CashValue => vec![("mort_table_last_age", pf.mortality.last_age as f64)],
        Kind::BasicTerm => vec![],
    };
    let mut program =
        compile_projection(model, &text(model), &attributes, &tables, &params).unwrap_or_else(|e| panic!("{e}"));
    if native {
        program.compile_native().unwrap();
        program.compile_native_setup().unwrap();
        assert!(program.is_native());
    }
    Case { kind, program, pf, points }
}

struct Collect(Vec<Month>);

impl Sink for Collect {
    fn month(&mut self, _t: usize, m: &Month) {
        self.0.push(*m);
    }
}

/// Point `i`'s attributes under scenario 1.
fn values(points: &Points, i: usize) -> Vec<AttrValue<'_>> {
    let mut v = vec![];
    points.row(i, &mut v);
    v.push(AttrValue::Number(1.0));
    v
}

/// The sum of the points' results (each point's in order, points in order), the points run in pairs as the
/// plugin runs them when it computes only present values: ordered by months, neighbours paired.
fn pair_sum(run: &mut Projection, attrs: &[Vec<AttrValue>], months: &[usize]) -> f64 {
    let mut order: Vec<usize> = (0..attrs.len()).collect();
    order.sort_by_key(|&i| months[i]);
    let mut sums = vec![0.0; attrs.len()];
    for pair in order.chunks(2) {
        let i = pair[0];
        match pair.get(1) {
            Some(&j) => {
                run.run_pair((&attrs[i], months[i]), (&attrs[j], months[j])).unwrap();
                sums[i] = run.results().sum::<f64>();
                sums[j] = run.lane_results().sum::<f64>();
            }
            None => {
                run.run(&attrs[i], months[i], None).unwrap();
                sums[i] = run.results().sum::<f64>();
            }
        }
    }
    sums.iter().fold(0.0, |a, b| a + b)
}

/// Every audit column of every month and every present value of each point, compared bit for bit; returns
/// the point-months compared.
fn compare(c: &Case) -> usize {
    let names = audit_columns(c.kind);
    let cells: Vec<&str> = c.program.cells().collect();
    let index: Vec<Option<usize>> = names
        .iter()
        .map(|n| match *n {
            "t" => None,
            n => Some(cells.iter().position(|c| *c == n).unwrap_or_else(|| panic!("the model has no cell '{n}'"))),
        })
        .collect();
    let returns = c.pf.scenario_returns(1).unwrap();
    let mut run = c.program.runner();
    let (mut row, mut monthly) = (vec![0.0; names.len()], vec![]);
    let mut total = 0;
    for (i, p) in c.pf.points.iter().enumerate() {
        let attrs = values(&c.points, i);
        let months = run_length(&c.pf, p);
        let mut engine = Collect(vec![]);
        project(&c.pf, p, returns, months, &mut engine);
        let mut pv = PvSink::default();
        project(&c.pf, p, returns, months, &mut pv);
        monthly.resize(months * cells.len(), 0.0);
        run.run(&attrs, months, Some(&mut monthly)).unwrap();
        for (t, m) in engine.0.iter().enumerate() {
            m.audit(c.kind, &mut row);
            for (j, name) in names.iter().enumerate() {
                let ours = index[j].map_or(t as f64, |k| monthly[t * cells.len() + k]);
                assert_eq!(
                    ours.to_bits(),
                    row[j].to_bits(),
                    "point {} month {t} {name}: {ours} vs engine {}",
                    i + 1,
                    row[j]
                );
            }
        }
        let mut want = vec![0.0; c.program.results().count()];
        pv.write(c.kind, &mut want);
        let got: Vec<f64> = run.results().collect();
        assert_eq!(
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "point {} present values: {got:?} vs engine {want:?}",
            i + 1
        );
        total += months;
    }
    total
}

#[test]
fn cashvalue_me_sample_points_match_the_engine_to_the_bit() {
    for native in [false, true] {
        assert!(compare(&case(Kind::CashValue, "examples/savings/model_point_samples.csv", native)) > 0);
    }
}

#[test]
fn cashvalue_me_all_10000_points_match_the_engine_to_the_bit() {
    for native in [false, true] {
        assert!(compare(&case(Kind::CashValue, "examples/savings/model_point_10000.csv", native)) > 0);
    }
}

#[test]
fn basicterm_me_all_10000_points_match_the_engine_to_the_bit() {
    for native in [false, true] {
        assert!(compare(&case(Kind::BasicTerm, "examples/basicterm/basicterm_me_model_point_table.csv", native)) > 0);
    }
}

/// Nanoseconds per point-month of the engine and of the language, interpreted and native, each computing every
/// present value and result, on the 10,000 points of each model, best of three.
#[test]
#[ignore = "a timing, not a check: cargo test --release -p parfit-actuarial --test language -- --ignored --nocapture"]
fn per_point_month_cost_against_the_engine() {
    for (kind, points) in [
        (Kind::CashValue, "examples/savings/model_point_10000.csv"),
        (Kind::BasicTerm, "examples/basicterm/basicterm_me_model_point_table.csv"),
    ] {
        let (c, native) = (case(kind, points, false), case(kind, points, true));
        let returns = c.pf.scenario_returns(1).unwrap();
        let months: usize = c.pf.points.iter().map(|p| run_length(&c.pf, p)).sum();
        let attrs: Vec<Vec<AttrValue>> = (0..c.points.len()).map(|i| values(&c.points, i)).collect();
        let lengths: Vec<usize> = c.pf.points.iter().map(|p| run_length(&c.pf, p)).collect();
        let mut best = [f64::INFINITY; 4];
        let mut sink = 0.0;
        let mut row = vec![0.0; c.program.results().count()];
        for _ in 0..3 {
            let start = Instant::now();
            for p in &c.pf.points {
                let mut pv = PvSink::default();
                project(&c.pf, p, returns, run_length(&c.pf, p), &mut pv);
                sink += result_sum(c.kind, &pv, &mut row);
            }
            best[0] = best[0].min(start.elapsed().as_secs_f64());
            for (k, program) in [(1, &c.program), (2, &native.program)] {
                let mut run = program.runner();
                let start = Instant::now();
                for (p, a) in c.pf.points.iter().zip(&attrs) {
                    run.run(a, run_length(&c.pf, p), None).unwrap();
                    sink += run.results().sum::<f64>();
                }
                best[k] = best[k].min(start.elapsed().as_secs_f64());
            }
            let mut run = native.program.runner();
            let start = Instant::now();
            sink += pair_sum(&mut run, &attrs, &lengths);
            best[3] = best[3].min(start.elapsed().as_secs_f64());
        }
        let ns = |s: f64| s * 1e9 / months as f64;
        let (policy, month) = c.program.code_size();
        println!(
            "{kind:?}: {months} point-months; ns per point-month: engine {:.1}, language interpreted {:.1} ({:.1}x), \
             native {:.1} ({:.2}x), native in pairs {:.1} ({:.2}x); {policy} instructions per policy, {month} per \
             month [{sink:e}]",
            ns(best[0]),
            ns(best[1]),
            best[1] / best[0],
            ns(best[2]),
            best[2] / best[0],
            ns(best[3]),
            best[3] / best[0],
        );
    }
}

/// The sum of a point's results (lifelib's `result_pv` row), in order: every present value is used, so the
/// optimiser computes all of the engine's month loop (summing one would let it drop the rest).
fn result_sum(kind: Kind, pv: &PvSink, row: &mut [f64]) -> f64 {
    pv.write(kind, row);
    row.iter().sum()
}

/// This thread's CPU time in nanoseconds (Linux's scheduler statistics; 0 elsewhere): timings that other
/// processes on the machine disturb less than wall time.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The engine and the native language model, each computing every present value and result, on the CashValue_ME
/// points of `file`, split over `threads` threads, best of three: (engine, language) wall seconds, (engine,
/// language) CPU seconds and the point-months.
fn cashvalue_race(file: &str, threads: usize) -> ([f64; 2], [f64; 2], usize) {
    let c = case(Kind::CashValue, file, true);
    let returns = c.pf.scenario_returns(1).unwrap();
    let months: usize = c.pf.points.iter().map(|p| run_length(&c.pf, p)).sum();
    let attrs: Vec<Vec<AttrValue>> = (0..c.pf.points.len()).map(|i| values(&c.points, i)).collect();
    let share = c.pf.points.len().div_ceil(threads);
    let (points, attrs) = (c.pf.points.chunks(share).collect::<Vec<_>>(), attrs.chunks(share).collect::<Vec<_>>());
    let (c, returns) = (&c, returns);
    let (mut wall, mut cpu) = ([f64::INFINITY; 2], [f64::INFINITY; 2]);
    let mut sums = [0.0f64; 2];
    for _ in 0..3 {
        for which in 0..2 {
            let start = Instant::now();
            let (sum, ns) = std::thread::scope(|s| {
                let runs: Vec<_> = points
                    .iter()
                    .zip(&attrs)
                    .map(|(&ps, &attrs)| {
                        s.spawn(move || {
                            let start = thread_cpu_ns();
                            let mut sum = 0.0;
                            if which == 0 {
                                let mut row = vec![0.0; c.program.results().count()];
                                for p in ps {
                                    let mut pv = PvSink::default();
                                    project(&c.pf, p, returns, run_length(&c.pf, p), &mut pv);
                                    sum += result_sum(c.kind, &pv, &mut row);
                                }
                            } else {
                                // As the plugin runs present values only: in pairs.
                                let mut run = c.program.runner();
                                let lengths: Vec<usize> = ps.iter().map(|p| run_length(&c.pf, p)).collect();
                                sum = pair_sum(&mut run, attrs, &lengths);
                            }
                            (sum, thread_cpu_ns() - start)
                        })
                    })
                    .collect();
                runs.into_iter().map(|r| r.join().unwrap()).fold((0.0, 0), |(a, b), (x, y)| (a + x, b + y))
            });
            wall[which] = wall[which].min(start.elapsed().as_secs_f64());
            cpu[which] = cpu[which].min(ns as f64 * 1e-9);
            sums[which] = sum;
        }
    }
    assert_eq!(sums[0].to_bits(), sums[1].to_bits(), "the same results");
    (wall, cpu, months)
}

fn report_race(file: &str, threads: usize) {
    let (wall, cpu, months) = cashvalue_race(file, threads);
    let ns = |s: f64| s * 1e9 / months as f64;
    println!(
        "CashValue_ME, {file}, {months} point-months, {threads} threads: wall engine {:.3} s, language native {:.3} s, \
         ratio {:.2}; CPU engine {:.2} ns per point-month, language {:.2} ns, ratio {:.2}",
        wall[0],
        wall[1],
        wall[1] / wall[0],
        ns(cpu[0]),
        ns(cpu[1]),
        cpu[1] / cpu[0]
    );
}

/// Issue 20's acceptance measure: lifelib's 100K CashValue_ME model points on 2 threads, the engine and the
/// native language model in the same run; the ratio is the language's time over the engine's.
#[test]
#[ignore = "a timing, not a check: cargo test --release -p parfit-actuarial --test language -- --ignored --nocapture"]
fn cashvalue_me_100k_points_on_2_threads_against_the_engine() {
    report_race("examples/savings/model_point_100K_ipp_demo.csv.gz", 2);
}

/// The same on the 10,000 points and one thread (quick).
#[test]
#[ignore = "a timing, not a check: cargo test --release -p parfit-actuarial --test language -- --ignored --nocapture"]
fn cashvalue_me_10k_points_on_1_thread_against_the_engine() {
    report_race("examples/savings/model_point_10000.csv", 1);
}
