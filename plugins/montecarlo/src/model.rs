//! A Monte Carlo model as a parfit [`PathRunner`] (ABI v3's paths entry point, what runs use) and as a
//! [`Model`] (the model entry point, for simulating a few paths as a model: Python's `parfit.Model`).
//!
//! As a [`PathRunner`], a block is paths `first..first + count` under one parameter vector, seed and number
//! of periods: each path runs from its initial state over the periods and reports its outputs at the end, one
//! row per path. A host parallelises by handing out blocks (each on any thread) and places rows by index; since
//! a path's values depend only on (seed, path index, parameters, periods), any split gives the same table.
//!
//! As a [`Model`], `simulate(params, inputs = [seed, periods], times = path indices)` runs the listed paths
//! (this model's own reading of its evaluation points, stated in its kind's description); NaN inputs take the
//! model's defaults (the `seed` and `periods` options it was created with).

use parfit_core::model::downcast_workspace;
use parfit_core::paths::{PathRunner, PathsSpec};
use parfit_core::{Model, ModelSpec, SimError, Workspace};

use crate::runner::{Buffers, PathProgram, simulate_paths};

/// The per-case inputs of every Monte Carlo model, in this order.
pub const INPUTS: [&str; 2] = ["seed", "periods"];

/// Largest seed, path index or period count an `f64` carries exactly.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// A compiled Monte Carlo model with its default seed and number of periods.
#[derive(Debug)]
pub struct MonteCarloModel<P> {
    spec: ModelSpec,
    /// The same parameters and outputs, as the paths entry point describes them.
    paths_spec: PathsSpec,
    program: P,
    seed: u64,
    periods: Option<u64>,
}

struct McWorkspace<S> {
    buffers: Buffers<S>,
    paths: Vec<u64>,
}

impl<P: PathProgram> MonteCarloModel<P> {
    /// `spec` must list the program's parameters and outputs; its inputs are set to [`INPUTS`].
    pub fn new(mut spec: ModelSpec, program: P, seed: u64, periods: Option<u64>) -> Self {
        spec.inputs = INPUTS.iter().map(|s| s.to_string()).collect();
        let paths_spec =
            PathsSpec { name: spec.name.clone(), params: spec.params.clone(), outputs: spec.outputs.clone() };
        MonteCarloModel { spec, paths_spec, program, seed, periods }
    }

    pub fn program(&self) -> &P {
        &self.program
    }
}

/// A whole number that an `f64` carries exactly, or a message naming `what`.
fn whole(v: f64, what: &str) -> Result<u64, SimError> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= EXACT {
        Ok(v as u64)
    } else {
        Err(SimError::BadInput(format!("{what} must be a whole number from 0 to 2^53, got {v}")))
    }
}

impl<P> Model for MonteCarloModel<P>
where
    P: PathProgram + Send + Sync,
    P::Scratch: Send + 'static,
{
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(McWorkspace { buffers: Buffers::new(&self.program), paths: Vec::new() })
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let name = &self.spec.name;
        let ws = downcast_workspace::<McWorkspace<P::Scratch>>(ws, name)?;
        if params.len() != self.spec.params.len() {
            return Err(SimError::BadInput(format!(
                "{name} expects {} parameters, got {}",
                self.spec.params.len(),
                params.len()
            )));
        }
        self.check_params(params)?;
        if inputs.len() != INPUTS.len() {
            return Err(SimError::BadInput(format!(
                "{name} takes the inputs {INPUTS:?} (NaN for the defaults), got {} values",
                inputs.len()
            )));
        }
        let seed = if inputs[0].is_nan() { self.seed } else { whole(inputs[0], "the seed")? };
        let periods = match (inputs[1].is_nan(), self.periods) {
            (false, _) => whole(inputs[1], "the number of periods")?,
            (true, Some(p)) => p,
            (true, None) => {
                return Err(SimError::BadInput(format!(
                    "{name}: the number of periods is not set: run a Monte Carlo model from a configuration with a \
                     [montecarlo] section (`parfit run run.toml`), or give the model the `periods` option or input"
                )));
            }
        };
        if out.len() != self.spec.output_len(times.len()) {
            return Err(SimError::BadInput(format!(
                "output buffer has length {}, expected {} (paths × outputs)",
                out.len(),
                self.spec.output_len(times.len())
            )));
        }
        ws.paths.clear();
        for t in times {
            ws.paths.push(whole(*t, "a path index")?);
        }
        self.run_listed(ws, params, seed, periods, out)
    }
}

impl<P: PathProgram> MonteCarloModel<P> {
    /// Every parameter finite, or the first that is not.
    fn check_params(&self, params: &[f64]) -> Result<(), SimError> {
        for (p, spec) in params.iter().zip(&self.spec.params) {
            if !p.is_finite() {
                return Err(SimError::BadParameter { name: spec.name.clone(), reason: format!("{p} is not finite") });
            }
        }
        Ok(())
    }

    /// Run the paths listed in the workspace, their rows into `out`.
    fn run_listed(
        &self,
        ws: &mut McWorkspace<P::Scratch>,
        params: &[f64],
        seed: u64,
        periods: u64,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        simulate_paths(&self.program, &mut ws.buffers, params, seed, periods, &ws.paths, out);
        // A path that overflowed (or divided by zero) would make every statistic NaN or ±inf: say where instead.
        let n_out = self.spec.outputs.len();
        match out.iter().position(|v| !v.is_finite()) {
            Some(k) if n_out > 0 => Err(SimError::Other(format!(
                "path {}: output '{}' is {:?} after {periods} periods (the model overflowed or divided by zero)",
                ws.paths.get(k / n_out).copied().unwrap_or_default(),
                self.spec.outputs.get(k % n_out).map_or("?", String::as_str),
                out[k]
            ))),
            _ => Ok(()),
        }
    }
}

impl<P> PathRunner for MonteCarloModel<P>
where
    P: PathProgram + Send + Sync,
    P::Scratch: Send + 'static,
{
    fn spec(&self) -> &PathsSpec {
        &self.paths_spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(McWorkspace { buffers: Buffers::new(&self.program), paths: Vec::new() })
    }

    fn run(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let name = &self.spec.name;
        let ws = downcast_workspace::<McWorkspace<P::Scratch>>(ws, name)?;
        if params.len() != self.spec.params.len() {
            return Err(SimError::BadInput(format!(
                "{name} expects {} parameters, got {}",
                self.spec.params.len(),
                params.len()
            )));
        }
        self.check_params(params)?;
        let expected = self.paths_spec.block_len(count);
        let end = first.checked_add(count as u64);
        let (Some(expected), Some(end)) = (expected, end) else {
            return Err(SimError::BadInput(format!("{name}: a block of {count} paths from path {first} overflows")));
        };
        if out.len() != expected {
            return Err(SimError::BadInput(format!(
                "output buffer has length {}, expected {expected} (paths × outputs)",
                out.len()
            )));
        }
        ws.paths.clear();
        ws.paths.extend(first..end);
        self.run_listed(ws, params, seed, periods, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::tests::{NativeWealth, WEALTH_PARAMS};
    use parfit_core::{OutputKind, ParamSpec};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn model() -> MonteCarloModel<NativeWealth> {
        let spec = ModelSpec {
            name: "wealth".into(),
            params: ["r", "s", "v1", "v2"].iter().zip(WEALTH_PARAMS).map(|(n, d)| ParamSpec::new(*n, d)).collect(),
            inputs: vec![],
            outputs: vec!["w".into()],
            output_kind: OutputKind::TimeSeries,
        };
        MonteCarloModel::new(spec, NativeWealth, 9, Some(20))
    }

    #[test]
    fn inputs_default_to_the_options_and_are_checked() {
        let m = model();
        let mut ws = Model::workspace(&m);
        let mut a = [0.0; 3];
        let mut b = [0.0; 3];
        m.simulate(&mut ws, &WEALTH_PARAMS, &[f64::NAN, f64::NAN], &[0.0, 1.0, 2.0], &mut a).unwrap();
        m.simulate(&mut ws, &WEALTH_PARAMS, &[9.0, 20.0], &[0.0, 1.0, 2.0], &mut b).unwrap();
        assert_eq!(a, b);
        m.simulate(&mut ws, &WEALTH_PARAMS, &[10.0, 20.0], &[0.0, 1.0, 2.0], &mut b).unwrap();
        assert_ne!(a, b);
        let e = m.simulate(&mut ws, &WEALTH_PARAMS, &[1.5, 20.0], &[0.0], &mut a[..1]).unwrap_err();
        assert!(e.to_string().contains("seed must be a whole number"), "{e}");
        let e = m.simulate(&mut ws, &WEALTH_PARAMS, &[1.0, 20.0], &[-1.0], &mut a[..1]).unwrap_err();
        assert!(e.to_string().contains("path index"), "{e}");
        let e = m.simulate(&mut ws, &[0.1, 0.3, f64::NAN, 1.0], &[1.0, 20.0], &[0.0], &mut a[..1]).unwrap_err();
        assert!(e.to_string().contains("bad parameter v1"), "{e}");
    }

    #[test]
    fn blocks_of_paths_give_the_model_s_rows_bit_for_bit() {
        let m = model();
        let mut ws = PathRunner::workspace(&m);
        let ids: Vec<f64> = (0..150).map(f64::from).collect();
        let mut by_model = vec![0.0; 150];
        m.simulate(&mut Model::workspace(&m), &WEALTH_PARAMS, &[9.0, 20.0], &ids, &mut by_model).unwrap();
        // Any split into blocks, on one workspace, gives the same rows.
        let mut by_blocks = vec![0.0; 150];
        for (first, count) in [(0, 1), (1, 64), (65, 70), (135, 15)] {
            m.run(&mut ws, &WEALTH_PARAMS, 9, 20, first as u64, count, &mut by_blocks[first..first + count]).unwrap();
        }
        assert_eq!(
            by_model.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            by_blocks.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(PathRunner::spec(&m).outputs, ["w"]);
        let e = m.run(&mut ws, &WEALTH_PARAMS, 9, 20, u64::MAX, 2, &mut by_blocks[..2]).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = m.run(&mut ws, &WEALTH_PARAMS, 9, 20, 0, 3, &mut by_blocks[..2]).unwrap_err();
        assert!(e.to_string().contains("expected 3"), "{e}");
        let e = m.run(&mut ws, &[0.1, 0.3, f64::INFINITY, 1.0], 9, 20, 0, 1, &mut by_blocks[..1]).unwrap_err();
        assert!(e.to_string().contains("bad parameter v1"), "{e}");
    }
}
