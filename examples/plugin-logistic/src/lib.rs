//! A minimal third-party parfit plugin: logistic population growth, solved in closed form.
//!
//! `N(t) = K / (1 + (K/N0 − 1)·exp(−r·t))` with growth rate `r`, carrying capacity `K` and initial size `N0`.
//! Build it with `cargo build --release` in this directory and load it with
//! `parfit --plugin target/release/libparfit_logistic.so …`.

use parfit_abi::core::model::downcast_workspace;
use parfit_abi::core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, Workspace};
use parfit_abi::{KindInfo, Plugin, PluginInfo};

pub struct Logistic {
    spec: ModelSpec,
}

impl Logistic {
    pub fn new() -> Self {
        let positive = |name: &str, default: f64| ParamSpec { lower: 0.0, ..ParamSpec::new(name, default) };
        Logistic {
            spec: ModelSpec {
                name: "logistic".into(),
                params: vec![positive("r", 0.5), positive("K", 100.0), positive("N0", 5.0)],
                inputs: vec![],
                outputs: vec!["N".into()],
                output_kind: OutputKind::TimeSeries,
            },
        }
    }
}

impl Default for Logistic {
    fn default() -> Self {
        Self::new()
    }
}

impl Model for Logistic {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(())
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        p: &[f64],
        _inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        downcast_workspace::<()>(ws, "logistic")?;
        let (r, k, n0) = (p[0], p[1], p[2]);
        if !(n0 > 0.0 && k > 0.0) {
            return Err(SimError::BadParameter { name: "N0, K".into(), reason: "both must be positive".into() });
        }
        for (n, t) in out.iter_mut().zip(times) {
            *n = k / (1.0 + (k / n0 - 1.0) * (-r * t).exp());
        }
        Ok(())
    }

    fn has_sensitivities(&self) -> bool {
        true
    }

    /// Exact derivatives of the closed form: with E = exp(−r t) and D = 1 + (K/N0 − 1) E, N = K / D.
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
        let (r, k, n0) = (p[0], p[1], p[2]);
        for (row, t) in sens.chunks_exact_mut(3).zip(times) {
            let e = (-r * t).exp();
            let d = 1.0 + (k / n0 - 1.0) * e;
            row[0] = k * (k / n0 - 1.0) * t * e / (d * d);
            row[1] = 1.0 / d - k * e / (n0 * d * d);
            row[2] = k * k * e / (n0 * n0 * d * d);
        }
        Ok(())
    }
}

pub struct LogisticPlugin;

impl Plugin for LogisticPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "logistic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![KindInfo {
                kind: "logistic".into(),
                extensions: vec![],
                description: "logistic growth N(t) = K / (1 + (K/N0 - 1) exp(-r t)), closed form".into(),
                entry: parfit_abi::Entry::Model,
            }],
        }
    }

    fn create(kind: &str, _config_json: &str) -> Result<Box<dyn Model>, String> {
        match kind {
            "logistic" => Ok(Box::new(Logistic::new())),
            other => Err(format!("the logistic plugin has no model kind '{other}'")),
        }
    }
}

parfit_abi::export_plugin!(LogisticPlugin);
