//! The plugin through the C ABI, loaded from this crate's cdylib the way the CLI loads it: the spec, NaN
//! inputs, results and errors cross the boundary intact.

use std::path::PathBuf;

use parfit_abi::host::LoadedPlugin;
use parfit_aging_chain::VensimModel;
use parfit_core::{Model, SimError};

/// The cdylib cargo built next to this test's directory (`target/<profile>/deps/..`).
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let file = format!("{}parfit_aging_chain{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let path = profile_dir.join(file);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

fn mdl() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/aging_chain/Aging_Chain.mdl");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_aging_chain_through_the_abi() {
    let plugin = LoadedPlugin::load(&library()).unwrap();
    assert_eq!(plugin.info().name, "aging-chain");
    assert!(plugin.offers("vensim"));
    let config = serde_json::json!({ "source": mdl(), "source_name": "Aging_Chain.mdl" }).to_string();
    let remote = plugin.create("vensim", &config).unwrap();
    let local = VensimModel::compile(&mdl(), "Aging_Chain.mdl", None).unwrap();
    assert_eq!(remote.spec(), local.spec());

    let times: Vec<f64> = (0..=10).map(|y| 2000.0 + y as f64).collect();
    let mut inputs = vec![3375.0, 3630.0, 2461.0, 3407.0, 3283.0, 2319.0, 1637.0, 825.0, 284.0];
    inputs[8] = f64::NAN; // the file's initial value
    let params = local.spec().defaults();
    let run = |m: &dyn Model| {
        let mut ws = m.workspace();
        let mut out = vec![0.0; m.spec().output_len(times.len())];
        m.simulate(&mut ws, &params, &inputs, &times, &mut out).map(|()| out)
    };
    let (a, b) = (run(&remote).unwrap(), run(&local).unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(a[8], 10.0);

    // Errors come back as the same values.
    let mut ws = remote.workspace();
    let mut out = vec![0.0; remote.spec().output_len(1)];
    let err = remote.simulate(&mut ws, &params, &inputs, &[2000.3], &mut out).unwrap_err();
    assert!(matches!(err, SimError::BadInput(m) if m.contains("2000.3")));
    let bad = serde_json::json!({ "source": "x = SMOOTH(y, 1) ~~|", "source_name": "m.mdl" }).to_string();
    let Err(err) = plugin.create("vensim", &bad) else { panic!("SMOOTH was accepted") };
    assert!(err.contains("m.mdl:1:5: the Vensim function SMOOTH is not supported"), "{err}");
}
