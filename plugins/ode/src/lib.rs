//! parfit plugin for ODE models written in a subset of [DiffSL](https://martinjrobins.github.io/diffsl/)
//! and solved with an adaptive Dormand–Prince 5(4) integrator.
//!
//! The model text is compiled once into register code ([`OdeModel::compile`]); a simulation then
//! interprets that code without name lookups or allocation. See the crate's README for the grammar.

mod compile;
mod eval;
mod lexer;
mod parser;
mod solver;

use std::fmt;

use parfit_core::model::downcast_workspace;
use parfit_core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, Workspace};

pub use solver::SolverOptions;

use eval::Program;
use solver::{Dopri5, System};

/// A model kind this plugin provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The `kind` passed to [`model_from_config`].
    pub kind: &'static str,
    /// File extension (without the dot) of model files of this kind.
    pub extension: &'static str,
    pub description: &'static str,
}

/// The model kinds of this plugin.
pub const KINDS: &[KindInfo] = &[KindInfo {
    kind: "diffsl",
    extension: "ds",
    description: "ODE model in a subset of DiffSL, solved with adaptive Dormand–Prince 5(4)",
}];

/// A problem in the model text (or the solver options), with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file name given to [`OdeModel::compile`].
    pub source_name: String,
    /// 1-based; 0 when the error is not about a place in the text (e.g. bad solver options).
    pub line: usize,
    /// 1-based, in characters; 0 when `line` is 0.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source_name, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.source_name, self.line, self.column, self.message)
        }
    }
}

/// An ODE model compiled from DiffSL text.
#[derive(Debug, Clone)]
pub struct OdeModel {
    spec: ModelSpec,
    program: Program,
    options: SolverOptions,
}

/// Per-thread scratch: the register file and the integrator's stage vectors.
#[derive(Debug)]
struct OdeWorkspace {
    regs: Vec<f64>,
    solver: Dopri5,
}

impl OdeModel {
    /// Parse and compile model text. `source_name` only labels error messages (and names the model).
    pub fn compile(source: &str, source_name: &str, options: SolverOptions) -> Result<OdeModel, ParseError> {
        let err = |e: lexer::Located| ParseError {
            source_name: source_name.to_string(),
            line: e.pos.line,
            column: e.pos.col,
            message: e.message,
        };
        options.validate().map_err(|m| ParseError {
            source_name: source_name.to_string(),
            line: 0,
            column: 0,
            message: format!("invalid solver options: {m}"),
        })?;
        let ast = parser::parse(source).map_err(err)?;
        let compiled = compile::compile(&ast).map_err(err)?;
        let spec = ModelSpec {
            name: model_name(source_name),
            params: compiled.params.into_iter().map(|(n, d)| ParamSpec::new(n, d)).collect(),
            inputs: Vec::new(),
            outputs: compiled.outputs,
            output_kind: OutputKind::TimeSeries,
        };
        Ok(OdeModel { spec, program: compiled.program, options })
    }

    pub fn options(&self) -> &SolverOptions {
        &self.options
    }

    /// Number of state variables.
    pub fn n_states(&self) -> usize {
        self.program.n_states
    }
}

/// The file stem of `source_name`, or `"diffsl"` when there is none.
fn model_name(source_name: &str) -> String {
    let file = source_name.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = file.strip_suffix(".ds").unwrap_or(file);
    if stem.is_empty() { "diffsl".to_string() } else { stem.to_string() }
}

/// The integrator's view of a compiled model: right-hand side and output code over a register file.
struct Sim<'a> {
    program: &'a Program,
    regs: &'a mut [f64],
    out: &'a mut [f64],
}

impl System for Sim<'_> {
    #[inline]
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.program.rhs(self.regs, t, y, dy);
    }

    fn output(&mut self, i: usize, t: f64, y: &[f64]) {
        let n = self.program.out_regs.len();
        self.program.outputs(self.regs, t, y, &mut self.out[i * n..(i + 1) * n]);
    }
}

impl Model for OdeModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(OdeWorkspace { regs: vec![0.0; self.program.n_regs], solver: Dopri5::new(self.program.n_states) })
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let ws = downcast_workspace::<OdeWorkspace>(ws, &self.spec.name)?;
        if params.len() != self.spec.params.len() {
            return Err(SimError::BadInput(format!(
                "{} expects {} parameters, got {}",
                self.spec.name,
                self.spec.params.len(),
                params.len()
            )));
        }
        if !inputs.is_empty() {
            return Err(SimError::BadInput(format!("{} takes no inputs, got {}", self.spec.name, inputs.len())));
        }
        if out.len() != self.spec.output_len(times.len()) {
            return Err(SimError::BadInput(format!(
                "output buffer has length {}, expected {}",
                out.len(),
                self.spec.output_len(times.len())
            )));
        }
        for (p, spec) in params.iter().zip(&self.spec.params) {
            if !p.is_finite() {
                return Err(SimError::BadParameter { name: spec.name.clone(), reason: format!("{p} is not finite") });
            }
        }
        if times.iter().any(|t| !t.is_finite()) || times.windows(2).any(|w| w[1] < w[0]) {
            return Err(SimError::BadInput("times must be finite and non-decreasing".into()));
        }
        let Some(&first) = times.first() else { return Ok(()) };
        let t0 = self.options.t0.unwrap_or(first);
        if t0 > first {
            return Err(SimError::BadInput(format!("the first requested time {first} is before t0 = {t0}")));
        }

        // A workspace made by another `OdeModel` has the right type but maybe the wrong sizes.
        if ws.regs.len() != self.program.n_regs {
            ws.regs.resize(self.program.n_regs, 0.0);
        }
        if ws.solver.dim() != self.program.n_states {
            ws.solver = Dopri5::new(self.program.n_states);
        }
        let OdeWorkspace { regs, solver } = ws;
        self.program.start(regs, params, &mut solver.y);
        let mut sim = Sim { program: &self.program, regs, out };
        solver.solve(&self.options, &mut sim, t0, times)
    }
}

/// Build a model from the plugin ABI's configuration: `kind` must be `"diffsl"` and `config_json` an
/// object `{"source": "<model text>", "source_name": "<file name>", ...solver options}` where the solver
/// options are the fields of [`SolverOptions`] (all optional) and `source_name` defaults to `model.ds`.
pub fn model_from_config(kind: &str, config_json: &str) -> Result<OdeModel, String> {
    if !KINDS.iter().any(|k| k.kind == kind) {
        let known: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
        return Err(format!("unknown model kind '{kind}' (this plugin provides: {})", known.join(", ")));
    }
    let mut config: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(config_json).map_err(|e| format!("invalid diffsl config: {e}"))?;
    let source = match config.remove("source") {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err("invalid diffsl config: 'source' must be a string".into()),
        None => return Err("invalid diffsl config: missing 'source' (the model text)".into()),
    };
    let source_name = match config.remove("source_name") {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err("invalid diffsl config: 'source_name' must be a string".into()),
        None => "model.ds".to_string(),
    };
    let options: SolverOptions = serde_json::from_value(serde_json::Value::Object(config))
        .map_err(|e| format!("invalid diffsl solver options: {e}"))?;
    OdeModel::compile(&source, &source_name, options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LV: &str = "in_i { alpha = 1.1, beta = 0.4, delta = 0.1, gamma = 0.4 }
        u_i { prey = 10, predator = 5 }
        F_i { alpha * prey - beta * prey * predator, delta * prey * predator - gamma * predator }";

    #[test]
    fn lotka_volterra_compiles_to_few_instructions() {
        let m = OdeModel::compile(LV, "lv.ds", SolverOptions::default()).unwrap();
        // Four products per equation pair plus two subtractions; nothing needs parameter-only code.
        assert_eq!(m.program.rhs.len(), 8);
        assert!(m.program.setup.is_empty());
        let mut regs = vec![0.0; m.program.n_regs];
        let mut y0 = [0.0; 2];
        m.program.start(&mut regs, &[1.1, 0.4, 0.1, 0.4], &mut y0);
        let mut dy = [0.0; 2];
        m.program.rhs(&mut regs, 0.0, &y0, &mut dy);
        assert_eq!(dy, [1.1 * 10.0 - 0.4 * 10.0 * 5.0, 0.1 * 10.0 * 5.0 - 0.4 * 5.0]);
    }

    #[test]
    fn constants_fold_and_parameter_code_is_hoisted() {
        let src = "in_i { k = 2 }\nc { exp(0) * 3 }\nkc { k * c }\nu_i { y = kc }\nF_i { -kc * y + c * t }";
        let m = OdeModel::compile(src, "m.ds", SolverOptions::default()).unwrap();
        assert_eq!(m.program.setup.len(), 2); // k * c and its negation
        assert_eq!(m.program.rhs.len(), 3); // (-kc) * y, c * t, the sum
    }

    /// Counts right-hand-side evaluations.
    struct Counting<'a>(Sim<'a>, usize);
    impl System for Counting<'_> {
        fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
            self.1 += 1;
            self.0.rhs(t, y, dy);
        }
        fn output(&mut self, i: usize, t: f64, y: &[f64]) {
            self.0.output(i, t, y);
        }
    }

    /// `cargo test --release -p parfit-ode --lib -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn rhs_cost() {
        let m = OdeModel::compile(LV, "lv.ds", SolverOptions::default()).unwrap();
        let mut regs = vec![0.0; m.program.n_regs];
        let mut y = [0.0; 2];
        m.program.start(&mut regs, &[1.1, 0.4, 0.1, 0.4], &mut y);
        let mut dy = [0.0; 2];
        let n = 20_000_000;
        let start = std::time::Instant::now();
        for i in 0..n {
            y[0] = 10.0 + (i & 7) as f64;
            m.program.rhs(&mut regs, 0.0, std::hint::black_box(&y), &mut dy);
            std::hint::black_box(&dy);
        }
        println!("LV right-hand side: {:.1} ns per evaluation", start.elapsed().as_secs_f64() / n as f64 * 1e9);

        let times: Vec<f64> = (0..500).map(|i| 100.0 * i as f64 / 499.0).collect();
        for tol in [1e-6, 1e-9] {
            let opts = SolverOptions { rtol: tol, atol: tol, ..Default::default() };
            let mut solver = Dopri5::new(2);
            let mut out = vec![0.0; 1000];
            m.program.start(&mut regs, &[1.1, 0.4, 0.1, 0.4], &mut solver.y);
            let mut sys = Counting(Sim { program: &m.program, regs: &mut regs, out: &mut out }, 0);
            solver.solve(&opts, &mut sys, 0.0, &times).unwrap();
            println!("tol {tol:e}: {} right-hand-side evaluations (~{} steps)", sys.1, sys.1 / 6);
        }
    }
}

/// The plugin's face to the host: self-description and model construction through the C ABI.
pub struct OdePlugin;

impl parfit_abi::Plugin for OdePlugin {
    fn info() -> parfit_abi::PluginInfo {
        parfit_abi::PluginInfo {
            name: "ode".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: KINDS
                .iter()
                .map(|k| parfit_abi::KindInfo {
                    kind: k.kind.into(),
                    extensions: vec![k.extension.into()],
                    description: k.description.into(),
                })
                .collect(),
        }
    }

    fn create(kind: &str, config_json: &str) -> Result<Box<dyn Model>, String> {
        Ok(Box::new(model_from_config(kind, config_json)?))
    }
}

parfit_abi::export_plugin!(OdePlugin);
