//! Property and edge-case tests of decoding and aggregation.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
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
                // Go's delta profiles (allocs?seconds=N) hold negative in-use values.
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
    // A fixed seed: the same cases on every run, so a failure is a bug, never a fluke.
    #![proptest_config(ProptestConfig { rng_seed: RngSeed::Fixed(7), ..ProptestConfig::default() })]

    #[test]
    fn flat_sums_to_total_and_cum_is_between_flat_and_total(p in arb_profile()) {
        let a = aggregate(&p).unwrap();
        prop_assert_eq!(a.sample_count, p.sample.len());
        for st in 0..a.sample_types.len() {
            let flat_sum: i64 = (0..a.functions.len()).map(|f| a.flat(f, st)).sum();
            prop_assert_eq!(flat_sum, a.totals[st]);
            let total: i64 = p.sample.iter().map(|s| s.value[st]).sum();
            prop_assert_eq!(total, a.totals[st]);
            // With negative values (delta profiles) a sample can lower a cum below the flat.
            if p.sample.iter().all(|s| s.value[st] >= 0) {
                for f in 0..a.functions.len() {
                    prop_assert!(a.cum(f, st) >= a.flat(f, st));
                    prop_assert!(a.cum(f, st) <= a.totals[st]);
                }
            }
        }
    }

    #[test]
    fn cum_is_the_sum_of_the_samples_a_function_is_on(p in arb_profile()) {
        // The reference: for each sample, the distinct function names on its stack.
        let name = |fid: u64| {
            let f = p.function.iter().find(|f| f.id == fid).unwrap();
            String::from_utf8_lossy(&p.string_table[f.name as usize]).into_owned()
        };
        let a = aggregate(&p).unwrap();
        for (i, fname) in a.functions.iter().enumerate() {
            for st in 0..a.sample_types.len() {
                let expected: i64 = p
                    .sample
                    .iter()
                    .filter(|s| {
                        s.location_id.iter().any(|&l| {
                            let loc = &p.location[l as usize - 1];
                            if loc.line.is_empty() {
                                **fname == *format!("app+0x{:x}", loc.address - 0x1000)
                            } else {
                                loc.line.iter().any(|line| *name(line.function_id) == **fname)
                            }
                        })
                    })
                    .map(|s| s.value[st])
                    .sum();
                prop_assert_eq!(a.cum(i, st), expected, "{}", fname);
            }
        }
    }

    #[test]
    fn encode_decode_round_trips_and_sample_order_does_not_matter(p in arb_profile()) {
        let bytes = p.encode_to_vec();
        let back = decode(&gzip(&bytes), DecodeOptions::default()).unwrap();
        prop_assert_eq!(&back, &p);
        let a = aggregate(&p).unwrap();
        let mut reversed = p.clone();
        reversed.sample.reverse();
        let r = aggregate(&reversed).unwrap();
        prop_assert_eq!(&a.functions, &r.functions);
        prop_assert_eq!(&a.totals, &r.totals);
        for f in 0..a.functions.len() {
            for st in 0..a.sample_types.len() {
                prop_assert_eq!(a.flat(f, st), r.flat(f, st));
                prop_assert_eq!(a.cum(f, st), r.cum(f, st));
            }
        }
    }

    #[test]
    fn doubling_every_sample_doubles_every_value(p in arb_profile()) {
        let a = aggregate(&p).unwrap();
        let mut twice = p.clone();
        twice.sample.extend(p.sample.iter().cloned());
        let t = aggregate(&twice).unwrap();
        prop_assert_eq!(t.sample_count, 2 * a.sample_count);
        for st in 0..a.sample_types.len() {
            prop_assert_eq!(t.totals[st], 2 * a.totals[st]);
            for f in 0..a.functions.len() {
                prop_assert_eq!(t.flat(f, st), 2 * a.flat(f, st));
                prop_assert_eq!(t.cum(f, st), 2 * a.cum(f, st));
            }
        }
    }

    #[test]
    fn truncated_or_corrupted_profiles_never_panic(p in arb_profile(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let bytes = p.encode_to_vec();
        prop_assume!(!bytes.is_empty());
        let prefix = &bytes[..cut.index(bytes.len())];
        let _ = read_profile(prefix, DecodeOptions::default());
        let mut flipped = bytes.clone();
        let at = flip.0.index(flipped.len());
        flipped[at] ^= flip.1 | 1;
        let _ = read_profile(&flipped, DecodeOptions::default());
        let _ = read_profile(&gzip(&flipped), DecodeOptions::default());
    }

    #[test]
    fn gzipped_and_raw_decode_the_same(p in arb_profile()) {
        let raw = p.encode_to_vec();
        let from_raw = read_profile(&raw, DecodeOptions::default()).unwrap();
        let from_gz = read_profile(&gzip(&raw), DecodeOptions::default()).unwrap();
        prop_assert_eq!(from_raw, from_gz);
    }

    #[test]
    fn self_comparison_is_all_zeros(p in arb_profile()) {
        use crate::compare::{compare_kind, CompareOptions};
        use crate::side::PodProfiles;
        let mut a = aggregate(&p).unwrap();
        a.kind = Some(ProfileKind::Cpu);
        let pods = vec![PodProfiles { pod: "p".into(), windows: vec![a] }];
        let c = compare_kind(ProfileKind::Cpu, &pods, &pods, &CompareOptions::default()).unwrap();
        for s in &c.sample_types {
            prop_assert_eq!(s.total.change_per_pod(), 0.0);
            for f in &s.functions {
                prop_assert_eq!(f.flat.change_per_pod(), 0.0);
                prop_assert_eq!(f.cum.change_per_pod(), 0.0);
                if let Some(e) = f.flat.estimate.as_deref() { prop_assert!((e.ratio - 1.0).abs() < 1e-9); }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_profile(&bytes, DecodeOptions::default());
        let _ = read_profile(&gzip(&bytes), DecodeOptions::default());
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
    let i = a.functions.iter().position(|n| &**n == name).unwrap();
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
    assert!(a.functions.iter().any(|n| &**n == "f\u{fffd}g"));
}

#[test]
fn hostile_bytes_give_clear_errors() {
    let limits = DecodeOptions::default();
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
    let small = DecodeOptions {
        max_decompressed_bytes: 1 << 20,
        ..DecodeOptions::default()
    };
    assert!(matches!(
        read_profile(&bomb, small),
        Err(ProfileError::TooLarge { .. })
    ));
}

#[test]
fn tables_beyond_the_cell_limit_are_refused_before_allocating() {
    // 5,000 sample types and 20,000 functions, no samples: a few hundred kilobytes asking for
    // 10^8 cells (1.6 GB of tables).
    let mut p = Profile {
        string_table: vec![b"".to_vec(), b"t".to_vec(), b"u".to_vec(), b"f".to_vec()],
        ..Default::default()
    };
    p.sample_type = vec![ValueType { r#type: 1, unit: 2 }; 5_000];
    for i in 0..20_000u64 {
        p.string_table.push(format!("f{i}").into_bytes());
        p.function.push(Function {
            id: i + 1,
            name: p.string_table.len() as i64 - 1,
            ..Default::default()
        });
    }
    match aggregate(&p) {
        Err(e @ ProfileError::TooManyCells { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("20000 functions x 5000 sample types"),
                "{text}"
            );
            assert!(text.contains(&MAX_TABLE_CELLS.to_string()), "{text}");
        }
        other => panic!(
            "expected TooManyCells, got {:?}",
            other.map(|a| a.totals.len())
        ),
    }
}

#[test]
fn long_names_are_shortened_for_display_only() {
    assert_eq!(display_name("main.main"), "main.main");
    let exact = "x".repeat(MAX_DISPLAY_NAME_CHARS);
    assert_eq!(display_name(&exact), exact);
    let long = format!("main.{}.End", "é".repeat(100_000));
    let shown = display_name(&long);
    assert!(
        shown.chars().count() < MAX_DISPLAY_NAME_CHARS + 30,
        "{}",
        shown.len()
    );
    assert!(
        shown.starts_with("main.éé") && shown.ends_with("éé.End"),
        "{shown}"
    );
    assert!(shown.contains("…(100009 chars)…"), "{shown}");
}

/// A goroutine profile of four stacks (leaf first): two of the service, one serving a pprof
/// request, one in `runtime/pprof.Do` (the service's labelled work).
fn profile_with_a_pprof_handler() -> Vec<u8> {
    let names = [
        "",
        "goroutine",
        "count",
        "runtime.gopark",
        "main.worker",
        "net/http/pprof.Index",
        "runtime/pprof.Do",
        "main.handle",
    ];
    let function = (3..names.len() as u64)
        .map(|i| Function {
            id: i,
            name: i as i64,
            ..Default::default()
        })
        .collect();
    let location = (3..names.len() as u64)
        .map(|i| Location {
            id: i,
            line: vec![Line {
                function_id: i,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        })
        .collect();
    let sample = |stack: &[u64], n: i64| Sample {
        location_id: stack.to_vec(),
        value: vec![n],
        label: vec![],
    };
    Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }],
        sample: vec![
            sample(&[3, 4], 5),
            sample(&[3, 5], 4),
            sample(&[3, 7, 6, 4], 2),
        ],
        function,
        location,
        string_table: names.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn the_gates_own_footprint_is_removed_and_counted_unless_kept() {
    let raw = profile_with_a_pprof_handler();
    let removed = read_profile(&raw, DecodeOptions::default()).unwrap();
    assert_eq!(removed.totals, vec![7]);
    assert_eq!(removed.footprint, vec![4]);
    assert!(removed
        .functions
        .iter()
        .enumerate()
        .all(|(i, n)| &**n != "net/http/pprof.Index" || removed.cum(i, 0) == 0));
    // pprof.Do runs the service's code: kept.
    let i = removed
        .functions
        .iter()
        .position(|n| &**n == "runtime/pprof.Do")
        .unwrap();
    assert_eq!(removed.cum(i, 0), 2);

    let kept = read_profile(
        &raw,
        DecodeOptions {
            footprint: Footprint::Keep,
            ..DecodeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(kept.totals, vec![11]);
    assert_eq!(kept.footprint, vec![0]);
}

#[test]
fn leaf_distance_says_how_deep_a_function_sits() {
    let p = read_profile(&profile_with_a_pprof_handler(), DecodeOptions::default()).unwrap();
    let at = |name: &str| {
        let i = p.functions.iter().position(|n| &**n == name).unwrap();
        p.leaf_distance[i]
    };
    // Leaf in both kept samples; main.worker is one above it in one sample, three in the other.
    assert_eq!(at("runtime.gopark"), (0, 2));
    assert_eq!(at("main.worker"), (4, 2));
    assert_eq!(at("main.handle"), (1, 1));
}
