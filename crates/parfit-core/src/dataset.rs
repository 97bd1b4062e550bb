//! Cases and datasets: the independent units of work a model is fitted to or run over.

use serde::{Deserialize, Serialize};

/// One independent unit of work: an experiment, a county, a model point, a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// How the case is named in reports (a row number, a county code, …).
    pub id: String,
    /// One value per model input, in the model's input order.
    pub inputs: Vec<f64>,
    /// Times at which the model is evaluated (non-decreasing).
    pub times: Vec<f64>,
    /// times × observed columns, row-major; NaN marks a missing observation. Empty when only running.
    pub observations: Vec<f64>,
}

impl Case {
    /// Check the shape and ordering invariants; `n_observed` is the number of observed columns.
    pub fn validate(&self, n_inputs: usize, n_observed: usize) -> Result<(), String> {
        if self.inputs.len() != n_inputs {
            return Err(format!(
                "case {}: the model takes {} inputs but the case has {}",
                self.id,
                n_inputs,
                self.inputs.len()
            ));
        }
        if let Some(i) = self.times.windows(2).position(|w| w[1] < w[0]) {
            return Err(format!(
                "case {}: times must be non-decreasing, but time {} ({}) is followed by {}",
                self.id,
                i + 1,
                self.times[i],
                self.times[i + 1]
            ));
        }
        if let Some(t) = self.times.iter().find(|t| !t.is_finite()) {
            return Err(format!("case {}: time {t} is not a finite number", self.id));
        }
        if !self.observations.is_empty() && self.observations.len() != self.times.len() * n_observed {
            return Err(format!(
                "case {}: {} observations do not fill {} times × {} columns",
                self.id,
                self.observations.len(),
                self.times.len(),
                n_observed
            ));
        }
        Ok(())
    }
}

/// A table of cases sharing the same observed columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dataset {
    /// Model output names the observation columns correspond to.
    pub observed: Vec<String>,
    pub cases: Vec<Case>,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn validation_names_the_case_and_the_problem() {
        let case = Case { id: "county 7".into(), inputs: vec![], times: vec![0.0, 2.0, 1.0], observations: vec![] };
        let err = case.validate(0, 1).unwrap_err();
        assert!(err.contains("county 7") && err.contains("non-decreasing"), "{err}");
        let case = Case { id: "a".into(), inputs: vec![1.0], times: vec![0.0, 1.0], observations: vec![1.0; 3] };
        assert!(case.validate(1, 2).unwrap_err().contains("do not fill"));
        assert!(case.validate(2, 2).unwrap_err().contains("takes 2 inputs"));
    }
}
