//! parfit plugin for actuarial projections: lifelib's savings model `CashValue_ME` (kind `cashvalue`) and its
//! term-life model `BasicTerm_ME` (kind `basicterm`), configured by data — model points, product spec,
//! mortality, surrender charges, discount curve, fund-return scenarios, premium rates — and named constants,
//! and any model file in the projection language (kind `projection`, files `.prj`, LANGUAGE.md).
//!
//! Every kind is a projection (plugin ABI v3's projection entry point) of a model file: the two lifelib kinds are
//! the bundled `models/cashvalue_me.prj` and `models/basicterm_me.prj` over tables given by role
//! ([`bundled`]), the kind `projection` a user's file ([`ModelProjector`]). The host asks for blocks of model
//! points (0-based rows of the model point table) under scenario ids (the model's `scenarios` key; `basicterm`
//! has the one scenario 1), and for any of the tables the model's `output` declarations describe:
//!
//! - `pv` (a row per point and scenario): lifelib's `result_pv` row of the point;
//! - `result_cf` and `result_pols` (a row per month, summed over the block's points and scenarios): lifelib's
//!   portfolio cash flows and policy counts;
//! - `audit` (a row per point, scenario and month): every intermediate quantity of a point.
//!
//! The model point table is read by the plugin with the other tables, because its text columns (product, sex)
//! cannot cross the ABI as numbers and because the model's checks of each row read the other tables. The
//! hand-written engine these models replaced is the dev-only crate `parfit-actuarial-reference`.

pub mod bundled;
mod model;

use parfit_abi::{Entry, KindInfo, Plugin, PluginInfo};
use parfit_core::Model;
use parfit_core::projection::Projector;

pub use model::{ModelConfig, ModelProjector, TextFile};

use bundled::{ProjectionConfig, bundled_projection, parse_kind};

/// The plugin as parfit loads it.
pub struct ActuarialPlugin;

impl Plugin for ActuarialPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "actuarial".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![
                KindInfo {
                    kind: "cashvalue".into(),
                    extensions: vec![],
                    description: "lifelib savings CashValue_ME: cash-value projection of model points (tables: \
                                  model_points, product_spec, mortality, surrender_charge, discount, scenarios)"
                        .into(),
                    entry: Entry::Projection,
                },
                KindInfo {
                    kind: "projection".into(),
                    extensions: vec!["prj".into()],
                    description: "a model file in the projection language (LANGUAGE.md): its declared tables, \
                                  parameters and outputs"
                        .into(),
                    entry: Entry::Projection,
                },
                KindInfo {
                    kind: "basicterm".into(),
                    extensions: vec![],
                    description: "lifelib basiclife BasicTerm_ME: term-life projection of model points (tables: \
                                  model_points, premium, mortality, discount)"
                        .into(),
                    entry: Entry::Projection,
                },
            ],
        }
    }

    /// Every kind is a projection: a `[projection]` table runs it, not a `[model]` table.
    fn create(kind: &str, _config_json: &str) -> Result<Box<dyn Model>, String> {
        Err(format!(
            "the actuarial plugin's kind '{kind}' is a projection: configure it in a [projection] table \
             (parfit run, parfit.project)"
        ))
    }

    fn create_projection(kind: &str, config_json: &str) -> Result<Box<dyn Projector>, String> {
        if kind == "projection" {
            let config: ModelConfig =
                serde_json::from_str(config_json).map_err(|e| format!("actuarial projection configuration: {e}"))?;
            return Ok(Box::new(ModelProjector::new(config)?));
        }
        let kind = parse_kind(kind)?;
        let config: ProjectionConfig =
            serde_json::from_str(config_json).map_err(|e| format!("actuarial projection configuration: {e}"))?;
        Ok(Box::new(bundled_projection(kind, config)?))
    }
}

parfit_abi::export_plugin!(ActuarialPlugin);
