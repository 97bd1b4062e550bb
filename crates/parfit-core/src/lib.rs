//! parfit's engine: models, datasets, costs, objectives, ask–tell optimisers and the parallel runners.
//!
//! The crate does no I/O, reads no clock and spawns no threads of its own beyond rayon's pool, so it
//! builds for `wasm32-unknown-unknown` unchanged. Front ends (the CLI, the wasm façade) own files,
//! clocks and progress display and reach the engine through [`optimise::Monitor`].

pub mod check;
pub mod cost;
pub mod dataset;
pub mod limits;
pub mod math;
pub mod model;
pub mod numpy_rng;
pub mod objective;
pub mod optimise;
pub mod parallel;
pub mod paths;
pub mod projection;
pub mod random;
pub mod runner;
pub mod sample;
pub mod source;
pub mod statistics;
pub mod ziggurat;

pub use cost::Cost;
pub use dataset::{Case, Dataset};
pub use model::{ComponentError, Model, ModelSpec, OutputKind, ParamSpec, SimError, SimStats, Workspace};
pub use objective::Objective;
pub use optimise::{OptimResult, Optimiser, Stopping, Termination};
pub use source::SourceError;
