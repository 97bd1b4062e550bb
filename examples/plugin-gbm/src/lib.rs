//! A third-party parfit Monte Carlo plugin: geometric Brownian motion, run through plugin ABI v3's paths entry
//! point.
//!
//! Each path starts at `s0` and steps `periods` times by `S ← S · exp((mu − sigma²/2)·dt + sigma·√dt·Z)` with
//! `Z` a standard normal drawn from the path's own stream (parfit's keyed `Stream` for (seed, path index), so a
//! path's values depend on nothing but the seed, its index, the parameters and the number of periods). Each
//! path reports `price` (its last value) and `log_return` (`ln(price / s0)`). In closed form the log return is
//! normal with mean `(mu − sigma²/2)·T` and variance `sigma²·T`, `T = periods · dt`, and the mean price is
//! `s0 · exp(mu · T)`.

use parfit_abi::core::paths::{PathRunner, PathsSpec};
use parfit_abi::core::random::Stream;
use parfit_abi::core::{ParamSpec, SimError, Workspace};
use parfit_abi::{Entry, KindInfo, Plugin, PluginInfo};

/// The model kind, and the plugin's name.
pub const KIND: &str = "gbm";

/// Geometric Brownian motion paths.
#[derive(Debug)]
pub struct Gbm {
    spec: PathsSpec,
}

impl Gbm {
    pub fn new() -> Gbm {
        let positive = |name: &str, default: f64| ParamSpec { lower: 0.0, ..ParamSpec::new(name, default) };
        let params =
            vec![positive("s0", 100.0), ParamSpec::new("mu", 0.05), positive("sigma", 0.2), positive("dt", 1.0 / 12.0)];
        Gbm { spec: PathsSpec { name: KIND.into(), params, outputs: vec!["price".into(), "log_return".into()] } }
    }
}

impl Default for Gbm {
    fn default() -> Self {
        Gbm::new()
    }
}

impl PathRunner for Gbm {
    fn spec(&self) -> &PathsSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(())
    }

    fn run(
        &self,
        _: &mut Workspace,
        params: &[f64],
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let &[s0, mu, sigma, dt] = params else {
            return Err(SimError::BadInput(format!("gbm takes 4 parameters, got {}", params.len())));
        };
        for (p, spec) in params.iter().zip(&self.spec.params) {
            if !p.is_finite() || *p < spec.lower {
                let reason = format!("{p} is not a finite number of at least {}", spec.lower);
                return Err(SimError::BadParameter { name: spec.name.clone(), reason });
            }
        }
        if out.len() != count * 2 {
            return Err(SimError::BadInput(format!("expected {} output values, got {}", count * 2, out.len())));
        }
        let (drift, volatility) = ((mu - 0.5 * sigma * sigma) * dt, sigma * dt.sqrt());
        for (k, row) in out.chunks_exact_mut(2).enumerate() {
            let mut stream = Stream::new(seed, first + k as u64, 0);
            let mut log_return = 0.0;
            for _ in 0..periods {
                log_return += drift + volatility * stream.normal();
            }
            row[0] = s0 * log_return.exp();
            row[1] = log_return;
        }
        Ok(())
    }
}

/// The plugin's face to the host.
pub struct GbmPlugin;

impl Plugin for GbmPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: KIND.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![KindInfo {
                kind: KIND.into(),
                extensions: vec![],
                description: "geometric Brownian motion paths (parameters s0, mu, sigma, dt; outputs price and \
                              log_return after the last period)"
                    .into(),
                entry: Entry::Paths,
            }],
        }
    }

    fn create(kind: &str, _: &str) -> Result<Box<dyn parfit_abi::core::Model>, String> {
        Err(format!("'{kind}' is run as Monte Carlo paths (a [montecarlo] configuration), not as a model"))
    }

    fn create_paths(kind: &str, config_json: &str) -> Result<Box<dyn PathRunner>, String> {
        if kind != KIND {
            return Err(format!("unknown kind '{kind}' (this plugin provides: {KIND})"));
        }
        // The host sends the [model.options] table; this model has none.
        let config: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(config_json).map_err(|e| format!("invalid {KIND} configuration: {e}"))?;
        if let Some(key) = config.keys().next() {
            return Err(format!("the {KIND} model takes no option '{key}'"));
        }
        Ok(Box::new(Gbm::new()))
    }
}

parfit_abi::export_plugin!(GbmPlugin);
