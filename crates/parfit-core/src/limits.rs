//! Sizes read from input are checked against what they would allocate before anything is allocated, so an
//! absurd population, path count or grid is refused with a message instead of aborting the process when the
//! allocator gives up (or, worse, swapping the machine to a halt).
//!
//! One budget serves every check: [`memory_limit`] bytes — the environment variable `PARFIT_MEMORY_LIMIT` when
//! it holds a valid size, else 8 GiB. It is read from the environment rather than set by the front end because
//! every plugin library carries its own copy of this crate: the environment is what they all share. Front ends
//! check the variable with [`limit_from_environment`] before any work, so a bad value is an error there, not
//! silently the default. (On wasm32 there is no environment: always the default.)

use crate::math;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default budget: 8 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 8 << 30;

/// The environment variable that sets the budget, in bytes.
pub const MEMORY_LIMIT_VARIABLE: &str = "PARFIT_MEMORY_LIMIT";

/// 0 until the budget is first asked for (a budget of 0 bytes is not allowed).
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// The budget, in bytes, that one run's largest allocations are checked against.
pub fn memory_limit() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {
            let bytes = limit_from_environment().ok().flatten().unwrap_or(DEFAULT_MEMORY_LIMIT);
            LIMIT.store(bytes, Ordering::Relaxed);
            bytes
        }
        bytes => bytes,
    }
}

/// `PARFIT_MEMORY_LIMIT` as a number of bytes (a whole number from 1), `None` when unset, or why it is not valid.
pub fn limit_from_environment() -> Result<Option<u64>, String> {
    let Some(value) = std::env::var_os(MEMORY_LIMIT_VARIABLE) else { return Ok(None) };
    let text = value.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(bytes) if bytes >= 1 => Ok(Some(bytes)),
        _ => Err(format!(
            "{MEMORY_LIMIT_VARIABLE} must be a whole number of bytes from 1 to {} (got {text:?})",
            u64::MAX
        )),
    }
}

/// Set the budget (bytes, at least 1) for this copy of the crate, overriding the environment: for tests.
pub fn set_memory_limit(bytes: u64) {
    LIMIT.store(bytes.max(1), Ordering::Relaxed);
}

/// Refuse `count` items of `bytes_each` bytes when together they exceed the budget (or overflow). `what`
/// names the setting in the user's terms, e.g. `"[fit.cmaes] population 100000000"`; the message gives the
/// estimate and the budget. Counts come in as `f64` so products of several settings cannot overflow first.
pub fn check_allocation(what: &str, count: f64, bytes_each: f64) -> Result<(), String> {
    let bytes = count * bytes_each;
    let limit = memory_limit();
    if bytes.is_finite() && bytes <= limit as f64 {
        return Ok(());
    }
    Err(format!(
        "{what} would need about {} of memory, more than the limit of {} (set PARFIT_MEMORY_LIMIT, in bytes, to \
         change it)",
        human_bytes(bytes),
        human_bytes(limit as f64)
    ))
}

/// `1.5 GB`, `12 MB`, `7.2e30 bytes`: binary units, two significant digits.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if !bytes.is_finite() || bytes >= math::powi(1024f64, 6) {
        return format!("{bytes:.1e} bytes");
    }
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} bytes") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn sizes_within_the_budget_pass_and_beyond_it_are_refused_with_the_estimate() {
        assert!(check_allocation("population 10", 10.0, 64.0).is_ok());
        let e = check_allocation("[fit.cmaes] population 100000000", 1e8, 1e3).unwrap_err();
        assert!(e.contains("population 100000000") && e.contains("93.1 GiB") && e.contains("8.0 GiB"), "{e}");
        assert!(check_allocation("overflow", f64::MAX, 2.0).unwrap_err().contains("inf bytes"));
        assert!(check_allocation("nan", f64::NAN, 1.0).is_err());
    }
}
