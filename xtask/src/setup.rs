//! What the checks need beyond a stable Rust toolchain, installed when missing so that `cargo xtask test` passes
//! on a fresh Debian machine: Debian packages (Open MPI and libclang, Chromium, node and npm) through apt-get,
//! with one `apt-get update` per run, and the toolchain's rustfmt, clippy and wasm32 target through rustup. Where
//! it cannot install (no apt-get, not root, no rustup) it says exactly what to install.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Result, cargo, run};

/// A Debian package a check needs, what it provides (for a machine without apt-get), and how to tell it is here.
pub struct Package {
    name: &'static str,
    provides: &'static str,
    present: fn() -> bool,
}

/// Whether a command runs and succeeds, its output discarded.
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn dpkg_has(name: &str) -> bool {
    succeeds(Command::new("dpkg").args(["-s", name]))
}

/// The MPI tests: mpirun, and the headers and libclang the `mpi` crate's bindgen builds against.
pub const MPI: &[Package] = &[
    Package {
        name: "openmpi-bin",
        provides: "Open MPI 4's mpirun",
        present: || succeeds(Command::new("mpirun").arg("--version")),
    },
    Package { name: "libopenmpi-dev", provides: "Open MPI's headers", present: || dpkg_has("libopenmpi-dev") },
    Package { name: "libclang-dev", provides: "libclang", present: || dpkg_has("libclang-dev") },
];

const NODEJS: Package =
    Package { name: "nodejs", provides: "Node.js", present: || succeeds(Command::new("node").arg("--version")) };

/// node runs the wasm32 unit tests (wasm-bindgen-test-runner) and the browser test's script.
pub const NODE: &[Package] = &[NODEJS];

/// The browser test: Debian's chromium (a browser that downloads its own build cannot), driven by npm's
/// playwright-core under node.
pub const BROWSER: &[Package] = &[
    Package {
        name: "chromium",
        provides: "Chromium (or set CHROMIUM=/path/to/chrome)",
        present: || crate::wasm::chromium().is_ok(),
    },
    NODEJS,
    Package { name: "npm", provides: "npm", present: || succeeds(Command::new("npm").arg("--version")) },
];

/// Set once this process has run `apt-get update`: a run installs from one fresh package list.
static UPDATED: AtomicBool = AtomicBool::new(false);

/// Install the packages of `needs` that are missing (`apt-get update` first, once per run); `what` names the
/// checks that need them, for the message when this machine cannot install them itself.
pub fn debian(what: &str, needs: &[&[Package]]) -> Result {
    let mut missing: Vec<&Package> = needs.iter().flat_map(|n| n.iter()).filter(|p| !(p.present)()).collect();
    missing.sort_unstable_by_key(|p| p.name);
    missing.dedup_by_key(|p| p.name);
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.iter().map(|p| p.name).collect::<Vec<_>>().join(" ");
    let how = format!("{what}: missing Debian packages {list}");
    if !succeeds(Command::new("apt-get").arg("--version")) {
        let provides: Vec<&str> = missing.iter().map(|p| p.provides).collect();
        return Err(format!("{how}\nthis machine has no apt-get: install {}, then run again", provides.join(", ")));
    }
    if !Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0") {
        return Err(format!(
            "{how}\ninstalling them needs root: sudo apt-get update && sudo apt-get install -y \
             --no-install-recommends {list}"
        ));
    }
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    eprintln!("\n{how}: installing them");
    if !UPDATED.swap(true, Ordering::Relaxed) {
        run(&mut apt(&["update"])).map_err(|e| format!("{e}\n{how}"))?;
    }
    run(apt(&["install", "-y", "--no-install-recommends"]).args(missing.iter().map(|p| p.name)))
        .map_err(|e| format!("{e}\n{how}"))
}

/// The stable toolchain's rustfmt and clippy (for `cargo fmt` and `cargo clippy`) and its wasm32 target (the
/// wasm32 check and unit tests), added with rustup when missing.
pub fn rust_tools() -> Result {
    let mut components: Vec<&str> = Vec::new();
    for (component, tool) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if !succeeds(cargo().args([tool, "--version"])) {
            components.push(component);
        }
    }
    if !components.is_empty() {
        run(Command::new("rustup").arg("component").arg("add").args(&components)).map_err(|e| {
            format!("{e}\nthe checks need the toolchain's {}: rustup component add {0}", components.join(" "))
        })?;
    }
    if !wasm_target_installed() {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])).map_err(|e| {
            format!("{e}\nthe wasm32 checks need the toolchain's target: rustup target add wasm32-unknown-unknown")
        })?;
    }
    Ok(())
}

fn wasm_target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-unknown-unknown"))
}
