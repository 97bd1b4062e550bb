//! Settings checked against their allowed ranges. Every options type of the optimisers and samplers has a
//! `check` beside its fields, and its constructor runs it, so the core never panics on a setting and every front
//! end (CLI, browser, a future binding) refuses the same values with the same words. The error names the key
//! within the options table; a front end that knows where the table came from adds the place.

use std::fmt::{Debug, Display};

use crate::limits::check_allocation;

/// A setting outside its allowed range: `key` within its options table (dotted for nested tables, e.g.
/// `restarts.factor`), and what was wrong, with the allowed range and the value given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} {message}")]
pub struct OptionError {
    pub key: String,
    pub message: String,
}

impl OptionError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        OptionError { key: key.into(), message: message.into() }
    }

    /// The same error one table further out: `live_points` within `dynamic` is `dynamic.live_points`.
    pub fn within(self, table: &str) -> Self {
        OptionError { key: format!("{table}.{}", self.key), ..self }
    }
}

/// `Ok` when `ok`, else an error saying that `key` must be `allowed` and what it was. The value is shown as Rust
/// debug-prints it: floats in shortest round-trip form, `1e308` rather than 309 digits.
pub fn require(ok: bool, key: &str, allowed: &str, value: impl Debug) -> Result<(), OptionError> {
    if ok { Ok(()) } else { Err(OptionError::new(key, format!("must be {allowed} (got {value:?})"))) }
}

/// `key`, given as `value`, asks for `count` items of `bytes_each` bytes: checked against the memory budget
/// ([`crate::limits`]); the error gives the estimate.
pub fn require_memory(key: &str, value: impl Display, count: f64, bytes_each: f64) -> Result<(), OptionError> {
    check_allocation(&value.to_string(), count, bytes_each).map_err(|message| OptionError::new(key, message))
}

/// A positive finite number.
pub fn positive(key: &str, value: f64) -> Result<(), OptionError> {
    require(value > 0.0 && value.is_finite(), key, "a positive finite number", value)
}

/// A whole number of at least `min`.
pub fn at_least(key: &str, value: usize, min: usize) -> Result<(), OptionError> {
    require(value >= min, key, &format!("at least {min}"), value)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn errors_name_the_key_the_range_and_the_value() {
        assert!(require(true, "x", "positive", 1).is_ok());
        let e = require(false, "mutation", "in (0, 2]", 3.5).unwrap_err();
        assert_eq!(e.to_string(), "mutation must be in (0, 2] (got 3.5)");
        assert_eq!(require(false, "sigma0", "small", 1e308).unwrap_err().message, "must be small (got 1e308)");
        assert_eq!(e.within("dynamic").key, "dynamic.mutation");
        assert_eq!(
            positive("step", f64::NAN).unwrap_err().to_string(),
            "step must be a positive finite number (got NaN)"
        );
        assert!(positive("step", f64::INFINITY).is_err() && positive("step", 0.0).is_err());
        assert!(positive("step", f64::MIN_POSITIVE).is_ok());
        assert!(at_least("walks", 1, 1).is_ok() && at_least("walks", 0, 1).is_err());
    }

    #[test]
    fn sizes_beyond_the_budget_name_the_key_and_the_estimate() {
        assert!(require_memory("population", 1000, 1e3, 1e3).is_ok());
        let e = require_memory("population", 100000000, 1e8, 1e3).unwrap_err();
        assert_eq!(e.key, "population");
        assert!(e.to_string().starts_with("population 100000000 would need about 93.1 GiB"), "{e}");
    }
}
