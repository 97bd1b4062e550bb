//! The MPI checks of `cargo xtask test`: Open MPI installed when missing (see `setup.rs`), clippy on
//! the `mpi` feature, and the end-to-end MPI tests (`tests/tests/mpi.rs`: 1, 2 and 3 ranks against the plain
//! build, kill and resume).

use crate::{Result, cargo, run, setup};

/// Lint the code behind the `mpi` features, then run the MPI end-to-end tests.
pub fn test() -> Result {
    setup::debian("the MPI tests", &[setup::MPI])?;
    let features = "parfit-cli/mpi,parfit-tests/mpi";
    run(cargo()
        .args(["clippy", "-p", "parfit-cli", "-p", "parfit-tests", "--all-targets", "--features", features])
        .args(["--", "-D", "warnings"]))?;
    run(cargo().args(["test", "-p", "parfit-tests", "--features", "mpi", "--test", "mpi"]))
}
