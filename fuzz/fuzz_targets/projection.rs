//! A `[projection]` run of the actuarial plugin (`plugins/actuarial` tables and data, `parfit_app::projection`):
//! the input is one file of lifelib's two examples, named on its first line (`savings/mort_table.csv`), then its
//! text; the example's other files are as committed, the long tables cut to their first rows. The
//! configuration is read, every table checked, and the portfolio projected.
#![no_main]

use std::path::Path;
use std::sync::atomic::AtomicBool;

use libfuzzer_sys::fuzz_target;
use parfit_abi::Plugin;
use parfit_actuarial::ActuarialPlugin;
use parfit_app::dispatch::Local;
use parfit_app::projection::{ProjectConfig, Projection};
use parfit_app::{InputError, Loader, input};
use parfit_fuzz::head;

/// Each example's files by path under `examples/`, its configuration first.
const SAVINGS: [(&str, &str); 7] = [
    ("savings/samples.toml", include_str!("../../examples/savings/samples.toml")),
    ("savings/model_point_samples.csv", include_str!("../../examples/savings/model_point_samples.csv")),
    ("savings/product_spec_table.csv", include_str!("../../examples/savings/product_spec_table.csv")),
    ("savings/mort_table.csv", include_str!("../../examples/savings/mort_table.csv")),
    ("savings/surr_charge_table.csv", include_str!("../../examples/savings/surr_charge_table.csv")),
    ("savings/disc_rate_ann.csv", include_str!("../../examples/savings/disc_rate_ann.csv")),
    ("savings/std_norm_rand.csv", include_str!("../../examples/savings/std_norm_rand.csv")),
];
const BASICTERM: [(&str, &str); 5] = [
    ("basicterm/run.toml", include_str!("../../examples/basicterm/run.toml")),
    (
        "basicterm/basicterm_me_model_point_table.csv",
        include_str!("../../examples/basicterm/basicterm_me_model_point_table.csv"),
    ),
    ("basicterm/basicterm_premium_table.csv", include_str!("../../examples/basicterm/basicterm_premium_table.csv")),
    ("savings/mort_table.csv", include_str!("../../examples/savings/mort_table.csv")),
    ("savings/disc_rate_ann.csv", include_str!("../../examples/savings/disc_rate_ann.csv")),
];
/// The rows kept of the long tables the target holds (the header, then 40 model points or the first of the ten
/// scenarios' 1,801 months): every execution reads them, and their length adds nothing the fuzzed file does not.
fn kept_lines(key: &str) -> usize {
    if key.contains("model_point") {
        1 + 40
    } else if key.contains("std_norm_rand") {
        1 + 1801
    } else {
        usize::MAX
    }
}

/// One example's files, by file name wherever the configuration puts them, with one replaced.
struct Files<'a> {
    files: &'a [(&'a str, &'a str)],
    replaced: (&'a str, &'a str),
}

impl Files<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        let (name, text) = self.replaced;
        if key == name {
            return Some(text);
        }
        let (_, text) = self.files.iter().find(|(k, _)| *k == key)?;
        Some(head(text, kept_lines(key)))
    }
}

impl Loader for Files<'_> {
    fn read(&self, path: &Path) -> Result<String, InputError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let key = self.files.iter().map(|(k, _)| *k).find(|k| k.rsplit('/').next() == Some(name));
        key.and_then(|k| self.text(k))
            .map(String::from)
            .ok_or_else(|| input(format!("{}: no such file", path.display())))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((name, text)) = text.split_once('\n') else { return };
    let Some(files) = [&SAVINGS[..], &BASICTERM[..]].into_iter().find(|f| f.iter().any(|(k, _)| *k == name)) else {
        return;
    };
    let files = Files { files, replaced: (name, text) };
    let (config_name, _) = files.files[0];
    let Some(config_text) = files.text(config_name) else { return };
    let path = Path::new("examples").join(config_name);
    let Ok(config) = ProjectConfig::parse(&path, config_text) else { return };
    // The examples name their kind; a fuzzed configuration without one is refused here.
    let Some(kind) = config.projection.kind.clone() else { return };
    let create = |json: &str| ActuarialPlugin::create_projection(&kind, json);
    let Ok(projection) = Projection::new(&config, &path, &files, &kind, &create) else { return };
    let _ = projection.run(&Local, &AtomicBool::new(false), &mut |_| false, &mut |_, _| Ok(()));
    let _ = projection.audit();
});
