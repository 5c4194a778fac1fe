//! Decode pprof profiles and aggregate them per function.
mod kind;

pub use kind::ProfileKind;
