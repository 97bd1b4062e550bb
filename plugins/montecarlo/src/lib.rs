//! parfit plugin for Monte Carlo models: many independent paths of a stochastic model stepped over periods,
//! each path drawing from its own keyed random stream, so results never depend on the thread count or on
//! how the paths were split up.

pub mod model;
pub mod runner;

pub use model::{INPUTS, MonteCarloModel};
pub use runner::{Buffers, DrawKind, LANES, PathProgram, simulate_paths};
