//! The reports people read: snapshots of the Markdown and text of a pass, a fail with
//! regressions, an inconclusive run, a hostile function name and a report over GitHub's size
//! limit, all built from small synthetic profiles so they never change by themselves.

use profile_gate::compare;
use profile_gate::policy::{self, Outcome, Policy};
use profile_gate::profile::{FunctionProfile, ProfileKind, SampleType};
use profile_gate::report::{self, RenderOptions, Report};
use profile_gate::side::PodProfiles;

const POLICY: &str = r#"
version: 1
defaults: { fdr: 5%, min_share: 0.5%, min_abs_change: 0.1%, inconclusive: warn }
rules:
  - { name: cpu-functions, profile: cpu, metric: flat, ignore: ["runtime.*"], max_increase: 20%, severity: fail }
  - { name: cpu-cumulative, profile: cpu, metric: cum, ignore: ["runtime.*"], max_increase: 20%, severity: fail }
  - { name: cpu-total, profile: cpu, metric: total, max_increase: 50%, severity: fail }
  - { name: new-cpu-functions, profile: cpu, metric: new, max_new_share: 5%, severity: warn }
"#;

/// A CPU profile window: `(function, own samples)` leaves under main.main -> main.serve.
fn cpu_window(leaves: &[(String, i64)]) -> FunctionProfile {
    let period = 10_000_000;
    let mut names = vec!["main.main".to_owned(), "main.serve".to_owned()];
    let total: i64 = leaves.iter().map(|(_, n)| n).sum();
    let mut flat = vec![vec![0, 0], vec![0, 0]];
    let mut cum = vec![vec![total, total * period], vec![total, total * period]];
    for (name, n) in leaves {
        names.push(name.clone());
        flat.push(vec![*n, n * period]);
        cum.push(vec![*n, n * period]);
    }
    FunctionProfile::from_values(
        ProfileKind::Cpu,
        vec![
            SampleType {
                name: "samples".into(),
                unit: "count".into(),
            },
            SampleType {
                name: "cpu".into(),
                unit: "nanoseconds".into(),
            },
        ],
        names,
        flat,
        cum,
        period,
        10_000_000_000,
    )
    .expect("shapes agree")
}

/// Three pods of two windows each; each pod's counts shifted a little, deterministically.
fn side(prefix: &str, leaves: &[(&str, i64)]) -> Vec<PodProfiles> {
    (0..3)
        .map(|pod| PodProfiles {
            pod: format!("{prefix}-{pod}"),
            windows: (0..2)
                .map(|w| {
                    let wiggle = [0, 3, -2, 1, -1, 2][pod * 2 + w];
                    cpu_window(
                        &leaves
                            .iter()
                            .map(|(n, c)| (n.to_string(), (c + c * wiggle / 100).max(0)))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
        })
        .collect()
}

fn build(baseline: &[(&str, i64)], candidate: &[(&str, i64)]) -> Report {
    let policy = Policy::from_yaml_str(POLICY, "test-policy.yaml").unwrap();
    let options = policy.compare_options();
    let comparison = compare::compare_kind(
        ProfileKind::Cpu,
        &side("stable", baseline),
        &side("canary", candidate),
        &options,
    )
    .unwrap();
    let comparisons = vec![comparison];
    let verdict = policy::evaluate(&policy, &[(options.normalize, comparisons.clone())]);
    Report {
        schema_version: report::SCHEMA_VERSION,
        tool_version: "test".into(),
        baseline: "profiles/stable".into(),
        candidate: "profiles/canary".into(),
        verdict,
        comparisons,
        unmatched: vec![],
        growth: vec![],
        capture_facts: Some(
            "2 windows of 10s (cpu); baseline 3 pods, candidate 3 pods; window start skew at most 1.2 ms"
                .into(),
        ),
        capture: None,
        warnings: vec![],
        labels: None,
        label_mix: vec![],
        partial: None,
    }
}

const BASE: &[(&str, i64)] = &[
    ("main.hot", 3000),
    ("main.parse", 2000),
    ("crypto/sha256.block", 1500),
    ("runtime.mallocgc", 1000),
    ("main.(*cache).get", 800),
    ("main.small", 40),
];

fn pass() -> Report {
    build(BASE, BASE)
}

fn fail() -> Report {
    let mut cand = BASE.to_vec();
    cand[0].1 = 6000; // main.hot doubles
    cand.push(("main.newThing", 600));
    cand.retain(|(n, _)| *n != "main.(*cache).get");
    build(BASE, &cand)
}

fn inconclusive() -> Report {
    // Few samples: main.small grows by half, but 40 samples cannot tell +50% from +20%.
    let base: Vec<(&str, i64)> = vec![("main.hot", 300), ("main.parse", 200), ("main.small", 12)];
    let cand: Vec<(&str, i64)> = vec![("main.hot", 300), ("main.parse", 200), ("main.small", 18)];
    build(&base, &cand)
}

const HOSTILE: &str =
    "main.(*Evil).x|y</td><script>alert('x')</script>`code`**bold**[link](javascript:alert(1))\n# heading _u_ ~s~ &amp; \\";

fn hostile() -> Report {
    let base: Vec<(&str, i64)> = vec![("main.hot", 3000), (HOSTILE, 1000)];
    let cand: Vec<(&str, i64)> = vec![("main.hot", 3000), (HOSTILE, 3000)];
    build(&base, &cand)
}

fn oversize() -> Report {
    let names: Vec<String> = (0..150)
        .map(|i| {
            format!(
                "github.com/example/very/long/module/path/internal/generated/handlers/v2/pkg{i:03}.(*SomeRatherLongTypeNameForAHandler).SomeEvenLongerMethodNameThatKeepsGoing{i}"
            )
        })
        .collect();
    let base: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 500)).collect();
    let mut cand = base.clone();
    for (i, c) in cand.iter_mut().enumerate() {
        if i % 2 == 0 {
            c.1 = 1500;
        }
    }
    build(&base, &cand)
}

fn opts() -> RenderOptions {
    RenderOptions::default()
}

#[test]
fn outcomes_are_what_the_snapshots_claim() {
    assert_eq!(pass().verdict.outcome, Outcome::Pass);
    assert_eq!(fail().verdict.outcome, Outcome::Fail);
    assert_eq!(inconclusive().verdict.outcome, Outcome::Inconclusive);
    assert_eq!(hostile().verdict.outcome, Outcome::Fail);
    assert_eq!(oversize().verdict.outcome, Outcome::Fail);
}

#[test]
fn markdown_of_a_pass() {
    insta::assert_snapshot!(report::render_markdown(&pass(), &opts()));
}

#[test]
fn text_of_a_pass() {
    insta::assert_snapshot!(report::render_text(&pass(), &opts()));
}

#[test]
fn markdown_of_a_fail_with_regressions() {
    let md = report::render_markdown(&fail(), &opts());
    let regressions = md.find("### Regressions").expect("a regressions table");
    assert!(md.find("| cpu-functions | fail | **broken**").unwrap() < regressions);
    // The deciding rules come first: a broken warn rule before a held fail rule.
    assert!(
        md.find("| new-cpu-functions | warn | **broken**").unwrap()
            < md.find("| cpu-total | fail | held").unwrap()
    );
    insta::assert_snapshot!(md);
}

#[test]
fn text_of_a_fail_with_regressions() {
    insta::assert_snapshot!(report::render_text(&fail(), &opts()));
}

#[test]
fn markdown_of_an_inconclusive_run() {
    let md = report::render_markdown(&inconclusive(), &opts());
    assert!(md.contains("detectable from"), "{md}");
    insta::assert_snapshot!(md);
}

#[test]
fn text_of_an_inconclusive_run() {
    insta::assert_snapshot!(report::render_text(&inconclusive(), &opts()));
}

#[test]
fn markdown_with_a_hostile_function_name() {
    let md = report::render_markdown(&hostile(), &opts());
    assert!(!md.contains("<script"), "HTML got through: {md}");
    assert!(!md.contains("</td>"), "HTML got through: {md}");
    assert!(
        !md.contains("\n# heading"),
        "the name broke out of its line"
    );
    assert!(
        !md.replace("\\](", "").contains("](javascript"),
        "a link formed"
    );
    // Every table row has the cell count of its header.
    for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
        let mut lines = table.lines();
        let cells = |l: &str| l.matches('|').count();
        let header = cells(lines.next().unwrap());
        for l in lines {
            assert_eq!(cells(l), header, "a row broke its table: {l}");
        }
    }
    insta::assert_snapshot!(md);
}

#[test]
fn text_with_a_hostile_function_name() {
    let text = report::render_text(&hostile(), &opts());
    assert!(!text.contains('\u{1b}'));
    insta::assert_snapshot!(text);
}

#[test]
fn a_report_over_the_size_limit_is_cut_with_a_note() {
    let r = oversize();
    let options = RenderOptions {
        top: 400,
        ..RenderOptions::default()
    };
    let full = report::render_markdown(&r, &options);
    assert!(full.chars().count() > 65_536, "the fixture must be too big");
    let fitted = report::render_markdown_within(&r, &options, 65_536);
    assert!(fitted.chars().count() <= 65_536);
    assert!(fitted.contains("Tables cut to"), "a note says so");
    assert!(
        fitted.starts_with("## ❌ Profile Gate: fail"),
        "the verdict stays on top"
    );
    // Small limit: the same path, a snapshot short enough to read.
    let small = report::render_markdown_within(&r, &RenderOptions::default(), 6_000);
    assert!(small.chars().count() <= 6_000);
    insta::assert_snapshot!(small);
}

#[test]
fn text_of_a_report_over_the_size_limit_keeps_to_the_top_rows() {
    let text = report::render_text(
        &oversize(),
        &RenderOptions {
            top: 5,
            ..RenderOptions::default()
        },
    );
    insta::assert_snapshot!(text);
}

#[test]
fn one_enormous_line_is_still_cut() {
    let line = "x".repeat(100_000);
    let cut = report::cut_to_limit(&line, 65_536);
    assert!(cut.chars().count() <= 65_536);
    assert!(cut.contains("cut here"));
}

#[test]
fn the_differential_flame_graph_of_the_example_is_valid_svg_naming_the_planted_function() {
    let out = tempfile::tempdir().unwrap();
    let examples = crate::support::repo().join("examples/profiles");
    crate::support::gate()
        .arg("diff")
        .arg(examples.join("stable"))
        .arg(examples.join("canary"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(1);
    for kind in ["cpu", "heap", "allocs", "goroutine"] {
        assert!(
            out.path().join(format!("flame-{kind}.svg")).is_file(),
            "flame-{kind}.svg"
        );
    }
    let svg = std::fs::read_to_string(out.path().join("flame-cpu.svg")).unwrap();
    // inferno writes an SVG 1.1 doctype; the document must still parse as XML.
    let doc = roxmltree::Document::parse_with_options(
        &svg,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("valid XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("main.computeChecksum ")),
        "the planted function has a frame"
    );
    // Its leaf grew: the frame is drawn red (inferno: rgb(255, g, b) with g = b < 255).
    let grew = doc.descendants().any(|n| {
        n.has_tag_name("g")
            && n.children().any(|t| {
                t.has_tag_name("title")
                    && t.text()
                        .is_some_and(|s| s.starts_with("crypto/sha256.block ") && s.contains("; +"))
            })
            && n.children().any(|r| {
                r.has_tag_name("rect")
                    && r.attribute("fill")
                        .is_some_and(|f| f.starts_with("rgb(255,"))
            })
    });
    assert!(grew, "the grown leaf is red");
}

/// `gate diff --out` on the example A/B, for `gate report` to read back.
fn saved_example() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let examples = crate::support::repo().join("examples/profiles");
    crate::support::gate()
        .arg("diff")
        .arg(examples.join("stable"))
        .arg(examples.join("canary"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(1);
    out
}

#[test]
fn a_saved_report_re_renders_without_loss() {
    let out = saved_example();
    let json_path = out.path().join("report.json");
    let saved = std::fs::read_to_string(&json_path).unwrap();
    let again = crate::support::gate()
        .args(["report", "--format", "json"])
        .arg(&json_path)
        .assert()
        .code(0);
    assert_eq!(
        String::from_utf8_lossy(&again.get_output().stdout),
        saved,
        "JSON survives a round trip byte for byte"
    );
    // Markdown: identical down to the per-profile details (report.json keeps the tested
    // functions only, so the collapsed tables of untested ones are shorter).
    let md = crate::support::gate()
        .args(["report", "--format", "markdown"])
        .arg(&json_path)
        .assert()
        .code(0);
    let md = String::from_utf8_lossy(&md.get_output().stdout).into_owned();
    let original = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    let head = |s: &str| s[..s.find("<details>").unwrap_or(s.len())].to_owned();
    assert_eq!(head(&md), head(&original));
    assert!(md.contains("main.computeChecksum"));
    let text = crate::support::gate()
        .arg("report")
        .arg(&json_path)
        .assert()
        .code(0);
    assert!(String::from_utf8_lossy(&text.get_output().stdout).contains("Profile Gate: FAIL"));
}

#[test]
fn a_newer_schema_or_a_non_report_is_refused_with_exit_2() {
    let out = saved_example();
    let saved = std::fs::read_to_string(out.path().join("report.json")).unwrap();
    let newer = out.path().join("newer.json");
    std::fs::write(
        &newer,
        saved.replacen("\"schema_version\": 1,", "\"schema_version\": 99,", 1),
    )
    .unwrap();
    let r = crate::support::gate()
        .arg("report")
        .arg(&newer)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
    assert!(err.contains("schema_version 99 is newer"), "{err}");
    assert!(err.contains("newer.json"), "names the file: {err}");

    let junk = out.path().join("junk.json");
    std::fs::write(&junk, "<html>not json</html>").unwrap();
    let r = crate::support::gate()
        .arg("report")
        .arg(&junk)
        .assert()
        .code(2);
    assert!(
        String::from_utf8_lossy(&r.get_output().stderr).contains("not a Profile Gate report.json")
    );
    crate::support::gate()
        .arg("report")
        .arg(out.path().join("missing.json"))
        .assert()
        .code(2);
}

#[test]
fn a_template_of_ones_own_replaces_the_shipped_one() {
    let out = tempfile::tempdir().unwrap();
    let template = out.path().join("mine.md.j2");
    std::fs::write(
        &template,
        "# {{ view.icon }} {{ view.outcome }}\n{% for r in report.verdict.rules if r.status == \"broken\" %}\n- {{ r.rule | md_escape }}\n{% endfor %}\n",
    )
    .unwrap();
    let text_template = out.path().join("mine.txt.j2");
    std::fs::write(&text_template, "verdict={{ view.outcome }}\n").unwrap();
    let examples = crate::support::repo().join("examples/profiles");
    let run = crate::support::gate()
        .arg("diff")
        .arg(examples.join("stable"))
        .arg(examples.join("canary"))
        .arg("--out")
        .arg(out.path())
        .arg("--template")
        .arg(&template)
        .arg("--text-template")
        .arg(&text_template)
        .assert()
        .code(1);
    assert_eq!(
        String::from_utf8_lossy(&run.get_output().stdout),
        "verdict=FAIL\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("report.md")).unwrap(),
        "# ❌ fail\n- cpu-functions\n- cpu-cumulative\n- cpu-total\n"
    );
    // gate report takes the same flags.
    let again = crate::support::gate()
        .args(["report", "--format", "markdown", "--template"])
        .arg(&template)
        .arg(out.path().join("report.json"))
        .assert()
        .code(0);
    assert_eq!(
        String::from_utf8_lossy(&again.get_output().stdout),
        "# ❌ fail\n- cpu-functions\n- cpu-cumulative\n- cpu-total\n"
    );
}

#[test]
fn a_broken_template_is_bad_input_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("broken.md.j2");
    std::fs::write(&template, "fine\n{{ view.no_such_field }}\n").unwrap();
    let r = crate::support::gate()
        .args(["diff", "--format", "markdown", "--template"])
        .arg(&template)
        .arg(crate::support::repo().join("examples/profiles/stable"))
        .arg(crate::support::repo().join("examples/profiles/stable"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&r.get_output().stderr).into_owned();
    assert!(err.contains("broken.md.j2"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("no_such_field"), "{err}");
}

#[test]
fn the_shipped_templates_render_every_snapshot_case() {
    // The snapshots above go through the shipped templates; here the views are rendered
    // through the explicit-template entry points as well, and must agree.
    for r in [pass(), fail(), inconclusive(), hostile()] {
        assert_eq!(
            report::render_markdown_with(&r, &opts(), report::MARKDOWN_TEMPLATE).unwrap(),
            report::render_markdown(&r, &opts())
        );
        assert_eq!(
            report::render_text_with(&r, &opts(), report::TEXT_TEMPLATE).unwrap(),
            report::render_text(&r, &opts())
        );
    }
}
