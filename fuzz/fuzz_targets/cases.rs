//! The case table reader (`[cases]`, `parfit_app::cases`): multi-row headers, id columns, inputs and
//! observations, read as the county example's configuration reads its table, for the aging chain's names.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parfit_app::cases::read_cases;
use parfit_app::config::{CasesSection, LoadedConfig};
use parfit_core::Model;
use parfit_fuzz::Examples;
use parfit_vensim::VensimModel;

const CONFIG: &str = "examples/counties/fit.toml";

/// The example's `[cases]` section and its model.
fn setup() -> &'static (CasesSection, VensimModel) {
    static SETUP: OnceLock<(CasesSection, VensimModel)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let text = include_str!("../../examples/counties/fit.toml");
        let loaded = LoadedConfig::parse(Path::new(CONFIG), text).expect("the example configuration parses");
        let section = loaded.config.cases.expect("the example has [cases]");
        let model =
            VensimModel::compile(include_str!("../../examples/counties/Aging_Chain.mdl"), "Aging_Chain.mdl", None)
                .expect("the example model compiles");
        (section, model)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (section, model) = setup();
    let loader = Examples { extra: Some(text) };
    let _ =
        read_cases(&loader, Path::new("fuzz/cases.csv"), section, model.spec(), &|keys| format!("{CONFIG} {keys:?}"));
});
