//! The objective: a model, one case, a cost and which parameters are searched. It maps search-space points
//! to costs, one at a time or as a batch that runs in parallel.

use crate::math;
use std::sync::Arc;

use crate::cost::{Cost, sum_of_squares};
use crate::dataset::Case;
use crate::model::{Model, SimError, Workspace};
use crate::optimise::{BatchEvaluator, Bounds, ResidualEvaluator};
use crate::parallel::{self, Spread};

/// A parameter the optimiser searches, with its bounds in model units.
#[derive(Debug, Clone, PartialEq)]
pub struct FreeParameter {
    /// Index into the model's parameters.
    pub index: usize,
    pub lower: f64,
    pub upper: f64,
    /// Search `ln(value)` instead of the value.
    pub log_scale: bool,
}

/// Why an objective could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetupError {
    #[error("the model has no parameter named '{name}' (it has: {available})")]
    UnknownParameter { name: String, available: String },
    #[error("the model has no output named '{name}' (it has: {available})")]
    UnknownOutput { name: String, available: String },
    #[error("parameter '{name}': start {start} lies outside its bounds [{lower}, {upper}]")]
    StartOutOfBounds { name: String, start: f64, lower: f64, upper: f64 },
    #[error("parameter '{name}': the lower bound {lower} exceeds the upper bound {upper}")]
    EmptyBounds { name: String, lower: f64, upper: f64 },
    #[error("parameter '{name}': bounds must be numbers or ±inf (got lower {lower:?}, upper {upper:?})")]
    BoundNotANumber { name: String, lower: f64, upper: f64 },
    #[error("parameter '{name}': a log-scale parameter must be positive (start {start}, lower bound {lower})")]
    LogScaleNotPositive { name: String, start: f64, lower: f64 },
    #[error("parameter '{name}': the value {value} is not a finite number")]
    NotFinite { name: String, value: f64 },
    #[error("{0}")]
    Invalid(String),
}

impl SetupError {
    /// The parameter a start or bounds error is about, so a front end can place it where that parameter is set.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            SetupError::StartOutOfBounds { name, .. }
            | SetupError::EmptyBounds { name, .. }
            | SetupError::LogScaleNotPositive { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Scratch space for evaluating the objective on one thread; the hot path allocates nothing else.
pub struct Scratch {
    model: Workspace,
    params: Vec<f64>,
    predicted: Vec<f64>,
    /// Model sensitivities (outputs × parameters), sized on first use.
    sensitivities: Vec<f64>,
}

/// Model + case + cost + which parameters are free.
pub struct Objective {
    model: Arc<dyn Model>,
    case: Case,
    /// Observation column k is model output `observed[k]`.
    observed: Vec<usize>,
    cost: Cost,
    /// Full parameter vector: starts of free parameters, values of fixed ones.
    base: Vec<f64>,
    free: Vec<FreeParameter>,
    parallel: bool,
    /// Spreads batches over processes as well as threads (see [`Spread`]); `None` in one process.
    spread: Option<Arc<dyn Spread>>,
    /// The batch methods' scratch, kept from batch to batch: a model workspace per worker that ran at once.
    scratches: parallel::Pool<Scratch>,
}

impl Objective {
    /// Every parameter free at its default within the model's bounds; observation columns named by `observed`.
    pub fn new(model: Arc<dyn Model>, case: Case, observed: &[String], cost: Cost) -> Result<Self, SetupError> {
        let spec = model.spec();
        cost.validate().map_err(SetupError::Invalid)?;
        let observed = observed
            .iter()
            .map(|name| {
                spec.output_index(name)
                    .ok_or_else(|| SetupError::UnknownOutput { name: name.clone(), available: spec.outputs.join(", ") })
            })
            .collect::<Result<Vec<_>, _>>()?;
        case.validate(spec.inputs.len(), observed.len()).map_err(SetupError::Invalid)?;
        let free = spec
            .params
            .iter()
            .enumerate()
            .map(|(index, p)| FreeParameter { index, lower: p.lower, upper: p.upper, log_scale: p.log_scale })
            .collect();
        Ok(Objective {
            base: spec.defaults(),
            model,
            case,
            observed,
            cost,
            free,
            parallel: true,
            spread: None,
            scratches: parallel::Pool::default(),
        })
    }

    fn index_of(&self, name: &str) -> Result<usize, SetupError> {
        let spec = self.model.spec();
        spec.param_index(name).ok_or_else(|| SetupError::UnknownParameter {
            name: name.to_string(),
            available: spec.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    fn free_mut(&mut self, index: usize) -> Option<&mut FreeParameter> {
        self.free.iter_mut().find(|f| f.index == index)
    }

    /// Set a parameter's starting value (free) or value (fixed).
    pub fn set_start(&mut self, name: &str, value: f64) -> Result<(), SetupError> {
        if !value.is_finite() {
            return Err(SetupError::NotFinite { name: name.to_string(), value });
        }
        let i = self.index_of(name)?;
        self.base[i] = value;
        Ok(())
    }

    /// Set a free parameter's bounds (in model units).
    pub fn set_bounds(&mut self, name: &str, lower: f64, upper: f64) -> Result<(), SetupError> {
        let i = self.index_of(name)?;
        if lower.is_nan() || upper.is_nan() {
            return Err(SetupError::BoundNotANumber { name: name.to_string(), lower, upper });
        }
        if lower > upper {
            return Err(SetupError::EmptyBounds { name: name.to_string(), lower, upper });
        }
        if let Some(f) = self.free_mut(i) {
            f.lower = lower;
            f.upper = upper;
        }
        Ok(())
    }

    /// Search a free parameter on a log scale.
    pub fn set_log_scale(&mut self, name: &str, log_scale: bool) -> Result<(), SetupError> {
        let i = self.index_of(name)?;
        if let Some(f) = self.free_mut(i) {
            f.log_scale = log_scale;
        }
        Ok(())
    }

    /// Hold a parameter at `value` during the search.
    pub fn fix(&mut self, name: &str, value: f64) -> Result<(), SetupError> {
        self.set_start(name, value)?;
        let i = self.index_of(name)?;
        self.free.retain(|f| f.index != i);
        Ok(())
    }

    /// Spread every batch over processes too (MPI ranks; see [`Spread`]), or not (`None`, the default).
    pub fn set_spread(&mut self, spread: Option<Arc<dyn Spread>>) {
        self.spread = spread;
    }

    /// `fill(first, rows)` for the whole of `out` (rows of `width`), through the spread when there is one.
    fn spread_rows(&self, width: usize, out: &mut [f64], fill: &mut dyn FnMut(usize, &mut [f64])) {
        match &self.spread {
            Some(spread) => spread.fill_rows(width, out, fill),
            None => fill(0, out),
        }
    }

    /// Evaluate batches on rayon's pool (the default) or sequentially.
    pub fn set_parallel(&mut self, parallel: bool) {
        self.parallel = parallel;
    }

    pub fn model(&self) -> &Arc<dyn Model> {
        &self.model
    }

    pub fn case(&self) -> &Case {
        &self.case
    }

    pub fn cost(&self) -> Cost {
        self.cost
    }

    pub fn free_parameters(&self) -> &[FreeParameter] {
        &self.free
    }

    /// Model outputs of the observation columns, in column order.
    pub fn observed_names(&self) -> Vec<String> {
        self.observed.iter().map(|&j| self.model.spec().outputs[j].clone()).collect()
    }

    /// Names of the free parameters, in search-space order.
    pub fn free_names(&self) -> Vec<String> {
        self.free.iter().map(|f| self.model.spec().params[f.index].name.clone()).collect()
    }

    /// The starting point in search space, after checking every free parameter's start against its bounds.
    pub fn start(&self) -> Result<Vec<f64>, SetupError> {
        let spec = self.model.spec();
        self.free
            .iter()
            .map(|f| {
                let name = &spec.params[f.index].name;
                let start = self.base[f.index];
                if f.lower > f.upper {
                    return Err(SetupError::EmptyBounds { name: name.clone(), lower: f.lower, upper: f.upper });
                }
                if !(f.lower <= start && start <= f.upper) {
                    return Err(SetupError::StartOutOfBounds {
                        name: name.clone(),
                        start,
                        lower: f.lower,
                        upper: f.upper,
                    });
                }
                if f.log_scale && (start <= 0.0 || f.lower < 0.0) {
                    return Err(SetupError::LogScaleNotPositive { name: name.clone(), start, lower: f.lower });
                }
                Ok(if f.log_scale { math::ln(start) } else { start })
            })
            .collect()
    }

    /// The search-space box.
    pub fn bounds(&self) -> Bounds {
        let to_search = |f: &FreeParameter, v: f64| if f.log_scale { math::ln(v) } else { v };
        Bounds {
            lower: self.free.iter().map(|f| to_search(f, f.lower)).collect(),
            upper: self.free.iter().map(|f| to_search(f, f.upper)).collect(),
        }
    }

    /// Write the full model parameter vector for search point `theta` into `params`.
    pub fn params_into(&self, theta: &[f64], params: &mut Vec<f64>) {
        params.clear();
        params.extend_from_slice(&self.base);
        for (f, &x) in self.free.iter().zip(theta) {
            params[f.index] = if f.log_scale { math::exp(x) } else { x };
        }
    }

    /// The full model parameter vector for search point `theta`.
    pub fn params(&self, theta: &[f64]) -> Vec<f64> {
        let mut params = Vec::with_capacity(self.base.len());
        self.params_into(theta, &mut params);
        params
    }

    pub fn scratch(&self) -> Scratch {
        let spec = self.model.spec();
        Scratch {
            model: self.model.workspace(),
            params: Vec::with_capacity(self.base.len()),
            predicted: vec![0.0; spec.output_len(self.case.times.len())],
            sensitivities: Vec::new(),
        }
    }

    /// The cost at search point `theta`, or the simulation's error.
    pub fn try_value(&self, scratch: &mut Scratch, theta: &[f64]) -> Result<f64, SimError> {
        self.params_into(theta, &mut scratch.params);
        let case = &self.case;
        self.model.simulate(&mut scratch.model, &scratch.params, &case.inputs, &case.times, &mut scratch.predicted)?;
        let n_outputs = self.model.spec().outputs.len();
        let (sum_sq, n) = sum_of_squares(&scratch.predicted, n_outputs, &case.observations, &self.observed);
        let value = self.cost.from_sum_of_squares(sum_sq, n);
        if value.is_nan() {
            return Err(self.nan_prediction(&scratch.predicted, n_outputs));
        }
        Ok(value)
    }

    /// Why the cost is NaN: the first observed point the model gave NaN for (a model may give no values
    /// after some time, as an ODE model does after a `stop` without `reset`), with its output and time.
    fn nan_prediction(&self, predicted: &[f64], n_outputs: usize) -> SimError {
        let (times, observations) = (&self.case.times, &self.case.observations);
        let observed = observations.chunks_exact(self.observed.len().max(1));
        for ((t, row), obs) in times.iter().zip(predicted.chunks_exact(n_outputs.max(1))).zip(observed) {
            for (&j, o) in self.observed.iter().zip(obs) {
                if !o.is_nan() && row[j].is_nan() {
                    let name = &self.model.spec().outputs[j];
                    return SimError::Other(format!(
                        "the model gives no value (NaN) for output '{name}' at t = {t}, where it is observed \
                         (a model that stops early, as a DiffSL 'stop' without 'reset' does, has none after it)"
                    ));
                }
            }
        }
        SimError::Diverged { t: f64::NAN }
    }

    /// The cost at `theta`; a failed simulation costs `+inf`.
    pub fn value(&self, scratch: &mut Scratch, theta: &[f64]) -> f64 {
        self.try_value(scratch, theta).unwrap_or(f64::INFINITY)
    }

    /// The cost of every candidate in `batch`, in parallel when enabled. Results are in batch order and do not
    /// depend on the number of threads.
    pub fn values(&self, batch: &[Vec<f64>], out: &mut [f64]) {
        assert_eq!(batch.len(), out.len(), "one value slot per candidate");
        self.spread_rows(1, out, &mut |first, share| {
            parallel::fill_with(
                self.parallel,
                share,
                &self.scratches,
                || self.scratch(),
                |scratch, i| self.value(scratch, &batch[first + i]),
            )
        });
    }

    /// The number of residuals: the case's observed (non-NaN) points.
    pub fn residual_count(&self) -> usize {
        self.case.observations.iter().filter(|v| !v.is_nan()).count()
    }

    /// The residuals `predicted − observed` at search point `theta` into `out`
    /// ([`residual_count`](Self::residual_count) long), time-major, then by observation column,
    /// skipping missing (NaN) observations: the order in which the cost sums their squares.
    /// On error `out` is unspecified.
    pub fn try_residuals_into(&self, scratch: &mut Scratch, theta: &[f64], out: &mut [f64]) -> Result<(), SimError> {
        self.params_into(theta, &mut scratch.params);
        let case = &self.case;
        self.model.simulate(&mut scratch.model, &scratch.params, &case.inputs, &case.times, &mut scratch.predicted)?;
        let n_outputs = self.model.spec().outputs.len();
        let n_columns = self.observed.len();
        let observed = case.observations.chunks_exact(n_columns.max(1));
        let mut slots = out.iter_mut();
        for (predicted, row) in scratch.predicted.chunks_exact(n_outputs.max(1)).zip(observed) {
            for (&j, &obs) in self.observed.iter().zip(row) {
                if !obs.is_nan() {
                    *slots.next().expect("`out` holds residual_count() residuals") = predicted[j] - obs;
                }
            }
        }
        Ok(())
    }

    /// The residuals at `theta` (see [`try_residuals_into`](Self::try_residuals_into)); a failed
    /// simulation gives NaN residuals.
    pub fn residuals_into(&self, scratch: &mut Scratch, theta: &[f64], out: &mut [f64]) {
        if self.try_residuals_into(scratch, theta, out).is_err() {
            out.fill(f64::NAN);
        }
    }

    /// The residuals of every candidate in `batch`, candidate k's at `out[k·m .. (k+1)·m]` with
    /// `m = residual_count()`, in parallel when enabled. Results do not depend on the number of
    /// threads.
    pub fn residuals(&self, batch: &[Vec<f64>], out: &mut [f64]) {
        let m = self.residual_count();
        assert_eq!(out.len(), batch.len() * m, "one row of residuals per candidate");
        self.spread_rows(m, out, &mut |first, share| {
            parallel::fill_rows_with(
                self.parallel,
                share,
                m,
                &self.scratches,
                || self.scratch(),
                |scratch, i, row| self.residuals_into(scratch, &batch[first + i], row),
            )
        });
    }

    /// The residuals at `theta` (as [`try_residuals_into`](Self::try_residuals_into)) and their
    /// Jacobian with respect to the search-space point, column-major: `∂r_i/∂θ_j` at
    /// `jacobian[j·m + i]`. From the model's sensitivities, so only for models that have them;
    /// log-scale parameters contribute `∂r/∂p · p` (the chain rule through `p = exp(θ)`).
    pub fn try_residuals_and_jacobian_into(
        &self,
        scratch: &mut Scratch,
        theta: &[f64],
        residuals: &mut [f64],
        jacobian: &mut [f64],
    ) -> Result<(), SimError> {
        self.params_into(theta, &mut scratch.params);
        let case = &self.case;
        let np = scratch.params.len();
        scratch.sensitivities.resize(scratch.predicted.len() * np, 0.0);
        self.model.simulate_sensitivities(
            &mut scratch.model,
            &scratch.params,
            &case.inputs,
            &case.times,
            &mut scratch.predicted,
            &mut scratch.sensitivities,
        )?;
        let m = residuals.len();
        let n_outputs = self.model.spec().outputs.len();
        let n_columns = self.observed.len();
        let mut i = 0;
        for (t, row) in case.observations.chunks_exact(n_columns.max(1)).enumerate() {
            for (&j, &obs) in self.observed.iter().zip(row) {
                if obs.is_nan() {
                    continue;
                }
                let k = t * n_outputs + j;
                residuals[i] = scratch.predicted[k] - obs;
                for (col, f) in self.free.iter().enumerate() {
                    let d = scratch.sensitivities[k * np + f.index];
                    jacobian[col * m + i] = if f.log_scale { d * scratch.params[f.index] } else { d };
                }
                i += 1;
            }
        }
        Ok(())
    }

    /// Model outputs for full parameters `params` at `times` (for plots and reports).
    pub fn predict(&self, params: &[f64], times: &[f64]) -> Result<Vec<f64>, SimError> {
        let mut ws = self.model.workspace();
        let mut out = vec![0.0; self.model.spec().output_len(times.len())];
        self.model.simulate(&mut ws, params, &self.case.inputs, times, &mut out)?;
        Ok(out)
    }
}

impl BatchEvaluator for Objective {
    fn evaluate(&mut self, batch: &[Vec<f64>], values: &mut [f64]) {
        self.values(batch, values);
    }
}

/// Residuals for least-squares optimisers; their sum of squares is the SSE cost whatever the
/// objective's [`Cost`]. Exact Jacobians come from the model's sensitivities when it has them;
/// otherwise optimisers use finite differences.
impl ResidualEvaluator for Objective {
    fn residual_count(&self) -> usize {
        Objective::residual_count(self)
    }

    fn residuals(&mut self, batch: &[Vec<f64>], out: &mut [f64]) {
        Objective::residuals(self, batch, out);
    }

    fn has_jacobian(&self) -> bool {
        self.model.has_sensitivities()
    }

    fn residuals_and_jacobians(&mut self, batch: &[Vec<f64>], residuals: &mut [f64], jacobians: &mut [f64]) {
        let (m, n) = (self.residual_count(), self.free.len());
        if m == 0 {
            return;
        }
        assert_eq!(residuals.len(), batch.len() * m, "one row of residuals per candidate");
        assert_eq!(jacobians.len(), batch.len() * m * n, "one Jacobian per candidate");
        // One row per candidate holding its residuals and then its Jacobian, so each is written by
        // exactly one call; a failed simulation gives NaN for both.
        let mut rows = vec![0.0; batch.len() * m * (1 + n)];
        self.spread_rows(m * (1 + n), &mut rows, &mut |first, share| {
            parallel::fill_rows_with(
                self.parallel,
                share,
                m * (1 + n),
                &self.scratches,
                || self.scratch(),
                |scratch, i, row| {
                    let (r, j) = row.split_at_mut(m);
                    if self.try_residuals_and_jacobian_into(scratch, &batch[first + i], r, j).is_err() {
                        row.fill(f64::NAN);
                    }
                },
            )
        });
        for ((row, r), j) in
            rows.chunks_exact(m * (1 + n)).zip(residuals.chunks_exact_mut(m)).zip(jacobians.chunks_exact_mut(m * n))
        {
            r.copy_from_slice(&row[..m]);
            j.copy_from_slice(&row[m..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelSpec, OutputKind, ParamSpec, downcast_workspace};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// y(t) = a·exp(-k t): a closed form, so the objective can be checked by hand.
    struct Decay {
        spec: ModelSpec,
        /// Workspaces made.
        made: std::sync::atomic::AtomicUsize,
    }

    impl Decay {
        fn new() -> Self {
            Decay {
                made: std::sync::atomic::AtomicUsize::new(0),
                spec: ModelSpec {
                    name: "decay".into(),
                    params: vec![ParamSpec::new("a", 1.0), ParamSpec { lower: 0.0, ..ParamSpec::new("k", 0.5) }],
                    inputs: vec![],
                    outputs: vec!["y".into()],
                    output_kind: OutputKind::TimeSeries,
                },
            }
        }
    }

    impl Model for Decay {
        fn spec(&self) -> &ModelSpec {
            &self.spec
        }
        fn workspace(&self) -> Workspace {
            self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::new(0usize)
        }
        fn simulate(
            &self,
            ws: &mut Workspace,
            p: &[f64],
            _: &[f64],
            times: &[f64],
            out: &mut [f64],
        ) -> Result<(), SimError> {
            *downcast_workspace::<usize>(ws, "decay")? += 1;
            if p[1] > 100.0 {
                return Err(SimError::BadParameter { name: "k".into(), reason: "too fast".into() });
            }
            for (o, t) in out.iter_mut().zip(times) {
                *o = p[0] * math::exp(-p[1] * t);
            }
            Ok(())
        }

        fn has_sensitivities(&self) -> bool {
            true
        }

        fn simulate_sensitivities(
            &self,
            ws: &mut Workspace,
            p: &[f64],
            inputs: &[f64],
            times: &[f64],
            out: &mut [f64],
            sens: &mut [f64],
        ) -> Result<(), SimError> {
            self.simulate(ws, p, inputs, times, out)?;
            for (s, t) in sens.chunks_exact_mut(2).zip(times) {
                s[0] = math::exp(-p[1] * t);
                s[1] = -p[0] * t * math::exp(-p[1] * t);
            }
            Ok(())
        }
    }

    fn objective() -> Objective {
        let times: Vec<f64> = (0..5).map(f64::from).collect();
        let observations = times.iter().map(|t| 2.0 * math::exp(-0.3 * t)).collect();
        let case = Case { id: "c".into(), inputs: vec![], times, observations };
        Objective::new(Arc::new(Decay::new()), case, &["y".to_string()], Cost::Sse).unwrap()
    }

    /// The batch methods keep their scratch from batch to batch: a model workspace per worker that ran at once,
    /// not one per rayon split or per batch; the values stay those of fresh scratch.
    #[test]
    fn batches_reuse_their_workspaces() {
        let decay = Arc::new(Decay::new());
        let times: Vec<f64> = (0..5).map(f64::from).collect();
        let observations = times.iter().map(|t| 2.0 * math::exp(-0.3 * t)).collect();
        let case = Case { id: "c".into(), inputs: vec![], times, observations };
        let model: Arc<dyn Model> = decay.clone();
        let obj = Objective::new(model, case, &["y".to_string()], Cost::Sse).unwrap();
        let batch: Vec<Vec<f64>> = (0..300).map(|k| vec![2.0, 0.002 * k as f64]).collect();
        let fresh: Vec<f64> = batch.iter().map(|theta| obj.value(&mut obj.scratch(), theta)).collect();
        let made = || decay.made.load(std::sync::atomic::Ordering::Relaxed);
        let before = made();
        let (mut values, mut residuals) = (vec![0.0; batch.len()], vec![0.0; batch.len() * obj.residual_count()]);
        obj.values(&batch, &mut values);
        let after_one = made() - before;
        for _ in 0..4 {
            obj.values(&batch, &mut values);
            obj.residuals(&batch, &mut residuals);
            assert!(values.iter().zip(&fresh).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        #[cfg(feature = "parallel")]
        let workers = rayon::current_num_threads();
        #[cfg(not(feature = "parallel"))]
        let workers = 1;
        assert!((1..=workers).contains(&after_one), "{after_one} workspaces for one batch on {workers} workers");
        assert!(made() - before <= workers, "{} workspaces for five batches on {workers} workers", made() - before);
    }

    #[test]
    fn value_is_zero_at_the_truth_and_failures_cost_infinity() {
        let mut obj = objective();
        obj.fix("a", 2.0).unwrap();
        let mut s = obj.scratch();
        assert_eq!(obj.free_names(), vec!["k"]);
        assert!(obj.value(&mut s, &[0.3]).abs() < 1e-24);
        assert!(obj.value(&mut s, &[0.5]) > 0.0);
        assert_eq!(obj.value(&mut s, &[1000.0]), f64::INFINITY);
    }

    #[test]
    fn batch_values_match_single_values_in_order() {
        let obj = objective();
        let batch: Vec<Vec<f64>> = (0..50).map(|i| vec![1.0 + i as f64 * 0.1, 0.01 * i as f64]).collect();
        let mut out = vec![0.0; batch.len()];
        obj.values(&batch, &mut out);
        let mut s = obj.scratch();
        for (x, v) in batch.iter().zip(&out) {
            assert_eq!(obj.value(&mut s, x).to_bits(), v.to_bits());
        }
    }

    /// Stands in for MPI ranks: `processes` shares of the rows, each computed separately, then assembled.
    #[derive(Debug)]
    struct Shares {
        processes: usize,
        calls: std::sync::Mutex<Vec<(usize, usize)>>,
    }

    impl Spread for Shares {
        fn fill_rows(&self, width: usize, out: &mut [f64], local: &mut dyn FnMut(usize, &mut [f64])) {
            let rows = out.len() / width;
            for p in 0..self.processes {
                let (lo, hi) = (p * rows / self.processes, (p + 1) * rows / self.processes);
                let mut share = vec![f64::NAN; (hi - lo) * width];
                local(lo, &mut share);
                out[lo * width..hi * width].copy_from_slice(&share);
                self.calls.lock().unwrap().push((lo, hi));
            }
        }
    }

    #[test]
    fn spread_batches_match_unspread_ones_bit_for_bit() {
        let plain = objective();
        let mut spread = objective();
        let shares = Arc::new(Shares { processes: 3, calls: Default::default() });
        spread.set_spread(Some(shares.clone()));
        let batch: Vec<Vec<f64>> = (0..10).map(|i| vec![1.0 + i as f64 * 0.1, 0.03 * i as f64]).collect();
        let (mut a, mut b) = (vec![0.0; 10], vec![0.0; 10]);
        plain.values(&batch, &mut a);
        spread.values(&batch, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(*shares.calls.lock().unwrap(), vec![(0, 3), (3, 6), (6, 10)], "each share computed once");
        let m = plain.residual_count();
        let (mut a, mut b) = (vec![0.0; 10 * m], vec![0.0; 10 * m]);
        plain.residuals(&batch, &mut a);
        spread.residuals(&batch, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let (mut ra, mut ja, mut rb, mut jb) =
            (vec![0.0; 10 * m], vec![0.0; 20 * m], vec![0.0; 10 * m], vec![0.0; 20 * m]);
        ResidualEvaluator::residuals_and_jacobians(&mut objective(), &batch, &mut ra, &mut ja);
        ResidualEvaluator::residuals_and_jacobians(&mut spread, &batch, &mut rb, &mut jb);
        assert!(ra.iter().chain(&ja).zip(rb.iter().chain(&jb)).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn residuals_follow_the_cost_order_and_match_it() {
        // Two observed columns of the same output, with missing observations.
        let times: Vec<f64> = (0..4).map(f64::from).collect();
        let mut observations: Vec<f64> = times.iter().flat_map(|t| [2.0 * math::exp(-0.3 * t), 0.5 * t]).collect();
        observations[1] = f64::NAN;
        observations[4] = f64::NAN;
        let case = Case { id: "c".into(), inputs: vec![], times: times.clone(), observations: observations.clone() };
        let observed = ["y".to_string(), "y".to_string()];
        let obj = Objective::new(Arc::new(Decay::new()), case, &observed, Cost::Sse).unwrap();
        assert_eq!(obj.residual_count(), 6);
        let theta = [1.5, 0.2];
        let mut s = obj.scratch();
        let mut r = vec![0.0; 6];
        obj.residuals_into(&mut s, &theta, &mut r);
        let predicted: Vec<f64> = times.iter().map(|t| 1.5 * math::exp(-0.2 * t)).collect();
        let expected: Vec<f64> =
            (0..8).filter(|&k| !observations[k].is_nan()).map(|k| predicted[k / 2] - observations[k]).collect();
        assert_eq!(r, expected);
        let sse: f64 = r.iter().map(|v| v * v).sum();
        assert_eq!(sse.to_bits(), obj.value(&mut s, &theta).to_bits());

        // Batches: in order, the same with and without threads, failures as NaN rows.
        let batch: Vec<Vec<f64>> =
            (0..20).map(|i| vec![1.0 + 0.1 * i as f64, if i == 7 { 500.0 } else { 0.05 * i as f64 }]).collect();
        let mut parallel = vec![0.0; 20 * 6];
        obj.residuals(&batch, &mut parallel);
        let mut sequential_obj = objective_with(&observed, observations);
        sequential_obj.set_parallel(false);
        let mut sequential = vec![0.0; 20 * 6];
        ResidualEvaluator::residuals(&mut sequential_obj, &batch, &mut sequential);
        for (k, x) in batch.iter().enumerate() {
            let row = &parallel[k * 6..(k + 1) * 6];
            if k == 7 {
                assert!(row.iter().all(|v| v.is_nan()));
                continue;
            }
            obj.residuals_into(&mut s, x, &mut r);
            assert_eq!(row, &r[..]);
            assert_eq!(&sequential[k * 6..(k + 1) * 6], &r[..]);
        }
    }

    fn objective_with(observed: &[String], observations: Vec<f64>) -> Objective {
        let times: Vec<f64> = (0..4).map(f64::from).collect();
        let case = Case { id: "c".into(), inputs: vec![], times, observations };
        Objective::new(Arc::new(Decay::new()), case, observed, Cost::Sse).unwrap()
    }

    #[test]
    fn exact_jacobians_follow_the_residual_order_and_the_log_scale() {
        let mut obs: Vec<f64> = (0..4).map(|t| 2.0 * math::exp(-0.3 * f64::from(t))).collect();
        obs[2] = f64::NAN;
        let mut obj = objective_with(&["y".to_string()], obs);
        obj.set_log_scale("k", true).unwrap();
        assert!(obj.has_jacobian());
        let batch = vec![vec![1.5, math::ln(0.2f64)], vec![2.5, math::ln(0.7f64)]];
        let m = obj.residual_count();
        assert_eq!(m, 3);
        let (mut r, mut j) = (vec![0.0; 2 * m], vec![0.0; 2 * m * 2]);
        obj.residuals_and_jacobians(&batch, &mut r, &mut j);
        let mut plain = vec![0.0; 2 * m];
        obj.residuals(&batch, &mut plain);
        assert_eq!(r, plain);
        for (b, x) in batch.iter().enumerate() {
            for col in 0..2 {
                let h = 1e-6;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[col] += h;
                down[col] -= h;
                let (mut ru, mut rd) = (vec![0.0; m], vec![0.0; m]);
                obj.residuals(&[up], &mut ru);
                obj.residuals(&[down], &mut rd);
                for i in 0..m {
                    let fd = (ru[i] - rd[i]) / (2.0 * h);
                    let got = j[b * m * 2 + col * m + i];
                    assert!((got - fd).abs() < 1e-8, "point {b}, dr_{i}/dx_{col}: {got} vs {fd}");
                }
            }
        }
    }

    #[test]
    fn log_scale_and_bounds_transform_the_search_space() {
        let mut obj = objective();
        obj.set_log_scale("k", true).unwrap();
        obj.set_bounds("k", 0.01, 10.0).unwrap();
        obj.set_start("k", 0.3).unwrap();
        let x0 = obj.start().unwrap();
        assert!((x0[1] - math::ln(0.3f64)).abs() < 1e-15);
        assert!((obj.bounds().upper[1] - math::ln(10f64)).abs() < 1e-15);
        assert!((obj.params(&x0)[1] - 0.3).abs() < 1e-15);
    }

    #[test]
    fn setup_errors_name_the_parameter() {
        let mut obj = objective();
        let err = obj.set_start("z", 1.0).unwrap_err().to_string();
        assert!(err.contains("'z'") && err.contains("a, k"), "{err}");
        obj.set_bounds("k", 0.0, 1.0).unwrap();
        obj.set_start("k", 2.0).unwrap();
        let err = obj.start().unwrap_err().to_string();
        assert!(err.contains("'k'") && err.contains("outside its bounds"), "{err}");
        let case = objective().case().clone();
        let err = Objective::new(Arc::new(Decay::new()), case, &["w".to_string()], Cost::Sse).err().unwrap();
        assert!(err.to_string().contains("no output named 'w'"));
        let err = obj.set_bounds("k", f64::NAN, 1.0).unwrap_err().to_string();
        assert_eq!(err, "parameter 'k': bounds must be numbers or ±inf (got lower NaN, upper 1.0)");
        assert!(obj.set_bounds("k", 1.0, f64::NAN).is_err() && obj.set_bounds("k", 2.0, 1.0).is_err());
        assert!(obj.set_bounds("k", f64::NEG_INFINITY, f64::INFINITY).is_ok());
    }
}
