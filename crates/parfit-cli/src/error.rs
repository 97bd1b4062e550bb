//! CLI errors and their exit codes: 2 for bad usage or input, 1 for a job that failed.

use std::fmt;

#[derive(Debug)]
pub enum CliError {
    /// Bad usage or bad input: a config, data or model file the user must fix. Exit code 2.
    Input(String),
    /// The job itself failed (a simulation error, an unwritable output). Exit code 1.
    Failed(String),
    /// Stopped by SIGINT/SIGTERM; finished work is saved. Exit code 130, as shells report an interrupt.
    Interrupted(String),
    /// stdout is a closed pipe: nothing more can be shown, and nothing needs saying. Exit code 1.
    StdoutClosed,
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Input(_) => 2,
            CliError::Failed(_) | CliError::StdoutClosed => 1,
            CliError::Interrupted(_) => 130,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(m) | CliError::Failed(m) | CliError::Interrupted(m) => f.write_str(m),
            CliError::StdoutClosed => f.write_str("stdout is closed"),
        }
    }
}

/// Shorthand for an input error.
pub fn input(message: impl Into<String>) -> CliError {
    CliError::Input(message.into())
}

/// Shorthand for a job failure.
pub fn failed(message: impl Into<String>) -> CliError {
    CliError::Failed(message.into())
}

pub type CliResult<T> = Result<T, CliError>;

impl From<parfit_app::InputError> for CliError {
    fn from(e: parfit_app::InputError) -> Self {
        CliError::Input(e.0)
    }
}

impl From<parfit_app::checkpoint::CheckpointError> for CliError {
    fn from(e: parfit_app::checkpoint::CheckpointError) -> Self {
        match e {
            parfit_app::checkpoint::CheckpointError::Input(e) => CliError::Input(e.0),
            parfit_app::checkpoint::CheckpointError::Io(m) => CliError::Failed(m),
        }
    }
}
