//! Per-function flat and cum values equal what `go tool pprof -top` reports on the same file.

use std::path::Path;
use std::time::Duration;

use profile_gate::profile::{
    read_profile, read_profile_view, DecodeOptions, FunctionProfile, LabelView,
};

use crate::support::{exclusive_cpu, fixtures, pprof_top_with, repo, ExampleService};

/// Decoding as `go tool pprof` does: every sample, the gate's footprint included.
fn every_sample() -> DecodeOptions {
    DecodeOptions {
        footprint: profile_gate::profile::Footprint::Keep,
        ..DecodeOptions::default()
    }
}

fn is_address_name(name: &str) -> bool {
    name.starts_with("0x") || name.contains("+0x")
}

/// Checks every sample type of `file` against pprof; returns how many rows were compared.
fn assert_matches_pprof(file: &Path) -> usize {
    let bytes = std::fs::read(file).unwrap();
    let ours: FunctionProfile =
        read_profile(&bytes, every_sample()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_profile_matches(file, &ours, &[])
}

/// Checks `ours` (read from `file`) against `go tool pprof -top` run with `pprof_args`.
fn assert_profile_matches(file: &Path, ours: &FunctionProfile, pprof_args: &[&str]) -> usize {
    let mut compared = 0;
    for (st, t) in ours.sample_types.iter().enumerate() {
        let theirs = pprof_top_with(file, &t.name, pprof_args);
        let index: std::collections::HashMap<&str, usize> = ours
            .functions
            .iter()
            .enumerate()
            .map(|(i, n)| (&**n, i))
            .collect();
        let mut unknown_flat = 0.0;
        for (name, row) in &theirs {
            if name == "<unknown>" || name.starts_with('[') {
                unknown_flat += row.flat;
                continue;
            }
            let &f = index
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{}: pprof shows {name:?}, we do not", file.display()));
            let (flat, cum) = (ours.flat(f, st) as f64, ours.cum(f, st) as f64);
            let tol = row.rounding + 1e-9 * row.cum.abs();
            assert!(
                (flat - row.flat).abs() <= tol && (cum - row.cum).abs() <= tol,
                "{} {}: {name}: ours flat {flat} cum {cum}, pprof flat {} cum {} (±{tol})",
                file.display(),
                t.name,
                row.flat,
                row.cum
            );
            compared += 1;
        }
        // Frames without symbols: pprof lumps them as <unknown>, we keep them apart by address.
        let ours_address_flat: f64 = ours
            .functions
            .iter()
            .enumerate()
            .filter(|(_, n)| is_address_name(n))
            .map(|(i, _)| ours.flat(i, st) as f64)
            .sum();
        let tol = theirs.values().map(|r| r.rounding).fold(0.0, f64::max) * 2.0 + 1e-9;
        assert!(
            (ours_address_flat - unknown_flat).abs() <= tol,
            "{}: address-only flat {ours_address_flat} vs pprof's <unknown> {unknown_flat}",
            file.display()
        );
        // Every function we report with a value is one pprof shows too.
        for (i, n) in ours.functions.iter().enumerate() {
            if (ours.flat(i, st) != 0 || ours.cum(i, st) != 0) && !is_address_name(n) {
                assert!(
                    theirs.contains_key(&**n),
                    "{}: we show {n:?}, pprof does not",
                    file.display()
                );
            }
        }
    }
    compared
}

#[test]
fn shared_fixtures_match_go_tool_pprof() {
    let mut compared = 0;
    for name in [
        "sample.cpu.pb.gz",
        "large.cpu.pb.gz",
        "go.nomappings.crash.pb.gz",
    ] {
        compared += assert_matches_pprof(&fixtures().join(name));
    }
    assert!(compared > 1000, "only {compared} rows compared");
}

#[test]
fn live_profiles_from_the_example_service_match_go_tool_pprof() {
    let _cpu = exclusive_cpu();
    let service = ExampleService::start(&["-lock-contention", "-load", "0.3"]);
    let dir = tempfile::tempdir().unwrap();
    let long = Duration::from_secs(30);
    let captures = [
        ("cpu", "/debug/pprof/profile?seconds=2"),
        ("allocs", "/debug/pprof/allocs?seconds=2"),
        ("mutex", "/debug/pprof/mutex?seconds=2"),
        ("heap", "/debug/pprof/heap"),
        ("goroutine", "/debug/pprof/goroutine"),
    ];
    for (kind, path) in captures {
        let bytes = service.get(path, long);
        let file = dir.path().join(format!("{kind}-1.pb.gz"));
        std::fs::write(&file, bytes).unwrap();
        let rows = assert_matches_pprof(&file);
        assert!(rows > 0, "{kind}: nothing compared");
    }
}

/// `--tag` / `--tag-ignore` keep exactly the samples `-tagfocus` / `-tagignore` keep, and the
/// split by a label partitions the profile into the per-value focused profiles.
#[test]
fn label_filters_match_tagfocus_and_tagignore() {
    let mut compared = 0;
    // Go records labels in CPU and goroutine profiles (not in memory profiles).
    for kind in ["cpu", "goroutine"] {
        let file = repo().join(format!("examples/profiles/canary/pod-1/{kind}-1.pb.gz"));
        let bytes = std::fs::read(&file).unwrap();
        for (focus, ignore) in [
            (Some("route=/checkout"), None),
            (Some("route=^/search$,^/browse$"), None),
            (None, Some("route=/check")),
        ] {
            let view = LabelView {
                focus: focus.iter().map(|f| f.parse().unwrap()).collect(),
                ignore: ignore.iter().map(|f| f.parse().unwrap()).collect(),
                by: None,
            };
            let mut groups = read_profile_view(&bytes, every_sample(), &view).unwrap();
            assert_eq!(groups.len(), 1);
            let (_, ours) = groups.pop().unwrap();
            assert!(
                ours.totals.iter().any(|&t| t > 0),
                "{kind} {focus:?}: nothing kept"
            );
            let args: Vec<String> = focus
                .map(|f| format!("-tagfocus={f}"))
                .into_iter()
                .chain(ignore.map(|f| format!("-tagignore={f}")))
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            compared += assert_profile_matches(&file, &ours, &args);
        }
        // One profile per route; each equals focusing on that route exactly.
        let split = LabelView {
            by: Some("route".into()),
            ..LabelView::default()
        };
        let groups = read_profile_view(&bytes, every_sample(), &split).unwrap();
        let mut routes: Vec<&str> = groups.iter().map(|(v, _)| v.as_deref().unwrap()).collect();
        routes.sort_unstable();
        assert!(
            routes.contains(&"/checkout") && routes.contains(&"/search"),
            "{routes:?}"
        );
        for (value, ours) in &groups {
            let focus = format!("-tagfocus=route=^{}$", value.as_deref().unwrap());
            compared += assert_profile_matches(&file, ours, &[focus.as_str()]);
        }
    }
    eprintln!("label filters: {compared} rows equal to go tool pprof -tagfocus/-tagignore");
    assert!(compared > 100, "{compared}");
}
