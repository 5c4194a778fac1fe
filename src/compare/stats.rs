//! Statistical building blocks for the comparison: pure functions, values in, values out.
