//! Sizes read from input are checked against what they would allocate before anything is allocated, so an
//! absurd population, path count or grid is refused with a message instead of aborting the process when the
//! allocator gives up (or, worse, swapping the machine to a halt).
//!
//! One budget serves every check: [`memory_limit`] bytes, 8 GiB unless a front end sets another
//! ([`set_memory_limit`]; the CLI reads `PARFIT_MEMORY_LIMIT`). The core does no I/O, so it cannot ask the
//! operating system itself.

use std::sync::atomic::{AtomicU64, Ordering};

/// The default budget: 8 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 8 << 30;

static LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_MEMORY_LIMIT);

/// The budget, in bytes, that one run's largest allocations are checked against.
pub fn memory_limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

/// Set the budget (bytes). Front ends call this once, before any work.
pub fn set_memory_limit(bytes: u64) {
    LIMIT.store(bytes, Ordering::Relaxed);
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
    if !bytes.is_finite() || bytes >= 1024f64.powi(6) {
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
