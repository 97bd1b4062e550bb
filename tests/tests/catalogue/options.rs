//! placeholder: filled by the options work
