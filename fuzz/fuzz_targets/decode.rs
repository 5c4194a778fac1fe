//! Fuzz target: any bytes as a pprof profile file (see `checks::decode`).
#![no_main]

mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode(data));
