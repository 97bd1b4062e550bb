//! The MPI checks of `cargo xtask test`: Open MPI installed when missing (Debian packages, as root), clippy on
//! the `mpi` feature, and the end-to-end MPI tests (`tests/tests/mpi.rs`: 1, 2 and 3 ranks against the plain
//! build, kill and resume).

use std::process::{Command, Stdio};

use crate::{Result, cargo, run};

/// What the `mpi` crate needs to build (its bindgen wants libclang) and the tests need to run.
const PACKAGES: &[&str] = &["openmpi-bin", "libopenmpi-dev", "libclang-dev"];

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn installed() -> bool {
    quiet(Command::new("mpirun").arg("--version")) && quiet(Command::new("dpkg").arg("-s").args(PACKAGES))
}

/// Install Open MPI and libclang with apt when they are missing; a quick `dpkg -s` when they are there.
pub fn ensure_open_mpi() -> Result {
    if installed() {
        return Ok(());
    }
    let how = format!("the MPI tests need Open MPI and libclang: apt-get install {}", PACKAGES.join(" "));
    if !quiet(Command::new("apt-get").arg("--version")) {
        return Err(format!("{how} (no apt-get here: install Open MPI 4 and libclang by other means)"));
    }
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(PACKAGES);
    if run(&mut install).is_err() {
        // A fresh machine's package lists may be missing or stale.
        run(&mut apt(&["update"])).map_err(|e| format!("{e}\n{how}"))?;
        run(&mut install).map_err(|e| format!("{e}\n{how}"))?;
    }
    Ok(())
}

/// Lint the code behind the `mpi` features, then run the MPI end-to-end tests.
pub fn test() -> Result {
    ensure_open_mpi()?;
    let features = "parfit-cli/mpi,parfit-tests/mpi";
    run(cargo()
        .args(["clippy", "-p", "parfit-cli", "-p", "parfit-tests", "--all-targets", "--features", features])
        .args(["--", "-D", "warnings"]))?;
    run(cargo().args(["test", "-p", "parfit-tests", "--features", "mpi", "--test", "mpi"]))
}
