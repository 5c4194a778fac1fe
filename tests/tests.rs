//! Integration tests, all in one binary: helpers live in `support`, one module per area.

mod support;

mod archive;
mod attribution;
mod capture;
mod diff_cli;
mod fuzz_corpus;
mod github;
mod history;
mod hostile;
mod k8s;
mod k8s_faults;
mod labels;
mod lifecycle;
mod live_stats;
mod parity;
mod policy_cli;
mod report;
mod runtimes;
mod security;
mod ship;
