//! placeholder: filled by the outputs work
