//! The observations reader (`[data]`, `parfit_app::data`): a CSV with a time column `t`, observing every other
//! column its header names.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use parfit_app::data::read_observations;
use parfit_fuzz::Examples;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let header = text.lines().next().unwrap_or("");
    let columns: Vec<String> = header.split(',').map(str::trim).filter(|c| *c != "t").map(String::from).collect();
    let loader = Examples { extra: Some(text) };
    let _ = read_observations(&loader, Path::new("fuzz/observations.csv"), "t", &columns);
});
