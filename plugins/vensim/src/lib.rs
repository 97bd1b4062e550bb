//! parfit plugin for Vensim (`.mdl`) stock-and-flow models — the subset models like the PySD cookbook's
//! aging chain use — integrated on Vensim's fixed time grid with Euler (Vensim's and PySD's default) or RK4.
//!
//! The model file is compiled once ([`VensimModel::compile`]) into register code; a simulation then runs
//! that code without name lookups or allocation. Constants are the model's parameters, the stocks'
//! starting values its per-case inputs, stocks and auxiliaries its outputs. See the crate's README.

mod compile;
pub mod data;
mod eval;
mod expr;
mod lexer;
mod mdl;
mod parser;

use parfit_core::model::downcast_workspace;
use parfit_core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, Workspace};
use serde::Deserialize;

pub use compile::Control;
use compile::{Program, TIME_REG};
use eval::exec;

/// The model kind this plugin provides.
pub const KIND: &str = "vensim";
/// File extension (without the dot) of model files of that kind.
pub const EXTENSION: &str = "mdl";
const DESCRIPTION: &str = "Vensim stock-and-flow model (.mdl subset: INTEG, constants, auxiliaries, MIN/MAX/ABS/EXP/\
                           LN/SQRT/IF THEN ELSE), Euler or RK4 on the file's time grid";

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
}

/// Per-thread scratch: the register file and the integrator's vectors.
#[derive(Debug)]
struct VensimWorkspace {
    regs: Vec<f64>,
    /// RK4: the latest stage's rates.
    k: Vec<f64>,
    /// RK4: the state at the start of the step, and the weighted sum of its stage rates.
    x0: Vec<f64>,
    acc: Vec<f64>,
}

impl VensimModel {
    /// Parse and compile model text. `source_name` labels error messages and names the model (its stem).
    /// `method` overrides the integration method of the file's settings (Euler when it has none).
    pub fn compile(source: &str, source_name: &str, method: Option<Method>) -> Result<VensimModel, ParseError> {
        let src = source.strip_prefix('\u{feff}').unwrap_or(source);
        let err = |e: lexer::Located| {
            let (line, column) = line_col(src, e.at);
            ParseError { source_name: source_name.to_string(), line, column, message: e.message }
        };
        let file = mdl::read(src).map_err(err)?;
        let compiled = compile::compile(&file.equations).map_err(err)?;
        let method = match (method, file.method) {
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
        let spec = ModelSpec {
            name: model_name(source_name),
            params: compiled.params.into_iter().map(|(n, d)| ParamSpec::new(n, d)).collect(),
            inputs: compiled.stocks,
            outputs: compiled.outputs,
            output_kind: OutputKind::TimeSeries,
        };
        Ok(VensimModel { spec, program: compiled.program, control: compiled.control, method })
    }

    /// The `.Control` section's values.
    pub fn control(&self) -> Control {
        self.control
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Number of stocks (the first outputs, and the inputs).
    pub fn n_stocks(&self) -> usize {
        self.program.n_stocks
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
        if !(n >= 0.0 && n < 2f64.powi(52)) || (t - (t0 + n * dt)).abs() > tolerance {
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
}

/// The file stem of `source_name`, or `"vensim"` when there is none.
fn model_name(source_name: &str) -> String {
    let file = source_name.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = file.strip_suffix(".mdl").unwrap_or(file);
    if stem.is_empty() { "vensim".to_string() } else { stem.to_string() }
}

impl Model for VensimModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        let s = self.program.n_stocks;
        Box::new(VensimWorkspace {
            regs: vec![0.0; self.program.n_regs],
            k: vec![0.0; s],
            x0: vec![0.0; s],
            acc: vec![0.0; s],
        })
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
        if ws.regs.len() != p.n_regs || ws.k.len() != p.n_stocks {
            *ws = VensimWorkspace {
                regs: vec![0.0; p.n_regs],
                k: vec![0.0; p.n_stocks],
                x0: vec![0.0; p.n_stocks],
                acc: vec![0.0; p.n_stocks],
            };
        }
        if times.is_empty() {
            return Ok(());
        }
        let Control { initial_time: t0, time_step: dt, .. } = self.control;
        let VensimWorkspace { regs, k, x0, acc } = ws;
        let base = p.stock_reg(0);

        for &(r, v) in &p.consts {
            regs[r as usize] = v;
        }
        regs[p.param_reg(0)..p.param_reg(0) + p.n_params].copy_from_slice(params);
        regs[p.input_reg(0)..p.input_reg(0) + p.n_stocks].copy_from_slice(inputs);
        regs[TIME_REG as usize] = t0;
        exec(&p.setup, regs);
        exec(&p.init, regs);
        // Inputs were checked, so a non-finite start comes from the file's initial expression.
        for (x, name) in regs[base..base + p.n_stocks].iter().zip(&self.spec.inputs) {
            if !x.is_finite() {
                return Err(SimError::BadInput(format!("the model file's initial value of '{name}' is {x}")));
            }
        }

        let n_out = p.out_regs.len();
        let mut next = 0; // next requested time to fill
        let mut next_step = self.step_of(times[0]).expect("checked");
        let mut n: u64 = 0;
        loop {
            // Time is computed from the step number, not accumulated, so it stays on the grid.
            let t = t0 + n as f64 * dt;
            regs[TIME_REG as usize] = t;
            exec(&p.step, regs);
            while next_step == n {
                let row = &mut out[next * n_out..(next + 1) * n_out];
                for (o, &r) in row.iter_mut().zip(&p.out_regs) {
                    *o = regs[r as usize];
                }
                next += 1;
                match times.get(next) {
                    Some(&t) => next_step = self.step_of(t).expect("checked"),
                    None => return Ok(()),
                }
            }
            let finite = match self.method {
                Method::Euler => {
                    // PySD's `state + ddt * dt`, term for term. The rates sit above the stocks, so one
                    // stock's new value cannot feed into another's rate.
                    let (lo, hi) = regs.split_at_mut(p.rate_base);
                    let xs = &mut lo[base..base + p.n_stocks];
                    for (x, d) in xs.iter_mut().zip(&hi[..p.n_stocks]) {
                        *x += *d * dt;
                    }
                    xs.iter().fold(true, |ok, x| ok & x.is_finite())
                }
                Method::Rk4 => {
                    k.copy_from_slice(&regs[p.rate_base..p.rate_base + p.n_stocks]);
                    let (mid, end) = (t0 + (n as f64 + 0.5) * dt, t0 + (n + 1) as f64 * dt);
                    self.rk4_step(regs, k, x0, acc, [mid, mid, end], dt);
                    regs[base..base + p.n_stocks].iter().all(|x| x.is_finite())
                }
            };
            n += 1;
            if !finite {
                return Err(SimError::Diverged { t: t0 + n as f64 * dt });
            }
        }
    }
}

impl VensimModel {
    /// One classic RK4 step from the state in the stock registers, whose rates (k1) are in `k`; `times`
    /// are those of stages 2–4. Leaves the new state in the stock registers.
    fn rk4_step(&self, regs: &mut [f64], k: &mut [f64], x0: &mut [f64], acc: &mut [f64], times: [f64; 3], dt: f64) {
        let p = &self.program;
        let base = p.stock_reg(0);
        let half = 0.5 * dt;
        x0.copy_from_slice(&regs[base..base + p.n_stocks]);
        acc.copy_from_slice(k);
        // Each stage starts from x0 along the previous stage's rates: k2 and k3 at the midpoint, k4 at the
        // end; acc = k1 + 2·k2 + 2·k3 + k4.
        for ((stage_dt, weight), t) in [(half, 2.0), (half, 2.0), (dt, 1.0)].into_iter().zip(times) {
            for i in 0..p.n_stocks {
                regs[base + i] = x0[i] + stage_dt * k[i];
            }
            regs[TIME_REG as usize] = t;
            exec(&p.step, regs);
            k.copy_from_slice(&regs[p.rate_base..p.rate_base + p.n_stocks]);
            for (a, &ki) in acc.iter_mut().zip(k.iter()) {
                *a += weight * ki;
            }
        }
        for i in 0..p.n_stocks {
            regs[base + i] = x0[i] + dt / 6.0 * acc[i];
        }
    }
}

/// The plugin configuration: `{"source": "<model text>", "source_name": "<file name>", "method": "euler"|"rk4"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    source: String,
    #[serde(default = "default_source_name")]
    source_name: String,
    #[serde(default)]
    method: Option<Method>,
}

fn default_source_name() -> String {
    "model.mdl".into()
}

/// Build a model from the plugin ABI's configuration: `kind` must be `"vensim"` and `config_json` an object
/// `{"source": text, "source_name": name (default "model.mdl"), "method": "euler" | "rk4" (default: the
/// file's setting, else Euler)}`; other keys are errors.
pub fn model_from_config(kind: &str, config_json: &str) -> Result<VensimModel, String> {
    if kind != KIND {
        return Err(format!("unknown model kind '{kind}' (this plugin provides: {KIND})"));
    }
    let config: Config = serde_json::from_str(config_json).map_err(|e| format!("invalid vensim config: {e}"))?;
    VensimModel::compile(&config.source, &config.source_name, config.method).map_err(|e| e.to_string())
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
            }],
        }
    }

    fn create(kind: &str, config_json: &str) -> Result<Box<dyn Model>, String> {
        Ok(Box::new(model_from_config(kind, config_json)?))
    }
}

parfit_abi::export_plugin!(VensimPlugin);
