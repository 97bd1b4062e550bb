//! Errors about a place in a model's source text, shared by the plugins that read model files.

use std::fmt;

/// A problem in model text (or a model's configuration), with where it is: `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SourceError {
    /// The file name the text came from, as the user gave it.
    pub source_name: String,
    /// 1-based; 0 when the error is not about a place in the text (e.g. a bad option).
    pub line: usize,
    /// 1-based, in characters; 0 when `line` is 0.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source_name, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.source_name, self.line, self.column, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn places_are_shown_like_compilers_show_them() {
        let at = |line, column| SourceError { source_name: "m.ds".into(), line, column, message: "bad".into() };
        assert_eq!(at(3, 14).to_string(), "m.ds:3:14: bad");
        assert_eq!(at(0, 0).to_string(), "m.ds: bad");
    }
}
