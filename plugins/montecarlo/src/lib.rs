//! parfit plugin for Monte Carlo models: many independent paths of a stochastic model stepped over periods,
//! each path drawing from its own keyed random stream, so results never depend on the thread count or on
//! how the paths were split up.
//!
//! Models are written in the Monte Carlo dialect of the DiffSL subset that `parfit-expr` compiles (the ODE
//! plugin's language): parameters, states `u_i` with initial values, the update rule `next_i`, outputs
//! `out_i`, and random draws `normal()`, `uniform()`, `lognormal(mu, sigma)`, `bernoulli(p)`. See the
//! crate's README for the language, the runner and the random streams.

pub mod block;
pub mod model;
pub mod runner;

use parfit_core::paths::PathsSpec;
use parfit_core::{ParamSpec, SourceError};
use parfit_expr::Dialect;

pub use block::BlockProgram;
pub use model::MonteCarloPaths;
pub use runner::{Buffers, DrawKind, LANES, PathProgram, simulate_paths};

/// The model kind this plugin provides, and the extension of its model files.
pub const KIND: &str = "montecarlo";
pub const EXTENSION: &str = "mc";

/// A Monte Carlo model compiled from text.
pub type TextModel = MonteCarloPaths<BlockProgram>;

/// Compile model text. `source_name` labels errors (`file:line:column: message`) and names the model.
pub fn compile(source: &str, source_name: &str) -> Result<TextModel, SourceError> {
    let compiled = parfit_expr::compile(source, Dialect::MonteCarlo).map_err(|e| SourceError {
        source_name: source_name.to_string(),
        line: e.pos.line,
        column: e.pos.col,
        message: e.message,
    })?;
    // Each thread's workspace holds every register once per lane.
    let registers = compiled.program.n_regs;
    let what = format!("a model of {registers} registers, each {LANES} paths wide,");
    parfit_core::limits::check_allocation(&what, registers as f64, (LANES * std::mem::size_of::<f64>()) as f64)
        .map_err(|message| SourceError { source_name: source_name.to_string(), line: 0, column: 0, message })?;
    let file = source_name.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = file.strip_suffix(&format!(".{EXTENSION}")).unwrap_or(file);
    let spec = PathsSpec {
        name: if stem.is_empty() { KIND.to_string() } else { stem.to_string() },
        params: compiled.params.into_iter().map(|(n, d)| ParamSpec::new(n, d)).collect(),
        outputs: compiled.outputs,
    };
    Ok(MonteCarloPaths::new(spec, BlockProgram::new(compiled.program)))
}

/// The plugin's JSON configuration: the model text and the name its errors go by. The seed, the number of
/// periods and the paths are the run's (each block names them), not the model's.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    source: String,
    #[serde(default = "default_source_name")]
    source_name: String,
}

fn default_source_name() -> String {
    format!("model.{EXTENSION}")
}

/// Build a model from the plugin's JSON configuration (`source`, optional `source_name`).
pub fn model_from_config(kind: &str, config_json: &str) -> Result<TextModel, String> {
    if kind != KIND {
        return Err(format!("unknown model kind '{kind}' (this plugin provides: {KIND})"));
    }
    let config: Config = serde_json::from_str(config_json).map_err(|e| format!("invalid {KIND} config: {e}"))?;
    compile(&config.source, &config.source_name).map_err(|e| e.to_string())
}

/// The plugin's face to the host.
pub struct MonteCarloPlugin;

impl parfit_abi::Plugin for MonteCarloPlugin {
    fn info() -> parfit_abi::PluginInfo {
        parfit_abi::PluginInfo {
            name: "montecarlo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![parfit_abi::KindInfo {
                kind: KIND.into(),
                extensions: vec![EXTENSION.into()],
                description: "Monte Carlo model (DiffSL-style text with next_i and random draws), run over \
                              blocks of paths"
                    .into(),
                entry: parfit_abi::Entry::Paths,
            }],
        }
    }

    /// A Monte Carlo model is made only by the paths entry point: it has no evaluation times to simulate at.
    fn create(kind: &str, _config_json: &str) -> Result<Box<dyn parfit_core::Model>, String> {
        Err(format!(
            "kind '{kind}' is a Monte Carlo model: it runs as paths, from a configuration with a [montecarlo] \
             section (parfit run, parfit.run) or parfit.MonteCarloModel"
        ))
    }

    fn create_paths(kind: &str, config_json: &str) -> Result<Box<dyn parfit_core::paths::PathRunner>, String> {
        Ok(Box::new(model_from_config(kind, config_json)?))
    }
}

parfit_abi::export_plugin!(MonteCarloPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_abi::Plugin;
    use parfit_core::paths::PathRunner;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn errors_name_the_file_line_and_column() {
        let e = model_from_config(KIND, r#"{"source": "u { x = 1 }\nF { -x }", "source_name": "m.mc"}"#)
            .map(|_| ())
            .unwrap_err();
        assert!(e.starts_with("m.mc:2:"), "{e}");
        assert!(e.contains("ODE"), "{e}");
        let e = model_from_config("diffsl", "{}").map(|_| ()).unwrap_err();
        assert!(e.contains("unknown model kind 'diffsl'"), "{e}");
        let e = model_from_config(KIND, r#"{"source": "", "sed": 1}"#).map(|_| ()).unwrap_err();
        assert!(e.contains("unknown field `sed`"), "{e}");
        // The seed and the periods are each run's, not options of the model.
        let e = model_from_config(KIND, r#"{"source": "", "periods": 3}"#).map(|_| ()).unwrap_err();
        assert!(e.contains("unknown field `periods`"), "{e}");
    }

    #[test]
    fn the_model_entry_refuses_and_names_the_paths_entry() {
        let e = MonteCarloPlugin::create(KIND, r#"{"source": "u_i { w = 1 }\nnext_i { w }\nout_i { w }"}"#)
            .map(|_| ())
            .unwrap_err();
        assert!(e.contains("kind 'montecarlo' is a Monte Carlo model: it runs as paths"), "{e}");
        assert_eq!(MonteCarloPlugin::info().kinds[0].entry, parfit_abi::Entry::Paths);
    }

    /// A model without random draws is a deterministic model: every path is the same, here compound interest
    /// w' = 1.5·w + 1 from w = 2 over 3 periods: 2 → 4 → 7 → 11.5.
    #[test]
    fn a_model_without_draws_runs_deterministically() {
        let model = compile("in_i { r = 0.5 }\nu_i { w = 2 }\nnext_i { (1 + r) * w + 1 }\n", "det.mc").unwrap();
        let mut out = vec![0.0; 100];
        model.run(&mut model.workspace(), &[0.5], 1, 3, 0, 100, &mut out).unwrap();
        assert!(out.iter().all(|&w| w == 11.5), "{out:?}");
    }

    #[test]
    fn the_text_model_reproduces_the_native_wealth_model() {
        let text = "in_i { r = 0.1, s = 0.3, v1 = 0.1, v2 = 1.0 }
R { (1 + r) * lognormal(0, v1) }
y { lognormal(0, v2) }
u_i { w = 1 }
next_i { R * s * w + y }
out_i { w }
";
        let model = compile(text, "wealth.mc").unwrap();
        assert_eq!(model.spec().name, "wealth");
        assert_eq!(model.spec().outputs, ["w"]);
        let mut out = vec![0.0; 200];
        model.run(&mut model.workspace(), &[0.1, 0.3, 0.1, 1.0], 5, 30, 0, 200, &mut out).unwrap();
        let native = runner::tests::native_wealth(&(0..200).collect::<Vec<u64>>(), 5, 30);
        // The compiled code multiplies in another order ((1 + r)·exp(…)·s·w), so agreement is to rounding.
        for (a, b) in out.iter().zip(&native) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
    }
}
