//! The exceptions Python sees. Every message is the CLI's: bad input is placed at `file:line:column` (or the
//! file and key), a failed run says what failed.

use parfit_app::{InputError, RunError as ConfigRunError};
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;

pyo3::create_exception!(parfit, ParfitError, PyException, "Base class of parfit's errors.");
pyo3::create_exception!(
    parfit,
    ConfigError,
    ParfitError,
    "Bad input: a configuration, data table or argument to fix. The message names the file and line:column or key."
);
pyo3::create_exception!(
    parfit,
    ModelError,
    ParfitError,
    "A model that cannot be made or simulated: a model file's error at file:line:column, or a plugin's refusal."
);
pyo3::create_exception!(
    parfit,
    RunError,
    ParfitError,
    "A run whose input was good but which produced no result (every case failed, a simulation failed)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ParfitError", py.get_type::<ParfitError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    Ok(())
}

/// Bad input in a configuration, data table or argument.
pub fn config(e: InputError) -> PyErr {
    ConfigError::new_err(e.0)
}

/// A model that could not be made or simulated.
pub fn model(message: impl Into<String>) -> PyErr {
    ModelError::new_err(message.into())
}

/// A run that failed, or was stopped (which Python sees as the KeyboardInterrupt that stopped it).
pub fn run(e: ConfigRunError) -> PyErr {
    match e {
        ConfigRunError::Failed(m) => RunError::new_err(m),
        ConfigRunError::Interrupted(m) => PyKeyboardInterrupt::new_err(m),
    }
}

/// A run that failed, in words.
pub fn failed(message: impl Into<String>) -> PyErr {
    RunError::new_err(message.into())
}
