//! parfit plugin for Vensim (`.mdl`) system-dynamics models, integrated on Vensim's fixed time grid with
//! Euler (Vensim's and PySD's default) or RK4.
//!
//! The model file is read (`mdl.rs`, `parser.rs`), its subscripts expanded and its equations lowered to
//! scalar equations (`lower.rs`, `builtins.rs`), which `parfit_expr` compiles to register code — run by
//! its interpreter or, natively, as JIT-compiled machine code. Constants are the model's parameters, the
//! stocks' starting values its per-case inputs, every variable but lookups its outputs (the constants last,
//! as Vensim's `.tab` lists them). See the crate's README.

mod builtins;
pub mod data;
mod expr;
mod lexer;
mod lower;
mod mdl;
mod parser;
mod subscripts;

use parfit_core::math;
use parfit_core::model::downcast_workspace;
use parfit_core::random::Stream;
use parfit_core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, Workspace};
use std::sync::{Arc, OnceLock};

use parfit_expr::system::{Sensitivities, Site, System, Update, compile_system};
use parfit_expr::{DrawKind, Program};
use serde::Deserialize;

pub use lower::Control;

/// The model kind this plugin provides.
pub const KIND: &str = "vensim";
/// File extension (without the dot) of model files of that kind.
pub const EXTENSION: &str = "mdl";
const DESCRIPTION: &str = "Vensim system-dynamics model (.mdl: subscripts, lookups, delays, macros …), Euler or \
                           RK4 on the file's time grid";

/// How stocks are advanced by one TIME STEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `x ← x + rate·dt`, rates from the current state: Vensim's and PySD's default.
    Euler,
    /// Classic fourth-order Runge–Kutta with the fixed step (Vensim's "RK4 Fixed").
    Rk4,
}

/// A problem in the model text (or its options), with where it is.
pub use parfit_core::SourceError as ParseError;

/// 1-based line and character column of byte offset `at` in `src`.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// A Vensim model compiled for simulation.
#[derive(Debug, Clone)]
pub struct VensimModel {
    spec: ModelSpec,
    program: Program,
    control: Control,
    method: Method,
    /// How each state moves (the first `spec.inputs.len()` are the file's stocks).
    kinds: Vec<Update>,
    /// Parameters the model's structure depends on: (index, why); other values than the default are refused.
    structural: Vec<(usize, String)>,
    /// Seed of the random draws' streams.
    seed: u64,
    /// Why the program is interpreted rather than native, when it could have been native.
    jit_fallback: Option<String>,
    /// The lowered model, and its program with sensitivity code, compiled when first asked for (fits that
    /// need no derivatives never pay for it).
    system: Arc<System>,
    sensitivity_program: Arc<OnceLock<Result<Program, String>>>,
    jit: bool,
    /// Whether exact sensitivities are offered (the configuration's `"sensitivities"`).
    sensitivities: bool,
}

/// Per-thread scratch: the register file, the program's parameters and the integrator's vectors.
#[derive(Debug)]
struct VensimWorkspace {
    regs: Vec<f64>,
    /// The model's parameters followed by the stocks' inputs.
    params: Vec<f64>,
    y: Vec<f64>,
    dy: Vec<f64>,
    /// RK4: the state at the start of the step, the latest stage's rates and their weighted sum.
    x0: Vec<f64>,
    k: Vec<f64>,
    acc: Vec<f64>,
    /// Sensitivity runs: their own register file, `s[p·n + k]` = ∂y_k/∂p (over the program's parameters,
    /// inputs included), its update, the outputs' derivatives and the program's scratch.
    sens: Option<SensitivityScratch>,
}

#[derive(Debug)]
struct SensitivityScratch {
    regs: Vec<f64>,
    s: Vec<f64>,
    ds: Vec<f64>,
    dout: Vec<f64>,
    work: Vec<f64>,
}

impl SensitivityScratch {
    /// Scratch for the derivatives with respect to the program's first `np` parameters (the model's; the
    /// stocks' inputs follow them).
    fn new(p: &Program, n_out: usize, np: usize) -> SensitivityScratch {
        let ns = p.n_states * np;
        SensitivityScratch {
            regs: vec![0.0; p.n_regs],
            s: vec![0.0; ns],
            ds: vec![0.0; ns],
            dout: vec![0.0; n_out * np],
            work: Vec::new(),
        }
    }

    fn fits(&self, p: &Program, n_out: usize, np: usize) -> bool {
        self.regs.len() == p.n_regs && self.s.len() == p.n_states * np && self.dout.len() == n_out * np
    }
}

impl VensimWorkspace {
    fn new(p: &Program) -> VensimWorkspace {
        let n = p.n_states;
        VensimWorkspace {
            regs: vec![0.0; p.n_regs],
            params: vec![0.0; p.n_params],
            y: vec![0.0; n],
            dy: vec![0.0; n],
            x0: vec![0.0; n],
            k: vec![0.0; n],
            acc: vec![0.0; n],
            sens: None,
        }
    }

    fn fits(&self, p: &Program) -> bool {
        self.regs.len() == p.n_regs && self.params.len() == p.n_params && self.y.len() == p.n_states
    }
}

/// Options of [`VensimModel::compile_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Overrides the integration method of the file's settings (Euler when it has none).
    pub method: Option<Method>,
    /// Native code where there is a JIT (the default), or the interpreter.
    pub jit: bool,
    /// Seed of the random functions' streams.
    pub seed: u64,
    /// Where `GET …` calls read their files; by default the directory of the source's name.
    pub files: Option<data::Files>,
    /// Vensim output files (`.tab`, `.csv`) among those files that hold the values of data variables without
    /// an equation (a run of another model), searched in order — PySD's `data_files`.
    pub data_outputs: Vec<String>,
    /// Offer exact output derivatives (Euler only), which switch fits to derivative-based polishing.
    pub sensitivities: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { method: None, jit: true, seed: 0, files: None, data_outputs: Vec::new(), sensitivities: false }
    }
}

/// The directory a source's name is in (the current directory for a bare name).
fn source_dir(source_name: &str) -> std::path::PathBuf {
    std::path::Path::new(source_name).parent().map_or_else(|| ".".into(), |p| p.to_path_buf())
}

/// The purpose key of the random functions' streams (with the seed and the step number).
const DRAW_PURPOSE: u64 = 0x7665_6e73_696d; // "vensim"

impl VensimModel {
    /// Parse and compile model text. `source_name` labels error messages and names the model (its stem).
    /// `method` overrides the integration method of the file's settings (Euler when it has none).
    pub fn compile(source: &str, source_name: &str, method: Option<Method>) -> Result<VensimModel, ParseError> {
        VensimModel::compile_with(source, source_name, &Options { method, ..Options::default() })
    }

    pub fn compile_with(source: &str, source_name: &str, options: &Options) -> Result<VensimModel, ParseError> {
        let src = source.strip_prefix('\u{feff}').unwrap_or(source);
        let err = |e: lexer::Located| {
            let (line, column) = line_col(src, e.at);
            ParseError { source_name: source_name.to_string(), line, column, message: e.message }
        };
        let file = mdl::read(src).map_err(err)?;
        let method = match (options.method, file.method) {
            (Some(m), _) => m,
            (None, mdl::FileMethod::Euler) => Method::Euler,
            (None, mdl::FileMethod::Rk4) => Method::Rk4,
            (None, mdl::FileMethod::Rk2 { at }) => {
                return Err(err(lexer::Located::new(
                    at,
                    "the file's settings ask for RK2 integration, which is not supported: set the configuration's \
                     \"method\" to \"euler\" or \"rk4\"",
                )));
            }
        };
        let files = options.files.clone().unwrap_or_else(|| data::Files::Dir(source_dir(source_name)));
        let lowered = lower::lower(&file, Some(files), &options.data_outputs).map_err(err)?;
        let compiled = compile_system(&lowered.system, Sensitivities::Off).map_err(|e| {
            let places = &lowered.places;
            let at = match e.site {
                Site::Var(k) => places.vars.get(k),
                Site::StateInitial(k) | Site::StateUpdate(k) => places.states.get(k),
                Site::Output(k) => places.outputs.get(k),
                Site::Table(k) => places.tables.get(k),
            };
            // A cycle among auxiliaries is one no stock breaks: say so in Vensim's terms.
            let message = match e.message.strip_prefix("circular definition: ") {
                Some(cycle) => format!("circular definition without a stock (INTEG) to break it: {cycle}"),
                None => e.message,
            };
            err(lexer::Located::new(at.copied().unwrap_or(0), message))
        })?;
        let mut program = compiled.program;
        let mut jit_fallback = None;
        if options.jit
            && cfg!(not(target_arch = "wasm32"))
            && let Err(why) = program.compile_native()
        {
            jit_fallback = Some(why);
        }
        let system = lowered.system;
        let spec = ModelSpec {
            name: model_name(source_name),
            params: system.params[..lowered.n_params].iter().map(|(n, d)| ParamSpec::new(n.clone(), *d)).collect(),
            inputs: lowered.inputs,
            outputs: system.outputs.iter().map(|(n, _)| n.clone()).collect(),
            output_kind: OutputKind::TimeSeries,
        };
        Ok(VensimModel {
            spec,
            program,
            control: lowered.control,
            method,
            kinds: system.states.iter().map(|s| s.kind).collect(),
            structural: lowered.structural,
            seed: options.seed,
            jit_fallback,
            system: Arc::new(system),
            sensitivity_program: Arc::new(OnceLock::new()),
            jit: options.jit,
            sensitivities: options.sensitivities,
        })
    }

    /// The program with tangent code, compiled (and JIT-compiled, as the plain one) on first use.
    fn sensitivity_program(&self) -> Result<&Program, &String> {
        let compiled = self.sensitivity_program.get_or_init(|| {
            let mut program = compile_system(&self.system, Sensitivities::Tangent)
                .map_err(|e| format!("the model's sensitivities: {}", e.message))?
                .program;
            if self.jit {
                // The interpreter gives the same bits; native code is only faster.
                let _ = program.compile_native();
            }
            Ok(program)
        });
        compiled.as_ref()
    }

    /// The `.Control` section's values.
    pub fn control(&self) -> Control {
        self.control
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Number of stocks (the inputs).
    pub fn n_stocks(&self) -> usize {
        self.spec.inputs.len()
    }

    /// Whether simulations run native code.
    pub fn is_native(&self) -> bool {
        self.program.is_native()
    }

    /// Why simulations are interpreted although the JIT was asked for, if they are.
    pub fn jit_fallback(&self) -> Option<&str> {
        self.jit_fallback.as_deref()
    }

    /// The times Vensim would save: INITIAL TIME to FINAL TIME every SAVEPER, snapped to the step grid.
    pub fn save_times(&self) -> Vec<f64> {
        let Control { initial_time: t0, final_time, time_step: dt, saveper } = self.control;
        let every = (saveper / dt).round().max(1.0) as u64;
        let last = ((final_time - t0) / dt + 1e-9).floor().max(0.0) as u64;
        (0..=last).step_by(every as usize).map(|n| t0 + n as f64 * dt).collect()
    }

    /// The step number of `t` on the grid `INITIAL TIME + n·TIME STEP`, if it is on it: within 1e-9 of a
    /// step, plus a few units of rounding of `t` itself.
    pub fn step_of(&self, t: f64) -> Option<u64> {
        let Control { initial_time: t0, time_step: dt, .. } = self.control;
        let n = ((t - t0) / dt).round();
        let tolerance = 1e-9 * dt + 4.0 * f64::EPSILON * t.abs().max(t0.abs());
        if !(n >= 0.0 && n < math::powi(2f64, 52)) || (t - (t0 + n * dt)).abs() > tolerance {
            return None;
        }
        Some(n as u64)
    }

    fn check_call(&self, params: &[f64], inputs: &[f64], times: &[f64], out: &[f64]) -> Result<(), SimError> {
        let spec = &self.spec;
        if params.len() != spec.params.len() {
            return Err(SimError::BadInput(format!(
                "{} expects {} parameters, got {}",
                spec.name,
                spec.params.len(),
                params.len()
            )));
        }
        if inputs.len() != spec.inputs.len() {
            return Err(SimError::BadInput(format!(
                "{} expects {} inputs (the stocks' initial values), got {}",
                spec.name,
                spec.inputs.len(),
                inputs.len()
            )));
        }
        if out.len() != spec.output_len(times.len()) {
            return Err(SimError::BadInput(format!(
                "output buffer has length {}, expected {}",
                out.len(),
                spec.output_len(times.len())
            )));
        }
        for (p, s) in params.iter().zip(&spec.params) {
            if !p.is_finite() {
                return Err(SimError::BadParameter { name: s.name.clone(), reason: format!("{p} is not finite") });
            }
        }
        for (k, why) in &self.structural {
            if let (Some(p), Some(s)) = (params.get(*k), spec.params.get(*k))
                && p.to_bits() != s.default.to_bits()
            {
                return Err(SimError::BadParameter {
                    name: s.name.clone(),
                    reason: format!("{why}: the model's structure depends on it, so it must stay {}", s.default),
                });
            }
        }
        for (x, name) in inputs.iter().zip(&spec.inputs) {
            if x.is_infinite() {
                return Err(SimError::BadInput(format!("the initial value of '{name}' is {x}")));
            }
        }
        let mut prev = 0;
        for &t in times {
            let n = self.step_of(t).ok_or_else(|| {
                let Control { initial_time, time_step, .. } = self.control;
                SimError::BadInput(format!(
                    "time {t} is not on the model's step grid (INITIAL TIME {initial_time} + n × TIME STEP \
                     {time_step}, n ≥ 0)"
                ))
            })?;
            if n < prev {
                return Err(SimError::BadInput("times must be non-decreasing".into()));
            }
            prev = n;
        }
        Ok(())
    }

    /// Fill program `p`'s draw slots for step `n` from the stream keyed by the seed and the step.
    fn draw_into(&self, p: &Program, regs: &mut [f64], n: u64) {
        if p.draws.is_empty() {
            return;
        }
        let mut stream = Stream::new(self.seed, n, DRAW_PURPOSE);
        let d0 = p.draw_reg(0);
        for (r, kind) in regs[d0..d0 + p.draws.len()].iter_mut().zip(&p.draws) {
            *r = match kind {
                DrawKind::Normal => stream.normal(),
                DrawKind::Uniform => stream.uniform(),
            };
        }
    }
}

/// The file stem of `source_name` (without `.mdl` in any case), or `"vensim"` when there is none.
fn model_name(source_name: &str) -> String {
    let file = source_name.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = match file.len().checked_sub(4) {
        Some(k) if file.is_char_boundary(k) && file[k..].eq_ignore_ascii_case(".mdl") => &file[..k],
        _ => file,
    };
    if stem.is_empty() { "vensim".to_string() } else { stem.to_string() }
}

impl Model for VensimModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(VensimWorkspace::new(&self.program))
    }

    /// Exact derivatives for Euler: the step `y ← y + dt·F(y, p)` differentiated, `s ← s + dt·Ḟ` with
    /// `Ḟ = ∂F/∂u·s + ∂F/∂p` (an assigned state takes `Ḟ` itself), from the program's tangent code, run once
    /// per parameter without forming ∂F/∂u.
    fn has_sensitivities(&self) -> bool {
        self.sensitivities && self.method == Method::Euler
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
        let ws = downcast_workspace::<VensimWorkspace>(ws, &self.spec.name)?;
        self.check_call(params, inputs, times, out)?;
        let np = params.len();
        if sens.len() != out.len() * np {
            return Err(SimError::BadInput(format!(
                "sensitivity buffer has length {}, expected {}",
                sens.len(),
                out.len() * np
            )));
        }
        if !self.has_sensitivities() {
            return Err(SimError::Other(
                "exact sensitivities are computed for Euler integration, with \"sensitivities\": true".into(),
            ));
        }
        let p = self.sensitivity_program().map_err(|e| SimError::Other(e.clone()))?;
        let n_out = self.spec.outputs.len();
        if !ws.fits(&self.program) {
            *ws = VensimWorkspace::new(&self.program);
        }
        if !ws.sens.as_ref().is_some_and(|sc| sc.fits(p, n_out, np)) {
            ws.sens = Some(SensitivityScratch::new(p, n_out, np));
        }
        if times.is_empty() {
            return Ok(());
        }
        let Control { initial_time: t0, time_step: dt, .. } = self.control;
        let VensimWorkspace { params: all, y, dy, sens: scratch, .. } = ws;
        let Some(SensitivityScratch { regs, s, ds, dout, work }) = scratch.as_mut() else {
            return Err(SimError::Other("no sensitivity workspace".into()));
        };
        all[..np].copy_from_slice(params);
        all[np..].copy_from_slice(inputs);
        p.start(regs, all, y);
        p.start_sensitivities(regs, s);
        if let Some(i) = y.iter().position(|x| !x.is_finite()) {
            let name = self.spec.inputs.get(i).map_or("a hidden stock", String::as_str);
            return Err(SimError::BadInput(format!("the model file's initial value of '{name}' is {}", y[i])));
        }
        let mut next = 0;
        let mut next_step = self.step_of(times[0]).unwrap_or(0);
        let mut n: u64 = 0;
        loop {
            let t = t0 + n as f64 * dt;
            self.draw_into(p, regs, n);
            while next_step == n {
                p.tangent_outputs(regs, t, y, s, &mut out[next * n_out..(next + 1) * n_out], dout);
                sens[next * n_out * np..(next + 1) * n_out * np].copy_from_slice(dout);
                next += 1;
                match times.get(next) {
                    Some(&t) => next_step = self.step_of(t).unwrap_or(0),
                    None => return Ok(()),
                }
            }
            p.tangent_rhs(regs, work, t, y, s, dy, ds);
            let ns = y.len();
            for (k, kind) in self.kinds.iter().enumerate() {
                match kind {
                    Update::Integrate => {
                        y[k] += dy[k] * dt;
                        for q in 0..np {
                            s[q * ns + k] += ds[q * ns + k] * dt;
                        }
                    }
                    Update::Assign => {
                        y[k] = dy[k];
                        for q in 0..np {
                            s[q * ns + k] = ds[q * ns + k];
                        }
                    }
                }
            }
            n += 1;
            if !y.iter().all(|x| x.is_finite()) {
                return Err(SimError::Diverged { t: t0 + n as f64 * dt });
            }
        }
    }

    /// Outputs at each requested time are the values at that step: the stocks, and the auxiliaries
    /// computed from them at that time. Times must lie on the step grid; they may run past FINAL TIME.
    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let ws = downcast_workspace::<VensimWorkspace>(ws, &self.spec.name)?;
        self.check_call(params, inputs, times, out)?;
        let p = &self.program;
        // A workspace made by another `VensimModel` has the right type but maybe the wrong sizes.
        if !ws.fits(p) {
            *ws = VensimWorkspace::new(p);
        }
        if times.is_empty() {
            return Ok(());
        }
        let Control { initial_time: t0, time_step: dt, .. } = self.control;
        let VensimWorkspace { regs, params: all, y, dy, x0, k, acc, .. } = ws;
        all[..params.len()].copy_from_slice(params);
        all[params.len()..].copy_from_slice(inputs);
        p.start(regs, all, y);
        // Inputs were checked, so a non-finite start comes from the file's initial expression.
        if let Some(i) = y.iter().position(|x| !x.is_finite()) {
            let name = self.spec.inputs.get(i).map_or("a hidden stock", String::as_str);
            return Err(SimError::BadInput(format!("the model file's initial value of '{name}' is {}", y[i])));
        }

        let n_out = self.spec.outputs.len();
        let mut next = 0; // next requested time to fill
        let mut next_step = self.step_of(times[0]).unwrap_or(0);
        let mut n: u64 = 0;
        loop {
            // Time is computed from the step number, not accumulated, so it stays on the grid.
            let t = t0 + n as f64 * dt;
            self.draw_into(p, regs, n);
            while next_step == n {
                p.outputs(regs, t, y, &mut out[next * n_out..(next + 1) * n_out]);
                next += 1;
                match times.get(next) {
                    Some(&t) => next_step = self.step_of(t).unwrap_or(0),
                    None => return Ok(()),
                }
            }
            p.rhs(regs, t, y, dy);
            match self.method {
                Method::Euler => {
                    // PySD's `state + ddt * dt`, term for term; assigned states take their next value.
                    for ((x, d), kind) in y.iter_mut().zip(dy.iter()).zip(&self.kinds) {
                        *x = match kind {
                            Update::Integrate => *x + *d * dt,
                            Update::Assign => *d,
                        };
                    }
                }
                Method::Rk4 => {
                    let (mid, end) = (t0 + (n as f64 + 0.5) * dt, t0 + (n + 1) as f64 * dt);
                    self.rk4_step(regs, y, dy, x0, k, acc, [mid, mid, end], dt);
                }
            }
            n += 1;
            if !y.iter().all(|x| x.is_finite()) {
                return Err(SimError::Diverged { t: t0 + n as f64 * dt });
            }
        }
    }
}

impl VensimModel {
    /// One classic RK4 step from `y`, whose first-stage updates are in `dy`; `times` are those of stages
    /// 2–4. Integrated states take the RK4 combination, assigned states their first-stage next value (they
    /// hold still within the step).
    #[allow(clippy::too_many_arguments)]
    fn rk4_step(
        &self,
        regs: &mut [f64],
        y: &mut [f64],
        dy: &[f64],
        x0: &mut [f64],
        k: &mut [f64],
        acc: &mut [f64],
        times: [f64; 3],
        dt: f64,
    ) {
        let p = &self.program;
        let half = 0.5 * dt;
        x0.copy_from_slice(y);
        k.copy_from_slice(dy);
        acc.copy_from_slice(dy);
        // Each stage starts from x0 along the previous stage's rates: k2 and k3 at the midpoint, k4 at the
        // end; acc = k1 + 2·k2 + 2·k3 + k4.
        for ((stage_dt, weight), t) in [(half, 2.0), (half, 2.0), (dt, 1.0)].into_iter().zip(times) {
            for (((x, &x0), &ki), kind) in y.iter_mut().zip(x0.iter()).zip(k.iter()).zip(&self.kinds) {
                *x = match kind {
                    Update::Integrate => x0 + stage_dt * ki,
                    Update::Assign => x0,
                };
            }
            p.rhs(regs, t, y, k);
            for (a, &ki) in acc.iter_mut().zip(k.iter()) {
                *a += weight * ki;
            }
        }
        for (i, x) in y.iter_mut().enumerate() {
            *x = match self.kinds[i] {
                Update::Integrate => x0[i] + dt / 6.0 * acc[i],
                Update::Assign => dy[i],
            };
        }
    }
}

/// The plugin configuration: `{"source": "<model text>", "source_name": "<file name>", "method":
/// "euler"|"rk4", "jit": bool, "seed": n}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    source: String,
    #[serde(default = "default_source_name")]
    source_name: String,
    #[serde(default)]
    method: Option<Method>,
    #[serde(default = "default_jit")]
    jit: bool,
    #[serde(default)]
    seed: u64,
    /// The directory `GET …` calls read from (default: the source name's directory).
    #[serde(default)]
    data_dir: Option<String>,
    /// Or the data files themselves, by name (text files: CSV), e.g. from the browser.
    #[serde(default)]
    data_files: Option<std::collections::BTreeMap<String, String>>,
    /// Vensim output files holding data variables' values (see [`Options::data_outputs`]).
    #[serde(default)]
    data_outputs: Vec<String>,
    #[serde(default)]
    sensitivities: bool,
}

fn default_source_name() -> String {
    "model.mdl".into()
}

fn default_jit() -> bool {
    true
}

/// Build a model from the plugin ABI's configuration: `kind` must be `"vensim"` and `config_json` an object
/// `{"source": text, "source_name": name (default "model.mdl"), "method": "euler" | "rk4" (default: the
/// file's setting, else Euler), "jit": true | false (default true), "seed": the random functions' seed
/// (default 0), "data_dir": the directory `GET …` calls read (default: the source name's), or "data_files":
/// {name: text}, "data_outputs": [Vensim output files with data variables' values], "sensitivities": exact
/// output derivatives for Euler (default false)}`; other keys are errors.
pub fn model_from_config(kind: &str, config_json: &str) -> Result<VensimModel, String> {
    if kind != KIND {
        return Err(format!("unknown model kind '{kind}' (this plugin provides: {KIND})"));
    }
    let config: Config = serde_json::from_str(config_json).map_err(|e| format!("invalid vensim config: {e}"))?;
    let files = match (config.data_dir, config.data_files) {
        (Some(_), Some(_)) => return Err("invalid vensim config: give \"data_dir\" or \"data_files\", not both".into()),
        (Some(dir), None) => Some(data::Files::Dir(dir.into())),
        (None, Some(map)) => Some(data::Files::Memory(map.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())),
        (None, None) => None,
    };
    let options = Options {
        method: config.method,
        jit: config.jit,
        seed: config.seed,
        files,
        data_outputs: config.data_outputs,
        sensitivities: config.sensitivities,
    };
    VensimModel::compile_with(&config.source, &config.source_name, &options).map_err(|e| e.to_string())
}

/// The plugin's face to the host: self-description and model construction through the C ABI.
pub struct VensimPlugin;

impl parfit_abi::Plugin for VensimPlugin {
    fn info() -> parfit_abi::PluginInfo {
        parfit_abi::PluginInfo {
            name: "vensim".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![parfit_abi::KindInfo {
                kind: KIND.into(),
                extensions: vec![EXTENSION.into()],
                description: DESCRIPTION.into(),
                entry: parfit_abi::Entry::Model,
            }],
        }
    }

    fn create(kind: &str, config_json: &str) -> Result<Box<dyn Model>, String> {
        Ok(Box::new(model_from_config(kind, config_json)?))
    }
}

parfit_abi::export_plugin!(VensimPlugin);
