//! Fuzz target: any bytes as a YAML policy file (see `checks::policy`).
#![no_main]

mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::policy(data));
