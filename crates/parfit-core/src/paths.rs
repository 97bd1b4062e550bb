//! Monte Carlo paths: many independent paths of a stochastic model, each stepped over a number of periods and
//! reported by its values at the end, in blocks of consecutive path indices. This is the shape of plugin ABI
//! v3's paths entry point (`parfit-abi`), and what the application layer runs in parallel; a plugin linked
//! directly (the browser build) implements [`PathRunner`] as a loaded one does through the ABI.
//!
//! A path runner *describes* what it takes and returns ([`PathsSpec`]): its parameters and, per path, its
//! output names. The host asks for a block — paths `first..first + count` under one parameter vector, one seed
//! and one number of periods — and receives one row per path, the outputs in the described order
//! ([`PathsSpec::block_len`] gives the buffer's length). A path's values depend on the seed, its index, the
//! parameters and the number of periods alone: not on the block it came in, nor on the thread or process that
//! ran it, so a host may split the paths any way it likes and get the same table.

use serde::{Deserialize, Serialize};

use crate::{ParamSpec, SimError, Workspace};

/// What a path runner is: its parameters and the outputs each path reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsSpec {
    /// The model's name, for messages.
    pub name: String,
    /// The parameters a block takes, in order (with their defaults).
    pub params: Vec<ParamSpec>,
    /// Per path, the values reported after its last period, in row order. At least one.
    pub outputs: Vec<String>,
}

impl PathsSpec {
    /// Index of a parameter by name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Index of an output by name.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o == name)
    }

    /// The defaults of all parameters, in order.
    pub fn defaults(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.default).collect()
    }

    /// The length of a block's buffer for `count` paths (a row of outputs per path); `None` on overflow.
    pub fn block_len(&self, count: usize) -> Option<usize> {
        count.checked_mul(self.outputs.len())
    }

    /// Replace the NaN placeholders that deserialised `null` bounds leave with the right infinities.
    pub fn normalise(self) -> Self {
        let params = self
            .params
            .into_iter()
            .map(|p| ParamSpec {
                lower: if p.lower.is_nan() { f64::NEG_INFINITY } else { p.lower },
                upper: if p.upper.is_nan() { f64::INFINITY } else { p.upper },
                ..p
            })
            .collect();
        PathsSpec { params, ..self }
    }

    /// The problems of a description a host cannot use: no outputs.
    pub fn check(&self) -> Result<(), String> {
        if self.outputs.is_empty() {
            return Err(format!("{}: the paths report no outputs", self.name));
        }
        Ok(())
    }
}

/// A Monte Carlo model run a block of paths at a time. Implementations must be pure functions of their
/// arguments (a path's values never depend on the other paths of its block, on other blocks, or on the thread
/// or process that asked).
pub trait PathRunner: Send + Sync {
    fn spec(&self) -> &PathsSpec;

    /// Per-thread scratch space, passed back to [`PathRunner::run`].
    fn workspace(&self) -> Workspace;

    /// Run paths `first..first + count` under `params` (in [`PathsSpec::params`] order), the random streams
    /// keyed by `seed` and each path's index, over `periods` periods, writing one row of
    /// [`PathsSpec::outputs`] per path into `out` (`out.len()` is [`PathsSpec::block_len`]). Bad arguments are
    /// a [`SimError::BadInput`] or [`SimError::BadParameter`]; a path whose values cannot be computed (an
    /// overflow) is an error naming it.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: &mut [f64],
    ) -> Result<(), SimError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_block_holds_a_row_per_path_and_the_description_round_trips() {
        let spec = PathsSpec {
            name: "wealth".into(),
            params: vec![ParamSpec::new("s", 0.3), ParamSpec { lower: 0.0, ..ParamSpec::new("r", 0.1) }],
            outputs: vec!["w".into(), "y".into()],
        };
        assert_eq!(spec.block_len(5), Some(10));
        assert_eq!(spec.block_len(usize::MAX), None);
        assert_eq!(
            (spec.param_index("r"), spec.output_index("y"), spec.defaults()),
            (Some(1), Some(1), vec![0.3, 0.1])
        );
        let back: PathsSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back.normalise(), spec, "infinite bounds travel as null");
        assert!(spec.check().is_ok());
        let none = PathsSpec { outputs: vec![], ..spec };
        assert_eq!(none.check().unwrap_err(), "wealth: the paths report no outputs");
    }
}
