//! parfit plugin for ODE models written in a subset of [DiffSL](https://martinjrobins.github.io/diffsl/)
//! and solved with adaptive Dormand–Prince 5(4) or, for stiff problems, variable-order BDF with the
//! model's exact Jacobian (by default the solver switches by itself).
//!
//! The model text is compiled once by the shared `parfit-expr` crate into register code ([`OdeModel::compile`]), together with code for
//! the Jacobian ∂F/∂u derived from it symbolically; a simulation then interprets that code without name
//! lookups or allocation. See the crate's README for the grammar and the solvers.

mod band;
mod bdf;
mod events;
mod linear;
mod mass;
mod solver;
mod sparse;

use parfit_core::model::downcast_workspace;
use parfit_core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, SimStats, Workspace};

pub use solver::{Method, SolverOptions, SolverStats};

use bdf::Bdf;
use events::Hybrid;
use parfit_expr::{Dialect, Program};
use solver::{Dopri5, Dopri5End, System};

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
    description: "ODE model in a subset of DiffSL, solved with adaptive Dormand–Prince 5(4) or BDF",
}];

/// A problem in the model text (or its options), with where it is.
pub use parfit_core::SourceError as ParseError;

/// An ODE model compiled from DiffSL text.
#[derive(Debug, Clone)]
pub struct OdeModel {
    spec: ModelSpec,
    /// The states' names, for error messages.
    states: Vec<String>,
    program: Program,
    /// The same model with the code of its forward sensitivity equations.
    sens_program: Program,
    options: SolverOptions,
}

/// Per-thread scratch: the register files, the integrators' vectors (made on first use, separately for
/// plain and sensitivity solves so alternating between them does not reallocate) and the statistics of
/// the last simulation.
#[derive(Debug)]
struct OdeWorkspace {
    regs: Vec<f64>,
    dopri5: Option<Dopri5>,
    bdf: Option<Bdf>,
    /// Scratch for resets.
    reset_work: Vec<f64>,
    sens_regs: Vec<f64>,
    sens_work: Vec<f64>,
    sens_dopri5: Option<Dopri5>,
    sens_bdf: Option<Bdf>,
    stats: SolverStats,
}

/// The solver statistics of the last [`Model::simulate`] call made with this workspace (whether it
/// succeeded or not), or `None` when the workspace is not an ODE plugin workspace.
pub fn solver_stats(ws: &Workspace) -> Option<SolverStats> {
    ws.downcast_ref::<OdeWorkspace>().map(|w| w.stats)
}

impl OdeModel {
    /// Parse and compile model text. `source_name` labels error messages, names the model, and is where
    /// the files `read(…)` names are looked up from (its directory).
    pub fn compile(source: &str, source_name: &str, options: SolverOptions) -> Result<OdeModel, ParseError> {
        let err = |e: parfit_expr::Located| ParseError {
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
        // `read('a.tns')` names a file relative to the model file's directory (DiffSL: the working directory).
        let dir = std::path::Path::new(source_name).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let files = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let compiled = parfit_expr::compile_with(source, Dialect::Ode, false, &files).map_err(err)?;
        // Compiled only when wanted: some models (a mass matrix depending on parameters) have none.
        let mut sens_program = if options.sensitivities {
            parfit_expr::compile_with(source, Dialect::Ode, true, &files).map_err(err)?.program
        } else {
            compiled.program.clone()
        };
        let spec = ModelSpec {
            name: model_name(source_name),
            params: compiled.params.into_iter().map(|(n, d)| ParamSpec::new(n, d)).collect(),
            inputs: Vec::new(),
            outputs: compiled.outputs,
            output_kind: OutputKind::TimeSeries,
        };
        let states = compiled.states;
        let mut program = compiled.program;
        // Once per model; a model the JIT cannot compile (or one too large to be worth it) is interpreted,
        // with the same results, and the user is told why it may run slower.
        if options.jit {
            let mut natives = vec![program.compile_native()];
            if options.sensitivities {
                natives.push(sens_program.compile_native());
            }
            if let Some(Err(why)) = natives.into_iter().find(Result::is_err)
                && cfg!(not(target_arch = "wasm32"))
            {
                eprintln!("note: {source_name}: {why}");
            }
        }
        Ok(OdeModel { spec, states, program, sens_program, options })
    }

    pub fn options(&self) -> &SolverOptions {
        &self.options
    }

    /// Whether the right-hand side runs as native code (see [`SolverOptions::jit`]).
    pub fn is_native(&self) -> bool {
        self.program.is_native()
    }

    /// Number of state variables.
    pub fn n_states(&self) -> usize {
        self.program.n_states
    }
}

/// The `(row, column)` of each non-zero entry of the program's ∂F/∂u, in the order it computes them.
fn jacobian_pattern(program: &Program) -> impl Iterator<Item = (u32, u32)> + '_ {
    program.jac_entries.iter().map(|&(i, j, _)| (i, j))
}

/// The `(row, column)` of each non-zero entry of the program's mass matrix (none: the identity).
fn mass_pattern(program: &Program) -> Vec<(u32, u32)> {
    program.mass_entries.iter().map(|&(i, j, _)| (i, j)).collect()
}

/// BDF's scratch for `n` values in blocks of `block` with `J`'s and `M`'s patterns, made on first use (most
/// models never need it).
fn bdf_workspace<'a>(bdf: &'a mut Option<Bdf>, n: usize, block: usize, program: &Program) -> &'a mut Bdf {
    let mass = mass_pattern(program);
    if bdf.as_ref().is_none_or(|b| !b.fits(n, block, jacobian_pattern(program), &mass)) {
        *bdf = Some(Bdf::new(n, block, jacobian_pattern(program), &mass));
    }
    bdf.as_mut().expect("just made")
}

/// Dormand–Prince's scratch for `n` values, made on first use.
fn dopri5_workspace(dopri5: &mut Option<Dopri5>, n: usize) -> &mut Dopri5 {
    if dopri5.as_ref().is_none_or(|d| d.dim() != n) {
        *dopri5 = Some(Dopri5::new(n));
    }
    dopri5.as_mut().expect("just made")
}

/// Integrate from `(t0, y0)` with the configured method, reporting `times` through `sys.output`. `y0` is
/// the whole state of `n` values (with sensitivities: the states and then one block of them per parameter);
/// `program` is the model's, whose states make one block.
///
/// The hybrid loop of a model with events (diffsol's): an integrator runs until a stop function's zero; with
/// a reset, `N` becomes the stop element's index, the state is reset and the integrator restarts there
/// cleanly (a new initial step; BDF at order 1) for the times still due; without one the solve ends there and
/// the outputs after it are NaN. Under `auto`, once BDF took over it keeps the rest of the solve.
#[allow(clippy::too_many_arguments)]
fn integrate<S: Hybrid>(
    opts: &SolverOptions,
    sys: &mut S,
    dopri5: &mut Option<Dopri5>,
    bdf: &mut Option<Bdf>,
    (n, program): (usize, &Program),
    y0: impl FnOnce(&mut S, &mut [f64]),
    t0: f64,
    times: &[f64],
) -> Result<(), SimError> {
    // The state between segments lives in Dormand–Prince's scratch.
    let d = dopri5_workspace(dopri5, n);
    y0(sys, &mut d.y);
    let bdf_opts = opts.local(solver::BDF_LOCAL_TOL);
    // A model with a mass matrix (a DAE when M is singular): `auto` solves it with BDF; `dopri5` only when M
    // is not singular, as du/dt = M⁻¹ F.
    let has_mass = !program.mass_entries.is_empty();
    let mut dopri5_opts = opts.local(solver::DOPRI5_LOCAL_TOL);
    let (mut t, mut next, mut h0) = (t0, 0, opts.h0);
    let mut on_bdf = opts.solver == Method::Bdf || (has_mass && opts.solver == Method::Auto);
    loop {
        let event = if on_bdf {
            let b = bdf_workspace(bdf, n, program.n_states, program);
            b.y.copy_from_slice(&d.y);
            let Some(event) = b.solve(&bdf_opts, sys, t, times, next, h0)? else { return Ok(()) };
            d.y.copy_from_slice(&b.y);
            event
        } else {
            dopri5_opts.h0 = h0;
            let end = if has_mass {
                let mut solved = mass::MassSolved::new(sys, program.n_states, &mass_pattern(program))?;
                d.solve(&dopri5_opts, &mut solved, t, times, next)?
            } else {
                d.solve(&dopri5_opts, sys, t, times, next)?
            };
            match end {
                Dopri5End::Done => return Ok(()),
                Dopri5End::Stiff { t: at, next: due } => {
                    sys.stats().switched_to_bdf_at = Some(at);
                    (t, next, h0, on_bdf) = (at, due, None, true);
                    continue;
                }
                Dopri5End::Event(event) => event,
            }
        };
        (t, next, h0) = (event.t, event.next, None);
        if next == times.len() {
            // Nothing left to report: the event changes nothing the caller sees.
            return Ok(());
        }
        if !sys.reset(t, event.index, &mut d.y)? {
            let stats = sys.stats();
            (stats.stopped_at, stats.stop_index) = (Some(t), Some(event.index));
            (next..times.len()).for_each(|i| sys.missing(i));
            return Ok(());
        }
        sys.stats().resets += 1;
    }
}

/// The file stem of `source_name`, or `"diffsl"` when there is none.
fn model_name(source_name: &str) -> String {
    let file = source_name.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = file.strip_suffix(".ds").unwrap_or(file);
    if stem.is_empty() { "diffsl".to_string() } else { stem.to_string() }
}

/// The integrators' view of a compiled model: right-hand side, Jacobian and output code over a register
/// file, counting evaluations.
struct Sim<'a> {
    program: &'a Program,
    states: &'a [String],
    regs: &'a mut [f64],
    /// Scratch for resets.
    work: &'a mut Vec<f64>,
    out: &'a mut [f64],
    stats: &'a mut SolverStats,
}

impl System for Sim<'_> {
    #[inline]
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.stats.rhs_evals += 1;
        self.program.rhs(self.regs, t, y, dy);
    }

    #[inline]
    fn rhs_from(&mut self, t: f64, y: &mut [f64], values: impl Iterator<Item = f64>, dy: &mut [f64]) {
        self.stats.rhs_evals += 1;
        self.program.rhs_from(self.regs, t, y, values, dy);
    }

    fn jacobian(&mut self, t: f64, y: &[f64], jac: &mut [f64]) {
        self.stats.jac_evals += 1;
        self.program.jacobian_values(self.regs, t, y, jac);
    }

    fn mass(&mut self, values: &mut [f64]) {
        self.program.mass_values(self.regs, values);
    }

    fn output(&mut self, i: usize, t: f64, y: &[f64]) {
        let n = self.program.out_regs.len();
        self.program.outputs(self.regs, t, y, &mut self.out[i * n..(i + 1) * n]);
    }

    fn n_stops(&self) -> usize {
        self.program.stop_regs.len()
    }

    fn stop(&mut self, t: f64, y: &[f64], g: &mut [f64]) {
        self.program.stop_values(self.regs, t, y, g);
    }

    fn stats(&mut self) -> &mut SolverStats {
        self.stats
    }

    fn component_name(&self, i: usize) -> String {
        self.states.get(i).cloned().unwrap_or_else(|| format!("u_{i}"))
    }
}

impl Hybrid for Sim<'_> {
    fn reset(&mut self, t: f64, index: usize, y: &mut [f64]) -> Result<bool, SimError> {
        if self.program.reset_regs.is_empty() {
            return Ok(false);
        }
        self.program.set_model_index(self.regs, index);
        self.work.resize(y.len(), 0.0);
        self.program.reset_state(self.regs, t, y, self.work);
        y.copy_from_slice(self.work);
        Ok(true)
    }

    fn missing(&mut self, i: usize) {
        let n = self.program.out_regs.len();
        self.out[i * n..(i + 1) * n].fill(f64::NAN);
    }
}

/// The model with its forward sensitivity equations, as one system of `n (1 + P)` values: the states,
/// then the sensitivities `∂u/∂p` of each of the `P` parameters. Right-hand-side evaluations count the
/// augmented system once.
struct SensSim<'a> {
    program: &'a Program,
    states: &'a [String],
    params: &'a [ParamSpec],
    regs: &'a mut [f64],
    /// Scratch for the native sensitivity code's results.
    work: &'a mut Vec<f64>,
    out: &'a mut [f64],
    sens: &'a mut [f64],
    stats: &'a mut SolverStats,
}

impl System for SensSim<'_> {
    #[inline]
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.stats.rhs_evals += 1;
        let n = self.program.n_states;
        let (dy, ds) = dy.split_at_mut(n);
        self.program.sensitivity_rhs(self.regs, self.work, t, &y[..n], &y[n..], dy, ds);
    }

    fn jacobian(&mut self, t: f64, y: &[f64], jac: &mut [f64]) {
        self.stats.jac_evals += 1;
        self.program.jacobian_values(self.regs, t, &y[..self.program.n_states], jac);
    }

    fn mass(&mut self, values: &mut [f64]) {
        self.program.mass_values(self.regs, values);
    }

    fn output(&mut self, i: usize, t: f64, y: &[f64]) {
        let (n, no) = (self.program.n_states, self.program.out_regs.len());
        let np = self.program.n_params;
        let out = &mut self.out[i * no..(i + 1) * no];
        let sens = &mut self.sens[i * no * np..(i + 1) * no * np];
        self.program.sensitivity_outputs(self.regs, t, &y[..n], &y[n..], out, sens);
    }

    fn n_stops(&self) -> usize {
        self.program.stop_regs.len()
    }

    fn stop(&mut self, t: f64, y: &[f64], g: &mut [f64]) {
        self.program.stop_values(self.regs, t, &y[..self.program.n_states], g);
    }

    fn stats(&mut self) -> &mut SolverStats {
        self.stats
    }

    /// The states, then `∂state/∂parameter` for each parameter in turn.
    fn component_name(&self, i: usize) -> String {
        let n = self.program.n_states.max(1);
        let state = self.states.get(i % n).map_or_else(|| format!("u_{}", i % n), String::clone);
        match (i / n).checked_sub(1) {
            None => state,
            Some(p) => format!("∂{state}/∂{}", self.params.get(p).map_or("?", |p| p.name.as_str())),
        }
    }
}

impl Hybrid for SensSim<'_> {
    fn reset(&mut self, t: f64, index: usize, y: &mut [f64]) -> Result<bool, SimError> {
        if self.program.reset_regs.is_empty() {
            return Ok(false);
        }
        // The jump takes du/dt to be F, which a mass matrix breaks (diffsol solves for du/dt there).
        if !mass::is_identity(self.program, self.regs) {
            return Err(SimError::Other(format!(
                "not supported: sensitivities across an event (t = {t}) in a model with a mass matrix M_i other than \
                 the identity; set sensitivities = false"
            )));
        }
        events::reset_with_sensitivities(self.program, self.regs, self.work, t, index, y)?;
        Ok(true)
    }

    fn missing(&mut self, i: usize) {
        let (no, np) = (self.program.out_regs.len(), self.program.n_params);
        self.out[i * no..(i + 1) * no].fill(f64::NAN);
        self.sens[i * no * np..(i + 1) * no * np].fill(f64::NAN);
    }
}

impl OdeModel {
    /// Check a simulation's arguments; the time the initial state is given at, or `None` when no times are
    /// requested.
    fn check_call(&self, params: &[f64], inputs: &[f64], times: &[f64], out: &[f64]) -> Result<Option<f64>, SimError> {
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
        let Some(&first) = times.first() else { return Ok(None) };
        let t0 = self.options.t0.unwrap_or(first);
        if t0 > first {
            return Err(SimError::BadInput(format!("the first requested time {first} is before t0 = {t0}")));
        }
        Ok(Some(t0))
    }
}

impl Model for OdeModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn stats(&self, ws: &Workspace) -> Option<SimStats> {
        solver_stats(ws).map(|s| SimStats {
            steps: s.steps as u64,
            rejected_steps: s.rejected_steps as u64,
            rhs_evaluations: s.rhs_evals as u64,
            jacobian_evaluations: s.jac_evals as u64,
            factorisations: s.lu_factorizations as u64,
        })
    }

    fn workspace(&self) -> Workspace {
        Box::new(OdeWorkspace {
            regs: vec![0.0; self.program.n_regs],
            dopri5: Some(Dopri5::new(self.program.n_states)),
            bdf: None,
            reset_work: Vec::new(),
            sens_regs: Vec::new(),
            sens_work: Vec::new(),
            sens_dopri5: None,
            sens_bdf: None,
            stats: SolverStats::default(),
        })
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
        ws.stats = SolverStats::default();
        let Some(t0) = self.check_call(params, inputs, times, out)? else { return Ok(()) };
        // A workspace made by another `OdeModel` has the right type but maybe the wrong sizes.
        ws.regs.resize(self.program.n_regs, 0.0);
        let OdeWorkspace { regs, dopri5, bdf, reset_work: work, stats, .. } = ws;
        let n = self.program.n_states;
        let mut sim = Sim { program: &self.program, states: &self.states, regs, work, out, stats };
        let start = |sim: &mut Sim<'_>, y0: &mut [f64]| sim.program.start(sim.regs, params, y0);
        integrate(&self.options, &mut sim, dopri5, bdf, (n, &self.program), start, t0, times)
    }

    /// Forward sensitivities: the model's states and their derivatives with respect to every parameter are
    /// integrated together as one system (the sensitivities take part in the error test, with the same
    /// tolerances), with derivatives from the model text's symbolic ∂F/∂u, ∂F/∂p, ∂u0/∂p and ∂out/∂(u, p).
    fn has_sensitivities(&self) -> bool {
        self.options.sensitivities
    }

    fn simulate_sensitivities(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
        sens: &mut [f64],
    ) -> Result<(), SimError> {
        if !self.options.sensitivities {
            return Err(SimError::Other(format!(
                "{}: sensitivities are switched off (sensitivities = false)",
                self.spec.name
            )));
        }
        let ws = downcast_workspace::<OdeWorkspace>(ws, &self.spec.name)?;
        ws.stats = SolverStats::default();
        let Some(t0) = self.check_call(params, inputs, times, out)? else { return Ok(()) };
        let np = params.len();
        if sens.len() != out.len() * np {
            return Err(SimError::BadInput(format!(
                "sensitivity buffer has length {}, expected {} ({} outputs × {np} parameters)",
                sens.len(),
                out.len() * np,
                out.len()
            )));
        }
        let p = &self.sens_program;
        ws.sens_regs.resize(p.n_regs, 0.0);
        let OdeWorkspace { sens_regs: regs, sens_work: work, sens_dopri5: dopri5, sens_bdf: bdf, stats, .. } = ws;
        let n = p.n_states;
        let mut sim =
            SensSim { program: p, states: &self.states, params: &self.spec.params, regs, work, out, sens, stats };
        let start = |sim: &mut SensSim<'_>, y0: &mut [f64]| {
            let (y, s) = y0.split_at_mut(n);
            sim.program.start(sim.regs, params, y);
            sim.program.start_sensitivities(sim.regs, s);
        };
        integrate(&self.options, &mut sim, dopri5, bdf, (n * (1 + np), p), start, t0, times)
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
    // Checked here, before the source, so that an option's error is not reported against the model text.
    let options: SolverOptions = serde_json::from_value(serde_json::Value::Object(config))
        .map_err(|e| format!("invalid diffsl solver options: {e}"))?;
    options.validate().map_err(|e| format!("invalid diffsl solver option {e}"))?;
    OdeModel::compile(&source, &source_name, options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const LV: &str = "in_i { alpha = 1.1, beta = 0.4, delta = 0.1, gamma = 0.4 }
        u_i { prey = 10, predator = 5 }
        F_i { alpha * prey - beta * prey * predator, delta * prey * predator - gamma * predator }";

    /// Every option out of its range is refused naming the option, the range and the value, and not blamed
    /// on the model text (the host blames it on the configuration the options came from).
    #[test]
    fn options_out_of_range_are_refused_by_name_not_against_the_source() {
        for (extra, want) in [
            (r#""rtol": -1"#, "invalid diffsl solver option rtol = -1.0: must be a finite number ≥ 0"),
            (r#""atol": -1e-300"#, "atol = -1e-300: must be a finite number ≥ 0"),
            (r#""rtol": 0, "atol": 0"#, "rtol = 0 and atol = 0: at least one must be positive"),
            (r#""max_steps": 0"#, "max_steps = 0: must be at least 1"),
            (r#""h0": 0"#, "h0 = 0.0: must be a finite number > 0"),
            (r#""max_step": -2"#, "max_step = -2.0: must be a finite number > 0"),
            (r#""max_steps": -1"#, "invalid diffsl solver options: invalid value: integer `-1`"),
            (r#""solver": "x""#, "unknown variant `x`, expected one of `dopri5`, `bdf`, `auto`"),
        ] {
            let json = format!(r#"{{"source": "u_i {{ x = 1 }} F_i {{ -x }}", "source_name": "m.ds", {extra}}}"#);
            let e = model_from_config("diffsl", &json).map(|_| ()).unwrap_err();
            assert!(e.contains(want) && !e.contains("m.ds"), "{extra}: {e}");
        }
    }

    /// Native code by default where there is a JIT; `"jit": false` in the configuration forces the
    /// interpreter.
    #[test]
    fn the_jit_option_selects_native_code_or_the_interpreter() {
        let config = |extra: &str| format!("{{\"source\": {}{extra}}}", serde_json::to_string(LV).unwrap());
        let native = model_from_config("diffsl", &config("")).unwrap();
        assert_eq!(native.is_native(), cfg!(not(target_arch = "wasm32")));
        assert!(!model_from_config("diffsl", &config(", \"jit\": false")).unwrap().is_native());
    }

    #[test]
    fn lotka_volterra_compiles_to_few_instructions() {
        let m = OdeModel::compile(LV, "lv.ds", SolverOptions::default()).unwrap();
        // Six products and two subtractions: each subtraction takes in the two products it reads
        // (`alpha·x - y·(beta·x)`, `y·(delta·x) - gamma·y`); `beta·x` and `delta·x` stay, as the Jacobian
        // reads them. Nothing needs parameter-only code.
        assert_eq!(m.program.rhs.len(), 4, "{:?}", m.program.rhs);
        // Its Jacobian [[a - b y, -b x], [d y, d x - g]] is four more instructions (`a - b·y` fused).
        assert!(m.program.setup.is_empty(), "{:?}", m.program.setup);
        assert_eq!(m.program.jac.len(), 4, "{:?}", m.program.jac);
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
        assert_eq!(m.program.rhs.len(), 1); // (-kc) * y + c * t, one fused instruction
    }

    #[test]
    fn unused_code_is_dropped_and_registers_renumbered() {
        let src = "in_i { k = 2 }\nunused { exp(k) * sin(k) }\na_i { exp(k * t), sin(u_i[0]) }
u_i { y = 1 }\nF_i { -k * y + a_i[0] }";
        let m = OdeModel::compile(src, "m.ds", SolverOptions::default()).unwrap();
        assert_eq!(m.program.setup.len(), 1); // -k
        assert_eq!(m.program.rhs.len(), 3); // k * t, exp, (-k) * y + exp (fused); not sin(y)
        // t, y, k, the constant 1 and four results.
        assert_eq!(m.program.n_regs, 8);
        let mut regs = vec![0.0; m.program.n_regs];
        let mut y0 = [0.0];
        m.program.start(&mut regs, &[2.0], &mut y0);
        let mut dy = [0.0];
        m.program.rhs(&mut regs, 0.5, &y0, &mut dy);
        // black_box: this target's exp at run time, as the interpreter's (not the compiler's folded value).
        assert_eq!(dy, [-2.0 + math::exp(std::hint::black_box(1f64))]);
    }

    /// Symbolic ∂F/∂u against central differences, over every function and operator.
    #[test]
    fn jacobian_matches_finite_differences() {
        let src = "in_i { k = 0.7 }
u_i { (0:3): x = 0.3, y = 1.7, z = 0.4 }
F_i {
  (0:3): k * x_i * y - exp(x_i) / (1 + z) + pow(x_i, 3) + pow(y, z) + pow(x_i, 2) - x_i,
  sin(y) * cos(z) + tan(z) + sinh(x_i[0]) * cosh(x_i[1]) + tanh(y) + log(y) + log10(y + 1) + sqrt(y),
  arcsinh(z) + arccosh(y) + abs(z - 1) + sigmoid(x_i[2]) + heaviside(z) * y + min(y, z) + max(x_i[0], z)
    + copysign(z, x_i[1] - 1) + piecewise(z - 1, y, x_i[0] * z) + pow(2, x_i[0]) - x_i[1] / z + t,
}";
        let m = OdeModel::compile(src, "j.ds", SolverOptions::default()).unwrap();
        let p = &m.program;
        let n = p.n_states;
        let mut regs = vec![0.0; p.n_regs];
        let mut y = vec![0.0; n];
        p.start(&mut regs, &[0.7], &mut y);
        let y: Vec<f64> = y.iter().enumerate().map(|(i, v)| v + 0.1 * i as f64).collect();
        let mut jac = vec![f64::NAN; n * n];
        p.jacobian(&mut regs, 0.3, &y, &mut jac);
        let (mut fp, mut fm) = (vec![0.0; n], vec![0.0; n]);
        for j in 0..n {
            let h = 1e-6 * y[j].abs().max(1.0);
            let mut yp = y.clone();
            yp[j] += h;
            p.rhs(&mut regs, 0.3, &yp, &mut fp);
            yp[j] -= 2.0 * h;
            p.rhs(&mut regs, 0.3, &yp, &mut fm);
            for i in 0..n {
                let fd = (fp[i] - fm[i]) / (2.0 * h);
                let got = jac[j * n + i];
                assert!((got - fd).abs() <= 1e-6 * fd.abs().max(1.0), "J[{i}][{j}] = {got}, differences give {fd}");
            }
        }
        // The pattern is exact: x_0 does not depend on x_1.
        assert!(!p.jac_entries.iter().any(|&(i, j, _)| (i, j) == (0, 1)));
    }

    #[test]
    fn a_linear_model_has_a_constant_jacobian() {
        let src = "in_i { a = 2, b = 3 }\nu_i { x = 1, y = 0 }\nF_i { -a * x + b * y, a * b * x - y / b }";
        let m = OdeModel::compile(src, "lin.ds", SolverOptions::default()).unwrap();
        // Every entry is a parameter expression: no per-evaluation Jacobian code.
        assert!(m.program.jac.is_empty(), "{:?}", m.program.jac);
        assert_eq!(m.program.jac_entries.len(), 4);
        let mut regs = vec![0.0; m.program.n_regs];
        let mut y = [0.0; 2];
        m.program.start(&mut regs, &[2.0, 3.0], &mut y);
        let mut jac = [0.0; 4];
        m.program.jacobian(&mut regs, 0.0, &y, &mut jac);
        assert_eq!(jac, [-2.0, 6.0, 3.0, -1.0 / 3.0]);
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
            let m =
                OdeModel::compile(LV, "lv.ds", SolverOptions { rtol: tol, atol: tol, ..Default::default() }).unwrap();
            let mut ws = m.workspace();
            let mut out = vec![0.0; 1000];
            m.simulate(&mut ws, &[1.1, 0.4, 0.1, 0.4], &[], &times, &mut out).unwrap();
            let stats = solver_stats(&ws).unwrap();
            println!("tol {tol:e}: {stats:?}");
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
                    entry: parfit_abi::Entry::Model,
                })
                .collect(),
        }
    }

    fn create(kind: &str, config_json: &str) -> Result<Box<dyn Model>, String> {
        Ok(Box::new(model_from_config(kind, config_json)?))
    }
}

parfit_abi::export_plugin!(OdePlugin);
