//! What a model is: its declared interface ([`ModelSpec`]) and the pure function that simulates it ([`Model`]).

use std::any::Any;

use serde::{Deserialize, Serialize};

/// One parameter a model declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub default: f64,
    /// Lower bound (`-inf` when unbounded).
    #[serde(default = "neg_inf", with = "float_or_null")]
    pub lower: f64,
    /// Upper bound (`+inf` when unbounded).
    #[serde(default = "pos_inf", with = "float_or_null")]
    pub upper: f64,
    /// Search this parameter on a log scale (it must then be positive).
    #[serde(default)]
    pub log_scale: bool,
}

impl ParamSpec {
    /// An unbounded parameter with a default value.
    pub fn new(name: impl Into<String>, default: f64) -> Self {
        ParamSpec { name: name.into(), default, lower: f64::NEG_INFINITY, upper: f64::INFINITY, log_scale: false }
    }
}

fn neg_inf() -> f64 {
    f64::NEG_INFINITY
}
fn pos_inf() -> f64 {
    f64::INFINITY
}

/// JSON has no infinities: infinite bounds travel as `null`.
mod float_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        // A missing/null bound means "unbounded"; the sign is fixed up by `ModelSpec::normalise`.
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Whether a model's outputs are sampled at requested times or are one value each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// `out[i * n_outputs + j]` is output `j` at `times[i]`.
    TimeSeries,
    /// `out[j]` is output `j`; `times` is ignored.
    Scalar,
}

/// What a model declares: its parameters, per-case inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub params: Vec<ParamSpec>,
    /// Names of per-case inputs (covariates, initial conditions), in the order `simulate` expects them.
    #[serde(default)]
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub output_kind: OutputKind,
}

impl ModelSpec {
    /// Index of a parameter by name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Index of an output by name.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o == name)
    }

    /// Index of an input by name.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|o| o == name)
    }

    /// The defaults of all parameters, in order.
    pub fn defaults(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.default).collect()
    }

    /// Length of the output buffer `simulate` fills for `n_times` requested times.
    pub fn output_len(&self, n_times: usize) -> usize {
        match self.output_kind {
            OutputKind::TimeSeries => n_times * self.outputs.len(),
            OutputKind::Scalar => self.outputs.len(),
        }
    }

    /// Replace the NaN placeholders that deserialised `null` bounds leave with the right infinities.
    pub fn normalise(mut self) -> Self {
        for p in &mut self.params {
            if p.lower.is_nan() {
                p.lower = f64::NEG_INFINITY;
            }
            if p.upper.is_nan() {
                p.upper = f64::INFINITY;
            }
        }
        self
    }
}

/// Why a simulation failed. A failure is a value: objectives turn it into `+inf`, runners report it per case.
/// Serialisable so it can cross the plugin ABI intact.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum SimError {
    #[error("the solution diverged (non-finite state) at t = {t}")]
    Diverged { t: f64 },
    /// The step size shrank until it no longer moves `t` (a few units in its last place); `worst` names the
    /// state components whose error estimates forced it down, largest first.
    #[error("the step size fell to {h:e} at t = {t}, too small to advance the solution{}", worst_components(worst))]
    StepTooSmall {
        t: f64,
        h: f64,
        #[serde(default)]
        worst: Vec<ComponentError>,
    },
    #[error("more than {max_steps} steps were needed before t = {t}")]
    TooManySteps { t: f64, max_steps: usize },
    #[error("bad parameter {name}: {reason}")]
    BadParameter { name: String, reason: String },
    #[error("bad input: {0}")]
    BadInput(String),
    /// Anything else, e.g. an error reported through the plugin ABI.
    #[error("{0}")]
    Other(String),
}

/// A state component named in a solver failure: its value when the solver gave up, and its error estimate in
/// units of its tolerance (`atol + rtol·|value|`) on the last step tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentError {
    pub name: String,
    pub value: f64,
    pub error: f64,
}

/// `; largest error estimates (in tolerances): x = 1.5 (40), y = -2e-3 (12)`, or nothing when none are named.
fn worst_components(worst: &[ComponentError]) -> String {
    if worst.is_empty() {
        return String::new();
    }
    // Plain notation where it reads well, scientific beyond.
    let number = |v: f64| if v == 0.0 || (1e-3..1e6).contains(&v.abs()) { format!("{v}") } else { format!("{v:e}") };
    let list: Vec<String> =
        worst.iter().map(|c| format!("{} = {} ({:.3})", c.name, number(c.value), c.error)).collect();
    format!("; largest error estimates (in tolerances): {}", list.join(", "))
}

/// Per-thread scratch space a model creates once and reuses on every call (solver caches, work arrays).
pub type Workspace = Box<dyn Any + Send>;

/// A model: a pure function of (parameters, one case's inputs, output times).
///
/// Implementations must be deterministic: the same arguments give bit-identical outputs whatever thread
/// runs them and whatever the workspace was used for before.
pub trait Model: Send + Sync {
    fn spec(&self) -> &ModelSpec;

    /// Fresh scratch space for one thread.
    fn workspace(&self) -> Workspace;

    /// Simulate into `out`, whose length is `spec().output_len(times.len())`.
    /// `params` has one entry per `spec().params`, `inputs` one per `spec().inputs`.
    /// Times are non-decreasing.
    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError>;

    /// Whether [`Model::simulate_sensitivities`] is implemented (exact derivatives of the outputs with respect
    /// to the parameters, e.g. from forward sensitivity equations).
    fn has_sensitivities(&self) -> bool {
        false
    }

    /// Simulate like [`Model::simulate`] and also write `sens[k * n_params + p]` = ∂`out[k]`/∂`params[p]`, so
    /// `sens` holds one row of parameter derivatives per output value (`out.len() × params.len()`).
    fn simulate_sensitivities(
        &self,
        _ws: &mut Workspace,
        _params: &[f64],
        _inputs: &[f64],
        _times: &[f64],
        _out: &mut [f64],
        _sens: &mut [f64],
    ) -> Result<(), SimError> {
        Err(SimError::Other(format!("model {} does not provide sensitivities", self.spec().name)))
    }

    /// Work counters of the last simulation made with `ws`, for models that keep them (solver steps etc.).
    fn stats(&self, _ws: &Workspace) -> Option<SimStats> {
        None
    }
}

/// What a simulation cost: the counters a solver keeps. Counters that do not apply stay zero.
/// `#[repr(C)]` because it crosses the plugin ABI as is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Accepted steps.
    pub steps: u64,
    pub rejected_steps: u64,
    /// Right-hand-side (rate) evaluations.
    pub rhs_evaluations: u64,
    pub jacobian_evaluations: u64,
    /// LU factorisations of the iteration matrix (implicit solvers).
    pub factorisations: u64,
}

/// Fetch a model's own workspace type out of the type-erased box, or say the caller mixed workspaces up.
pub fn downcast_workspace<'a, W: 'static>(ws: &'a mut Workspace, model: &str) -> Result<&'a mut W, SimError> {
    ws.downcast_mut::<W>()
        .ok_or_else(|| SimError::Other(format!("the workspace passed to {model} was made by a different model")))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn bounds_round_trip_through_json_as_null() {
        let spec = ModelSpec {
            name: "m".into(),
            params: vec![ParamSpec { lower: 0.0, ..ParamSpec::new("a", 1.0) }],
            inputs: vec![],
            outputs: vec!["y".into()],
            output_kind: OutputKind::TimeSeries,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains("\"upper\":null"), "{json}");
        let back: ModelSpec = serde_json::from_str::<ModelSpec>(&json).unwrap().normalise();
        assert_eq!(back, spec);
    }

    /// A step-size failure names where it happened and the components to blame; one serialised without
    /// them (an older plugin's) still reads back.
    #[test]
    fn step_too_small_names_time_step_and_components() {
        let worst = vec![
            ComponentError { name: "y".into(), value: 2.5e-5, error: 41.0 },
            ComponentError { name: "x".into(), value: 0.97, error: 3.25 },
        ];
        let e = SimError::StepTooSmall { t: 0.026, h: 1.5e-18, worst };
        assert_eq!(
            e.to_string(),
            "the step size fell to 1.5e-18 at t = 0.026, too small to advance the solution; largest error \
             estimates (in tolerances): y = 2.5e-5 (41.000), x = 0.97 (3.250)"
        );
        let back: SimError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let old: SimError = serde_json::from_str(r#"{"kind":"step_too_small","detail":{"t":3.0,"h":1e-14}}"#).unwrap();
        assert_eq!(old, SimError::StepTooSmall { t: 3.0, h: 1e-14, worst: vec![] });
        assert_eq!(old.to_string(), "the step size fell to 1e-14 at t = 3, too small to advance the solution");
    }
}
