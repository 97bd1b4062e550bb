//! A compiled Monte Carlo model as a parfit [`PathRunner`]: ABI v3's paths entry point, the only way a host runs
//! it (`parfit run`, Python's `parfit.MonteCarloModel` and `parfit.run`, the browser page).
//!
//! A block is paths `first..first + count` under one parameter vector, seed and number of periods: each path runs
//! from its initial state over the periods and reports its outputs at the end, one row per path. A host
//! parallelises by handing out blocks (each on any thread) and places rows by index; since a path's values depend
//! only on (seed, path index, parameters, periods), any split gives the same table.

use parfit_core::model::downcast_workspace;
use parfit_core::paths::{PathRunner, PathsSpec};
use parfit_core::{SimError, Workspace};

use crate::runner::{Buffers, PathProgram, simulate_paths};

/// A compiled Monte Carlo model: its description and its program.
#[derive(Debug)]
pub struct MonteCarloPaths<P> {
    spec: PathsSpec,
    program: P,
}

struct McWorkspace<S> {
    buffers: Buffers<S>,
    paths: Vec<u64>,
}

impl<P: PathProgram> MonteCarloPaths<P> {
    /// `spec` must list the program's parameters and outputs.
    pub fn new(spec: PathsSpec, program: P) -> Self {
        MonteCarloPaths { spec, program }
    }

    pub fn program(&self) -> &P {
        &self.program
    }

    /// Every parameter finite, or the first that is not.
    fn check_params(&self, params: &[f64]) -> Result<(), SimError> {
        for (p, spec) in params.iter().zip(&self.spec.params) {
            if !p.is_finite() {
                return Err(SimError::BadParameter { name: spec.name.clone(), reason: format!("{p} is not finite") });
            }
        }
        Ok(())
    }
}

impl<P> PathRunner for MonteCarloPaths<P>
where
    P: PathProgram + Send + Sync,
    P::Scratch: Send + 'static,
{
    fn spec(&self) -> &PathsSpec {
        &self.spec
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
        let expected = self.spec.block_len(count);
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
        simulate_paths(&self.program, &mut ws.buffers, params, seed, periods, &ws.paths, out);
        // A path that overflowed (or divided by zero) would make every statistic NaN or ±inf: say where instead.
        let n_out = self.spec.outputs.len();
        match out.iter().position(|v| !v.is_finite()) {
            Some(k) if n_out > 0 => Err(SimError::Other(format!(
                "path {}: output '{}' is {:?} after {periods} periods (the model overflowed or divided by zero)",
                first + (k / n_out) as u64,
                self.spec.outputs.get(k % n_out).map_or("?", String::as_str),
                out[k]
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::tests::{NativeWealth, WEALTH_PARAMS, native_wealth};
    use parfit_core::ParamSpec;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn model() -> MonteCarloPaths<NativeWealth> {
        let spec = PathsSpec {
            name: "wealth".into(),
            params: ["r", "s", "v1", "v2"].iter().zip(WEALTH_PARAMS).map(|(n, d)| ParamSpec::new(*n, d)).collect(),
            outputs: vec!["w".into()],
        };
        MonteCarloPaths::new(spec, NativeWealth)
    }

    #[test]
    fn blocks_of_paths_give_the_runner_s_rows_bit_for_bit() {
        let m = model();
        let mut ws = m.workspace();
        let ids: Vec<u64> = (0..150).collect();
        let whole = native_wealth(&ids, 9, 20);
        // Any split into blocks, on one workspace, gives the rows of the paths run together.
        let mut by_blocks = vec![0.0; 150];
        for (first, count) in [(0, 1), (1, 64), (65, 70), (135, 15)] {
            m.run(&mut ws, &WEALTH_PARAMS, 9, 20, first as u64, count, &mut by_blocks[first..first + count]).unwrap();
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&whole), bits(&by_blocks));
        let mut other = vec![0.0; 150];
        m.run(&mut ws, &WEALTH_PARAMS, 10, 20, 0, 150, &mut other).unwrap();
        assert_ne!(bits(&whole), bits(&other), "another seed draws other numbers");
        assert_eq!(m.spec().outputs, ["w"]);
        let e = m.run(&mut ws, &WEALTH_PARAMS, 9, 20, u64::MAX, 2, &mut by_blocks[..2]).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = m.run(&mut ws, &WEALTH_PARAMS, 9, 20, 0, 3, &mut by_blocks[..2]).unwrap_err();
        assert!(e.to_string().contains("expected 3"), "{e}");
        let e = m.run(&mut ws, &[0.1, 0.3, f64::INFINITY, 1.0], 9, 20, 0, 1, &mut by_blocks[..1]).unwrap_err();
        assert!(e.to_string().contains("bad parameter v1"), "{e}");
        let e = m.run(&mut ws, &[0.1, 0.3], 9, 20, 0, 1, &mut by_blocks[..1]).unwrap_err();
        assert!(e.to_string().contains("expects 4 parameters, got 2"), "{e}");
    }

    #[test]
    fn a_path_that_overflows_is_named_by_its_index() {
        // r = 1e300 overflows every path in the first period; the first path of the block is the one named.
        let m = model();
        let mut out = vec![0.0; 3];
        let e = m.run(&mut m.workspace(), &[1e300, 0.3, 0.1, 1.0], 1, 5, 70, 3, &mut out).unwrap_err();
        assert!(e.to_string().contains("path 70: output 'w' is inf after 5 periods"), "{e}");
    }
}
