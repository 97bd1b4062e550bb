//! The Python package (`crates/parfit-py`): `cargo xtask python` builds its wheel with maturin — the plugins
//! bundled inside — and installs it into the venv `target/python/venv`; `cargo xtask test` does the same with
//! the debug profile and runs the package's pytest suite against the CLI of the same build.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo, root, run, target_dir};

/// What the venv holds, pinned so a fresh machine tests against the versions this was written with.
const PACKAGES: &[&str] =
    &["maturin==1.16.0", "pytest==9.2.0", "numpy==2.4.6", "pandas==3.1.1", "tqdm==4.70.1", "matplotlib==3.11.2"];

/// The plugin crates whose libraries the wheel carries.
const PLUGINS: &[&str] = &["parfit-ode", "parfit-vensim", "parfit-montecarlo", "parfit-actuarial"];

pub fn venv() -> PathBuf {
    target_dir().join("python/venv")
}

fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// The venv with the pinned packages (made once; a finished install leaves a marker).
fn ensure_venv() -> Result {
    let marker = venv().join(format!("parfit-packages-{}", PACKAGES.len()));
    if marker.exists() && venv_bin("python").exists() {
        return Ok(());
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(venv()))?;
    run(Command::new(venv_bin("python")).args(["-m", "pip", "install", "--quiet", "--upgrade", "pip"]))?;
    run(Command::new(venv_bin("python")).args(["-m", "pip", "install", "--quiet"]).args(PACKAGES))?;
    std::fs::write(&marker, PACKAGES.join("\n")).map_err(|e| format!("{}: {e}", marker.display()))
}

/// Build the plugins and the wheel (`release`, or the dev profile the tests use) and install it into the venv.
pub fn build(release: bool) -> Result<PathBuf> {
    ensure_venv()?;
    let profile = if release { "release" } else { "debug" };
    let mut plugins = cargo();
    plugins.arg("build");
    if release {
        plugins.arg("--release");
    }
    for p in PLUGINS {
        plugins.args(["-p", p]);
    }
    run(&mut plugins)?;
    let package = root().join("crates/parfit-py");
    let bundled = package.join("python/parfit/plugins");
    let _ = std::fs::remove_dir_all(&bundled);
    std::fs::create_dir_all(&bundled).map_err(|e| format!("{}: {e}", bundled.display()))?;
    for p in PLUGINS {
        let file = format!("{}{}{}", std::env::consts::DLL_PREFIX, p.replace('-', "_"), std::env::consts::DLL_SUFFIX);
        let from = target_dir().join(profile).join(&file);
        std::fs::copy(&from, bundled.join(&file)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    let wheels = target_dir().join("python/wheels").join(profile);
    let _ = std::fs::remove_dir_all(&wheels);
    let mut maturin = Command::new(venv_bin("maturin"));
    maturin.current_dir(root()).arg("build").arg("--manifest-path").arg(package.join("Cargo.toml"));
    maturin.arg("--interpreter").arg(venv_bin("python")).arg("--out").arg(&wheels);
    if release {
        maturin.arg("--release");
    } else {
        maturin.args(["--profile", "dev"]);
    }
    let built = run(&mut maturin);
    // The copies go once the wheel has them, so a plain `pip install ./crates/parfit-py` always gives what the
    // README says it gives (no plugins: PARFIT_PLUGIN_PATH points it at them), never a stale or debug copy.
    let _ = std::fs::remove_dir_all(&bundled);
    built?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| format!("{}: {e}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| format!("maturin wrote no wheel to {}", wheels.display()))?;
    run(Command::new(venv_bin("python"))
        .args(["-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps"])
        .arg(&wheel))?;
    Ok(wheel)
}

/// `cargo xtask python`: the release wheel, installed.
pub fn install() -> Result {
    let wheel = build(true)?;
    println!(
        "\nInstalled {} into {}; try:\n  {} -c \"import parfit; print(parfit.plugins())\"",
        wheel.display(),
        venv().display(),
        venv_bin("python").display()
    );
    Ok(())
}

/// The pytest suite against the dev wheel and the debug CLI.
pub fn test() -> Result {
    build(false)?;
    run(cargo().args(["build", "-p", "parfit-cli"]))?;
    let cli = target_dir().join("debug").join(format!("parfit{}", std::env::consts::EXE_SUFFIX));
    run(Command::new(venv_bin("python"))
        .current_dir(root())
        .env("PARFIT_CLI", &cli)
        .env("MPLBACKEND", "Agg")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(Path::new("crates/parfit-py/tests")))
}
