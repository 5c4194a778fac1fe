//! Property and edge-case tests of decoding and aggregation.

use proptest::prelude::*;
use prost::Message;

use super::proto::{Function, Line, Location, Mapping, Profile, Sample, ValueType};
use super::*;

/// A random but valid profile: `n_funcs` functions, locations with 1-3 (inlined) lines, some
/// address-only locations, and samples with stacks that may recurse.
fn arb_profile() -> impl Strategy<Value = Profile> {
    (1usize..12, 1usize..20, 1usize..3).prop_flat_map(|(n_funcs, n_locs, n_types)| {
        let locs = prop::collection::vec(prop::collection::vec(0..n_funcs as u64, 0..4), n_locs);
        let samples = prop::collection::vec(
            (
                prop::collection::vec(0..n_locs as u64, 1..10),
                prop::collection::vec(-5i64..1000, n_types),
            ),
            0..40,
        );
        (Just(n_funcs), Just(n_types), locs, samples).prop_map(
            |(n_funcs, n_types, locs, samples)| {
                let mut strings: Vec<Vec<u8>> = vec![b"".to_vec()];
                let mut intern = |s: &str| {
                    strings.push(s.as_bytes().to_vec());
                    strings.len() as i64 - 1
                };
                let sample_type = (0..n_types)
                    .map(|i| ValueType {
                        r#type: intern(&format!("type{i}")),
                        unit: intern("count"),
                    })
                    .collect();
                // Two function ids share a name to check merging by name.
                let function = (0..n_funcs as u64)
                    .map(|i| Function {
                        id: i + 1,
                        name: intern(&format!("pkg.f{}", i % 7)),
                        ..Default::default()
                    })
                    .collect();
                let mapping = vec![Mapping {
                    id: 1,
                    memory_start: 0x1000,
                    memory_limit: 0x9000,
                    filename: intern("/bin/app"),
                    ..Default::default()
                }];
                let location = locs
                    .iter()
                    .enumerate()
                    .map(|(i, lines)| Location {
                        id: i as u64 + 1,
                        mapping_id: 1,
                        address: 0x1000 + i as u64 * 16,
                        line: lines
                            .iter()
                            .map(|&f| Line {
                                function_id: f + 1,
                                line: 1,
                                column: 0,
                            })
                            .collect(),
                        is_folded: false,
                    })
                    .collect();
                let sample = samples
                    .into_iter()
                    .map(|(stack, value)| Sample {
                        location_id: stack.into_iter().map(|l| l + 1).collect(),
                        value,
                        label: vec![],
                    })
                    .collect();
                Profile {
                    sample_type,
                    sample,
                    mapping,
                    location,
                    function,
                    string_table: strings,
                    ..Default::default()
                }
            },
        )
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

proptest! {
    #[test]
    fn flat_sums_to_total_and_cum_is_at_least_flat(p in arb_profile()) {
        let a = aggregate(&p).unwrap();
        for st in 0..a.sample_types.len() {
            let flat_sum: i64 = (0..a.functions.len()).map(|f| a.flat(f, st)).sum();
            prop_assert_eq!(flat_sum, a.totals[st]);
            // With non-negative values cum >= flat; with negative ones the relation is on
            // absolute contributions, so compare the samples' positive parts separately.
            if p.sample.iter().all(|s| s.value[st] >= 0) {
                for f in 0..a.functions.len() {
                    prop_assert!(a.cum(f, st) >= a.flat(f, st));
                    prop_assert!(a.cum(f, st) <= a.totals[st]);
                }
            }
        }
    }

    #[test]
    fn gzipped_and_raw_decode_the_same(p in arb_profile()) {
        let raw = p.encode_to_vec();
        let from_raw = read_profile(&raw, DecodeLimits::default()).unwrap();
        let from_gz = read_profile(&gzip(&raw), DecodeLimits::default()).unwrap();
        prop_assert_eq!(from_raw, from_gz);
    }

    #[test]
    fn self_comparison_is_all_zeros(p in arb_profile()) {
        use crate::compare::{compare_kind, CompareOptions};
        use crate::inputs::PodProfiles;
        let mut a = aggregate(&p).unwrap();
        a.kind = Some(ProfileKind::Cpu);
        let pods = vec![PodProfiles { pod: "p".into(), windows: vec![a] }];
        let c = compare_kind(ProfileKind::Cpu, &pods, &pods, &CompareOptions::default()).unwrap();
        for s in &c.sample_types {
            prop_assert_eq!(s.total.change_per_pod(), 0.0);
            for f in &s.functions {
                prop_assert_eq!(f.flat.change_per_pod(), 0.0);
                prop_assert_eq!(f.cum.change_per_pod(), 0.0);
                if let Some(e) = f.flat.estimate { prop_assert!((e.ratio - 1.0).abs() < 1e-9); }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_profile(&bytes, DecodeLimits::default());
        let _ = read_profile(&gzip(&bytes), DecodeLimits::default());
    }
}

fn cpu_profile_with_stack(stacks: &[(&[u64], i64)], lines: &[&[u64]]) -> Profile {
    let mut p = Profile {
        string_table: vec![
            b"".to_vec(),
            b"samples".to_vec(),
            b"count".to_vec(),
            b"a".to_vec(),
            b"b".to_vec(),
            b"c".to_vec(),
        ],
        ..Default::default()
    };
    p.sample_type = vec![ValueType { r#type: 1, unit: 2 }];
    p.function = (1..=3)
        .map(|i| Function {
            id: i,
            name: 2 + i as i64,
            ..Default::default()
        })
        .collect();
    p.location = lines
        .iter()
        .enumerate()
        .map(|(i, l)| Location {
            id: i as u64 + 1,
            line: l
                .iter()
                .map(|&f| Line {
                    function_id: f,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    p.sample = stacks
        .iter()
        .map(|(locs, v)| Sample {
            location_id: locs.to_vec(),
            value: vec![*v],
            label: vec![],
        })
        .collect();
    p
}

fn values(a: &FunctionProfile, name: &str) -> (i64, i64) {
    let i = a.functions.iter().position(|n| n == name).unwrap();
    (a.flat(i, 0), a.cum(i, 0))
}

#[test]
fn inlined_frames_are_innermost_first_and_recursion_counts_once() {
    // Location 1 holds c inlined into b (lines innermost first); location 2 is a, which
    // recursively appears twice on the stack.
    let p = cpu_profile_with_stack(&[(&[1, 2, 2], 10), (&[2], 5)], &[&[3, 2], &[1]]);
    let a = aggregate(&p).unwrap();
    assert_eq!(values(&a, "c"), (10, 10));
    assert_eq!(values(&a, "b"), (0, 10));
    assert_eq!(values(&a, "a"), (5, 15));
    assert_eq!(a.totals, vec![15]);
}

#[test]
fn bad_references_are_errors_not_panics() {
    let mut p = cpu_profile_with_stack(&[(&[9], 1)], &[&[1]]);
    assert!(matches!(
        aggregate(&p),
        Err(ProfileError::UnknownLocation { location: 9, .. })
    ));
    p = cpu_profile_with_stack(&[(&[1], 1)], &[&[7]]);
    assert!(matches!(
        aggregate(&p),
        Err(ProfileError::UnknownFunction { function: 7, .. })
    ));
    p = cpu_profile_with_stack(&[(&[1], 1)], &[&[1]]);
    p.function[0].name = 99;
    assert!(matches!(
        aggregate(&p),
        Err(ProfileError::StringIndex { index: 99, .. })
    ));
    p = cpu_profile_with_stack(&[(&[1], i64::MAX), (&[1], 1)], &[&[1]]);
    assert!(matches!(aggregate(&p), Err(ProfileError::Overflow { .. })));
    p = cpu_profile_with_stack(&[(&[1], 1)], &[&[1]]);
    p.sample[0].value.push(3);
    assert!(matches!(
        aggregate(&p),
        Err(ProfileError::ValueCount {
            got: 2,
            expected: 1,
            ..
        })
    ));
}

#[test]
fn address_only_frames_are_named_by_mapping_and_offset() {
    let mut p = cpu_profile_with_stack(&[(&[1], 4)], &[&[]]);
    p.string_table.push(b"/usr/lib/libc.so.6".to_vec());
    p.mapping = vec![Mapping {
        id: 1,
        memory_start: 0x7000,
        memory_limit: 0x9000,
        file_offset: 0x100,
        filename: p.string_table.len() as i64 - 1,
        ..Default::default()
    }];
    p.location[0].mapping_id = 1;
    p.location[0].address = 0x7010;
    let a = aggregate(&p).unwrap();
    assert_eq!(values(&a, "libc.so.6+0x110"), (4, 4));
    p.location[0].mapping_id = 0;
    let a = aggregate(&p).unwrap();
    assert_eq!(values(&a, "0x7010"), (4, 4));
}

#[test]
fn non_utf8_names_decode_lossily() {
    let mut p = cpu_profile_with_stack(&[(&[1], 1)], &[&[1]]);
    p.string_table[3] = vec![b'f', 0xff, b'g'];
    let a = aggregate(&p).unwrap();
    assert!(a.functions.iter().any(|n| n == "f\u{fffd}g"));
}

#[test]
fn hostile_bytes_give_clear_errors() {
    let limits = DecodeLimits::default();
    assert!(matches!(
        read_profile(b"", limits),
        Err(ProfileError::Empty)
    ));
    let html = b"<!DOCTYPE html><html><body>404 page not found</body></html>";
    assert!(matches!(
        read_profile(html, limits),
        Err(ProfileError::Text { .. })
    ));
    assert!(matches!(
        read_profile(&gzip(html), limits),
        Err(ProfileError::Text { .. })
    ));
    let good = gzip(&cpu_profile_with_stack(&[(&[1], 1)], &[&[1]]).encode_to_vec());
    assert!(matches!(
        read_profile(&good[..good.len() / 2], limits),
        Err(ProfileError::Gzip(_))
    ));
    // A gzip bomb: 64 MiB of zeros compress to ~64 KiB; with a 1 MiB bound it must stop early.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let small = DecodeLimits {
        max_decompressed_bytes: 1 << 20,
    };
    assert!(matches!(
        read_profile(&bomb, small),
        Err(ProfileError::TooLarge { .. })
    ));
}
