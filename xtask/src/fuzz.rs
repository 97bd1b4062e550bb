//! `cargo xtask fuzz [--seconds N] [target…]`: the cargo-fuzz targets of `fuzz/` (libFuzzer), built with the
//! pinned nightly and run for N seconds each from seeds made from the examples, with a fixed seed, a memory
//! limit and a per-input timeout; any crash, timeout or out-of-memory fails with the saved input's path.
//!
//! Each run starts from the seeds alone (a fresh corpus under target/fuzz/corpus), so a run is reproducible up
//! to its time limit; crashing inputs are kept in fuzz/artifacts/<target>/ (gitignored).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::wasm::{output, pinned_nightly, rustup};
use crate::{Result, cargo, root, run, target_dir};

/// Seconds per target when `--seconds` is not given (the pass `cargo xtask test` runs).
const DEFAULT_SECONDS: u64 = 30;
/// libFuzzer's limits: an input running longer than this is a hang, a process above this RSS is out of memory.
const TIMEOUT_SECONDS: u64 = 10;
const RSS_LIMIT_MB: u64 = 2048;
/// libFuzzer's random seed, fixed so a run replays the same mutations.
const SEED: u64 = 1;
/// Tables used as seeds are cut to their first lines: mutations of a short table reach the same code faster.
const SEED_LINES: usize = 60;

/// A fuzz target and its seeds: the files named in `sources` (paths below the workspace root), and under those
/// that are directories every file whose name ends with `extension`; a Markdown file gives each of its fenced
/// ```toml blocks (the configuration reference). A `named` seed starts with the file's path below `examples/` on
/// a line of its own (the projection target takes one file of an example, named so).
struct Target {
    name: &'static str,
    sources: &'static [&'static str],
    extension: &'static str,
    named: bool,
}

const TARGETS: [Target; 7] = [
    Target {
        name: "diffsl",
        sources: &["examples", "tests/data", "plugins/ode/tests"],
        extension: ".ds",
        named: false,
    },
    Target { name: "montecarlo", sources: &["examples"], extension: ".mc", named: false },
    Target {
        name: "vensim",
        sources: &["examples", "tests/data", "plugins/vensim/tests/test-models"],
        extension: ".mdl",
        named: false,
    },
    Target {
        name: "config",
        sources: &["examples", "README.md", "plugins/montecarlo/README.md"],
        extension: ".toml",
        named: false,
    },
    Target {
        name: "observations",
        sources: &["examples/lotka_volterra/data.csv", "tests/data/ode_problems"],
        extension: ".csv",
        named: false,
    },
    Target {
        name: "cases",
        sources: &["examples/counties/Males_by_decade_and_county.csv", "tests/data/aging_chain/census_county1.csv"],
        extension: ".csv",
        named: false,
    },
    Target {
        name: "projection",
        sources: &[
            "examples/savings/samples.toml",
            "examples/basicterm/run.toml",
            "examples/savings",
            "examples/basicterm",
        ],
        extension: ".csv",
        named: true,
    },
];

/// What one target's run did: its executions in how many seconds, and the failure that ended it early.
struct Outcome {
    name: &'static str,
    seconds: f64,
    executions: u64,
    failure: Option<String>,
}

/// `args`: `--seconds N` and target names (none: every target).
pub fn fuzz(args: &[String]) -> Result {
    let mut seconds = DEFAULT_SECONDS;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or(format!("--seconds {value}: not a whole number of seconds ≥ 1"))?;
            }
            name => match TARGETS.iter().find(|t| t.name == name) {
                Some(t) => chosen.push(t),
                None => {
                    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                    return Err(format!("unknown fuzz target '{name}' (the targets: {})", names.join(", ")));
                }
            },
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().collect();
    }
    let toolchain = pinned_nightly()?;
    install_cargo_fuzz(toolchain)?;
    let mut build = rustup();
    build.args(["run", toolchain, "cargo", "fuzz", "build", "--sanitizer", "none", "--target-dir"]);
    run(build.arg(fuzz_dir()).current_dir(root().join("fuzz")))?;
    let outcomes = chosen.into_iter().map(|t| run_target(t, seconds)).collect::<Result<Vec<_>>>()?;
    eprintln!("\nfuzzing:");
    for o in &outcomes {
        let status = if o.failure.is_some() { "FAILED" } else { "ok" };
        eprintln!(
            "  {:<14} {:>11} executions in {:>5.0} s ({:>7.0}/s)  {status}",
            o.name,
            o.executions,
            o.seconds,
            o.executions as f64 / o.seconds
        );
    }
    let failures: Vec<&str> = outcomes.iter().filter_map(|o| o.failure.as_deref()).collect();
    if failures.is_empty() {
        eprintln!("no crash, timeout or out-of-memory");
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// Where the fuzz build and its runs keep their files.
fn fuzz_dir() -> PathBuf {
    target_dir().join("fuzz")
}

/// `cargo fuzz`, installed (built from source, at its locked dependencies) when missing.
fn install_cargo_fuzz(toolchain: &str) -> Result {
    if output(rustup().args(["run", toolchain, "cargo", "fuzz", "--version"])).is_some() {
        return Ok(());
    }
    run(cargo().args(["install", "cargo-fuzz", "--locked"]))
        .map_err(|e| format!("{e}\nthe fuzz targets need cargo-fuzz (cargo install cargo-fuzz --locked)"))
}

/// Run one target for `seconds` from fresh seeds. A crash, hang or out-of-memory is the outcome's failure, naming
/// the saved input; an error is a run that could not be made.
fn run_target(target: &Target, seconds: u64) -> Result<Outcome> {
    let dir = fuzz_dir();
    let seeds = dir.join("seeds").join(target.name);
    let corpus = dir.join("corpus").join(target.name);
    let artifacts = root().join("fuzz/artifacts").join(target.name);
    for d in [&seeds, &corpus] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
    }
    for d in [&seeds, &corpus, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let n_seeds = write_seeds(target, &seeds)?;
    let dictionary = write_dictionary(target, &dir)?;
    let binary = dir.join(host_triple()?).join("release").join(target.name);
    let log = dir.join(format!("{}.log", target.name));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    eprintln!("\nfuzzing {} for {seconds} s from {n_seeds} seeds (log: {})", target.name, log.display());
    let started = Instant::now();
    let status = Command::new(&binary)
        .arg(&corpus)
        .arg(&seeds)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-seed={SEED}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .args(dictionary.map(|d| format!("-dict={}", d.display())))
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let failure = (!status.success()).then(|| failure(target.name, &text, &log));
    // libFuzzer prints its final statistics after a crash too, though not after a signal it cannot handle (a
    // stack overflow), which is a failure anyway.
    let executions = text
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok());
    let executions = match (executions, &failure) {
        (Some(n), _) => n,
        (None, Some(_)) => 0,
        (None, None) => return Err(format!("{}: libFuzzer printed no execution count", log.display())),
    };
    Ok(Outcome { name: target.name, seconds, executions, failure })
}

/// The failure libFuzzer reported: what happened (the panic or libFuzzer's own line) and the saved input.
fn failure(name: &str, log: &str, log_path: &Path) -> String {
    let what = log
        .lines()
        .find(|l| {
            l.contains("panicked at")
                || l.contains("memory allocation of")
                || l.starts_with("==") && l.contains("ERROR: libFuzzer")
        })
        .unwrap_or("the target failed");
    let panic_message = log.lines().skip_while(|l| !l.contains("panicked at")).nth(1).unwrap_or("");
    let input = log
        .lines()
        .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim().to_string()))
        .unwrap_or_else(|| "(no input saved)".into());
    format!(
        "fuzz target {name} failed: {}\n{panic_message}\ninput: {input}\nfull log: {}\nreplay: {} {input}",
        what.trim(),
        log_path.display(),
        fuzz_dir().join(host_triple().unwrap_or_default()).join("release").join(name).display()
    )
}

/// The seed files of `target`, written into `dir`; returns how many.
fn write_seeds(target: &Target, dir: &Path) -> Result<usize> {
    let mut files = Vec::new();
    for source in target.sources {
        let path = root().join(source);
        if path.is_dir() { collect(&path, target.extension, &mut files)? } else { files.push(path) }
    }
    files.sort();
    let mut n = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let texts = if name.ends_with(".md") {
            toml_blocks(&text)
        } else if name.ends_with(".mdl") {
            vec![before_sketch(&text)]
        } else {
            vec![head(&text, SEED_LINES)]
        };
        for text in texts {
            let mut seed = String::new();
            if target.named {
                let below = file.strip_prefix(root().join("examples")).unwrap_or(file);
                seed.push_str(&below.to_string_lossy());
                seed.push('\n');
            }
            seed.push_str(&text);
            std::fs::write(dir.join(format!("{n:02}-{name}")), seed).map_err(|e| format!("{}: {e}", dir.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// TOML values at the edges of what a number can say, for the dictionary.
const TOML_EDGES: [&str; 8] = ["0", "-1", "0.0", "1e308", "nan", "inf", "-inf", "9223372036854775807"];

/// For a target seeded from Markdown (the configuration reference): a libFuzzer dictionary of the reference's
/// section headers, keys and quoted values, and TOML's edge values, so mutations can write any key or choice.
fn write_dictionary(target: &Target, dir: &Path) -> Result<Option<PathBuf>> {
    let mut tokens = std::collections::BTreeSet::new();
    for source in target.sources.iter().filter(|s| s.ends_with(".md")) {
        let path = root().join(source);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in toml_blocks(&text).iter().flat_map(|b| b.lines()) {
            let line = line.trim_start_matches(['#', ' ']);
            if line.starts_with('[') {
                tokens.extend(line.split_whitespace().next().map(String::from));
            } else if let Some((key, _)) = line.split_once(" =") {
                tokens.insert(key.trim().to_string());
            }
            tokens.extend(line.split('"').skip(1).step_by(2).map(|s| format!("\"{s}\"")));
        }
    }
    if tokens.is_empty() {
        return Ok(None);
    }
    tokens.extend(TOML_EDGES.map(String::from));
    let escape = |t: &str| t.replace('\\', "\\\\").replace('"', "\\\"");
    let text: String = tokens.iter().map(|t| format!("\"{}\"\n", escape(t))).collect();
    let path = dir.join(format!("{}.dict", target.name));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(path))
}

/// The fenced ```toml blocks of a Markdown text.
fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while lines.any(|l| l.trim_start() == "```toml") {
        blocks.push(lines.by_ref().take_while(|l| l.trim_start() != "```").map(|l| format!("{l}\n")).collect());
    }
    blocks
}

/// Files under `dir` (recursively, skipping build directories) whose names end with `extension`.
fn collect(dir: &Path, extension: &str, files: &mut Vec<PathBuf>) -> Result {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() && name != "target" {
            collect(&path, extension, files)?;
        } else if name.ends_with(extension) && name != "Cargo.toml" {
            files.push(path);
        }
    }
    Ok(())
}

/// The first `lines` lines of `text`.
/// A Vensim model without its sketch (from the `---///` marker on), which its reader skips: the equations and
/// the `.Control` section at the end of them stay whole, so the seed compiles.
fn before_sketch(text: &str) -> String {
    text.find("---///").map_or(text, |at| &text[..text[..at].rfind('\n').map_or(0, |nl| nl + 1)]).to_string()
}

fn head(text: &str, lines: usize) -> String {
    text.lines().take(lines).map(|l| format!("{l}\n")).collect()
}

/// The host's target triple (cargo-fuzz builds into target/fuzz/<triple>/release).
fn host_triple() -> Result<String> {
    let version = output(Command::new("rustc").arg("-vV")).ok_or("cannot run rustc -vV")?;
    version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .ok_or_else(|| "rustc -vV names no host".into())
}
