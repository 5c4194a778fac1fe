//! Compare baseline and candidate profiles per function with noise statistics.
pub mod stats;
