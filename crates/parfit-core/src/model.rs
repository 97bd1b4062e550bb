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
    #[error("the step size fell below the smallest allowed ({h:e}) at t = {t}")]
    StepTooSmall { t: f64, h: f64 },
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
}
