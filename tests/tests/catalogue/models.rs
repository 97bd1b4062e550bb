//! placeholder: filled by the models work
