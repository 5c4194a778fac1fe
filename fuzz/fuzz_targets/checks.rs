//! What every fuzz input must satisfy, shared by the fuzz targets and by the main test suite,
//! which replays the committed seeds and the inputs that once failed (`fuzz/regressions/`).

// Each fuzz target uses one of these checks.
#![allow(dead_code)]
use profile_gate::policy::Policy;
use profile_gate::profile::{self, DecodeOptions};

/// Any bytes as a profile file: decoding and aggregation never panic, hang or over-allocate,
/// and the streaming aggregation agrees with aggregating the fully decoded message.
pub fn decode(data: &[u8]) {
    // A small bound, so inputs that inflate far are refused quickly rather than slowly.
    let limits = DecodeOptions {
        max_decompressed_bytes: 1 << 20,
        ..DecodeOptions::default()
    };
    let streamed = profile::read_profile(data, limits);
    let decoded = profile::decode(data, limits).and_then(|p| profile::aggregate(&p));
    if let (Ok(streamed), Ok(decoded)) = (&streamed, &decoded) {
        assert_eq!(
            streamed, decoded,
            "the streaming and the message decoder disagree"
        );
    }
    if let Ok(p) = streamed {
        assert_eq!(p.totals.len(), p.sample_types.len());
        for f in 0..p.functions.len() {
            for st in 0..p.sample_types.len() {
                // Every cell can be read.
                let _ = (p.flat(f, st), p.cum(f, st));
            }
        }
    }
}

/// Any bytes as a policy file: parsing never panics or hangs, and a policy that parses
/// round-trips through its canonical YAML unchanged.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::from_yaml_str(text, "fuzz.yaml") {
        let _ = policy.describe();
        let again = Policy::from_yaml_str(&policy.to_yaml(), "fuzz.yaml")
            .unwrap_or_else(|e| panic!("the canonical YAML does not parse again: {e}"));
        assert_eq!(policy, again, "the canonical YAML changes the policy");
    }
}
