//! The fuzz targets' checks (`fuzz/fuzz_targets/checks.rs`) over the committed inputs: every
//! input that once failed (`fuzz/regressions/`) and the seeds the fuzzer starts from, so a fixed
//! bug stays fixed without cargo-fuzz.

use std::path::{Path, PathBuf};

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.expect("listing").path()).collect(),
        Err(_) => Vec::new(),
    };
    out.retain(|p| p.is_file() && !p.ends_with(".gitkeep"));
    out.sort();
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `check` on one input, naming the file when it panics.
fn replay(check: fn(&[u8]), file: &Path) {
    let bytes = std::fs::read(file).expect("reading a fuzz input");
    if std::panic::catch_unwind(|| check(&bytes)).is_err() {
        panic!("{} fails the fuzz check again", file.display());
    }
}

#[test]
fn past_decoder_failures_and_seeds_pass_the_decode_check() {
    let mut inputs = files(&root().join("fuzz/regressions/decode"));
    let seeds = files(&root().join("examples/profiles/stable/pod-1"));
    assert!(seeds.len() >= 6, "the seed profiles are missing");
    inputs.extend(seeds);
    for file in &inputs {
        replay(checks::decode, file);
        // The seeds inflated, as the fuzzer also starts from them raw.
        let bytes = std::fs::read(file).unwrap();
        if let Ok(raw) = profile_gate::profile::inflate(&bytes, Default::default()) {
            checks::decode(&raw);
        }
    }
}

#[test]
fn past_policy_failures_and_shipped_policies_pass_the_policy_check() {
    let mut inputs = files(&root().join("fuzz/regressions/policy"));
    let seeds = files(&root().join("policies"));
    assert!(seeds.len() >= 3, "the shipped policies are missing");
    inputs.extend(seeds);
    for file in &inputs {
        replay(checks::policy, file);
    }
}
