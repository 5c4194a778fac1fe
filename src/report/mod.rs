//! Rendering of comparisons and verdicts.
