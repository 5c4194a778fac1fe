//! Integration tests, all in one binary: helpers live in `support`, one module per area.

mod support;

mod diff_cli;
mod parity;
mod policy_cli;
