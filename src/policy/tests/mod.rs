//! The policy format: parsing, errors located, round trips, descriptions.

use std::path::{Path, PathBuf};

use super::*;
use crate::profile::ProfileKind;

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(policies_dir())
        .expect("policies/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_yaml_str(text, "p.yaml")
}

/// The error text, asserting it is a located error starting with `p.yaml:LINE:COL: `.
fn error_at(text: &str, line: u64, column: u64) -> (PolicyErrorKind, String) {
    let err = parse(text).expect_err("policy should be rejected");
    let shown = err.to_string();
    let prefix = format!("p.yaml:{line}:{column}: ");
    assert!(
        shown.starts_with(&prefix),
        "expected prefix {prefix:?}, got {shown:?}"
    );
    assert!(shown.contains("; expected "), "no expectation in {shown:?}");
    (err.kind().expect("located error"), shown)
}

const HEAD: &str = "version: 1\nrules:\n";

#[test]
fn builtin_default_parses() {
    let policy = Policy::builtin_default();
    assert_eq!(policy.version, 1);
    assert!(!policy.rules.is_empty());
    let from_disk = Policy::from_file(&policies_dir().join("default.yaml")).unwrap();
    assert_eq!(policy, from_disk);
}

#[test]
fn every_example_policy_parses_and_describes() {
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["default.yaml", "strict.yaml", "leak-watch.yaml"] {
        assert!(names.iter().any(|n| n == expected), "missing {expected}");
    }
    for file in files {
        let policy = Policy::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let described = policy.describe();
        assert_eq!(described.lines().count(), policy.rules.len(), "{described}");
    }
}

#[test]
fn example_policies_round_trip_through_canonical_yaml() {
    for file in example_files() {
        let policy = Policy::from_file(&file).unwrap();
        let yaml = policy.to_yaml();
        let again = Policy::from_yaml_str(&yaml, "canonical.yaml")
            .unwrap_or_else(|e| panic!("{}: {e}\n{yaml}", file.display()));
        assert_eq!(policy, again, "{}:\n{yaml}", file.display());
        // Canonical means stable: writing it again gives the same text.
        assert_eq!(yaml, again.to_yaml());
    }
}

#[test]
fn round_trip_keeps_overrides_odd_percentages_and_quoting() {
    let text = r#"
version: 1
defaults: { fdr: 0.07, min_share: 0.3%, min_abs_change: 0, normalize: total, inconclusive: pass }
rules:
  - name: "weird: name # with [chars]"
    profile: heap
    sample: inuse_objects
    metric: cum
    functions: ["main.(\\*Server).Handle", "main.Map[...]", "{a,b}.*", "yes", "1.5"]
    ignore: ["*_test"]
    max_increase: 150%
    direction: either
    severity: warn
    fdr: 1%
    inconclusive: fail
  - { name: shrink, profile: block, sample: contentions, metric: total, max_increase: 0.333, direction: decrease }
  - { name: fresh, profile: cpu, metric: new, max_new_share: 0.7% }
"#;
    let policy = parse(text).unwrap();
    assert_eq!(policy.rules[0].max_increase, Some(1.5));
    assert_eq!(policy.rules[0].settings.fdr, 0.01);
    assert_eq!(policy.rules[0].settings.normalize, Normalize::Total);
    assert_eq!(
        policy.rules[0].settings.inconclusive,
        InconclusiveAction::Fail
    );
    assert_eq!(policy.rules[1].settings, policy.defaults);
    let yaml = policy.to_yaml();
    assert_eq!(parse(&yaml).unwrap(), policy, "{yaml}");
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let text = format!(
        "{HEAD}  - &cpu {{ name: a, profile: cpu, metric: flat, max_increase: 20% }}\n  - {{ <<: *cpu, name: b, metric: cum }}\n"
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.rules[1].name, "b");
    assert_eq!(p.rules[1].metric, Metric::Cum);
    assert_eq!(p.rules[1].max_increase, Some(0.2));
}

#[test]
fn percent_and_fraction_are_the_same_value() {
    let rule = |v: &str| {
        let text =
            format!("{HEAD}  - {{ name: a, profile: cpu, metric: total, max_increase: {v} }}\n");
        parse(&text).unwrap().rules[0].max_increase.unwrap()
    };
    assert_eq!(rule("20%"), 0.2);
    assert_eq!(rule("20%"), rule("0.2"));
    assert_eq!(rule("0.5%"), 0.005);
    assert_eq!(rule("0.1%"), 0.001);
    assert_eq!(rule("7%"), 0.07);
    assert_eq!(rule("'0.2'"), 0.2);
    assert_eq!(rule("20 %"), 0.2);
    assert_eq!(rule("0"), 0.0);
    assert_eq!(rule("1"), 1.0);
    assert_eq!(rule("250%"), 2.5);
    let p = parse("version: 1\ndefaults: { fdr: 5%, min_share: 0.005 }\nrules: [{ name: a, profile: cpu, metric: total, max_increase: 1% }]\n").unwrap();
    assert_eq!(p.defaults.fdr, 0.05);
    assert_eq!(p.defaults.min_share, 0.005);
    assert_eq!(p.defaults, Defaults::default());
}

#[test]
fn bad_percentages_are_located() {
    let at = |v: &str| {
        format!("{HEAD}  - name: a\n    profile: cpu\n    metric: total\n    max_increase: {v}\n")
    };
    let (kind, text) = error_at(&at("20"), 6, 19);
    assert_eq!(kind, PolicyErrorKind::BadPercentage);
    assert!(text.contains("write 20% or 0.2"), "{text}");
    let (kind, text) = error_at(&at("-5%"), 6, 19);
    assert_eq!(kind, PolicyErrorKind::BadPercentage);
    assert!(text.contains("negative"), "{text}");
    let (_, text) = error_at(&at("-0.1"), 6, 19);
    assert!(text.contains("negative"), "{text}");
    let (_, text) = error_at(&at("lots"), 6, 19);
    assert!(text.contains("'lots' is not a percentage"), "{text}");
    let (_, text) = error_at(&at("true"), 6, 19);
    assert!(text.contains("boolean"), "{text}");
    assert_eq!(
        error_at(&at("1e3%"), 6, 19).0,
        PolicyErrorKind::BadPercentage
    );
    assert_eq!(
        error_at(&at("20000%"), 6, 19).0,
        PolicyErrorKind::BadPercentage
    );
    // Fractions of a share may not pass 100%.
    let (kind, text) = error_at("version: 1\ndefaults:\n  fdr: 100%\nrules: []\n", 3, 8);
    assert_eq!(kind, PolicyErrorKind::BadPercentage);
    assert!(
        text.contains("fdr 100% in defaults is out of range"),
        "{text}"
    );
}

#[test]
fn unknown_keys_are_located_and_name_their_place() {
    let text = "version: 1\nrules:\n  - name: cpu-functions\n    profile: cpu\n    metric: flat\n    functions: [\"*\"]\n    max_increse: 20%\n";
    let (kind, shown) = error_at(text, 7, 5);
    assert_eq!(kind, PolicyErrorKind::UnknownKey);
    assert!(
        shown.starts_with(
            "p.yaml:7:5: unknown key 'max_increse' in rule 'cpu-functions' (did you mean 'max_increase'?); expected one of: name, profile, sample, metric, functions, ignore, labels, ignore_labels, max_increase,"
        ),
        "{shown}"
    );
    // In the second of two flow rules.
    let text = format!("{HEAD}  - {{ name: a, profile: cpu, metric: total, max_increase: 1% }}\n  - {{ name: b, colour: red }}\n");
    let (_, shown) = error_at(&text, 4, 16);
    assert!(
        shown.contains("unknown key 'colour' in rule 'b'"),
        "{shown}"
    );
    let (_, shown) = error_at("version: 1\ndefaults:\n  fdrr: 1%\n", 3, 3);
    assert!(
        shown.contains("unknown key 'fdrr' in defaults (did you mean 'fdr'?)"),
        "{shown}"
    );
    let (_, shown) = error_at("version: 1\nrule: []\n", 2, 1);
    assert!(
        shown.contains("unknown key 'rule' at the top level (did you mean 'rules'?)"),
        "{shown}"
    );
}

#[test]
fn unknown_profile_metric_and_keywords_are_located() {
    let rule = |extra: &str| {
        format!(
            "{HEAD}  - name: r\n    profile: cpu\n    metric: flat\n    max_increase: 20%\n{extra}"
        )
    };
    let (kind, shown) = error_at(
        &format!("{HEAD}  - name: r\n    profile: cpux\n    metric: flat\n    max_increase: 20%\n"),
        4,
        14,
    );
    assert_eq!(kind, PolicyErrorKind::UnknownValue);
    assert!(shown.contains("unknown profile 'cpux' in rule 'r' (did you mean 'cpu'?); expected one of: cpu, heap, allocs, goroutine, mutex, block"), "{shown}");
    let (kind, shown) = error_at(
        &format!("{HEAD}  - name: r\n    profile: cpu\n    metric: flatt\n    max_increase: 20%\n"),
        5,
        13,
    );
    assert_eq!(kind, PolicyErrorKind::UnknownValue);
    assert!(
        shown.contains("unknown metric 'flatt' in rule 'r'"),
        "{shown}"
    );
    assert!(
        shown.ends_with("expected one of: flat, cum, total, new, growth"),
        "{shown}"
    );
    let (_, shown) = error_at(&rule("    sample: inuse_space\n"), 7, 13);
    assert!(
        shown.contains("unknown sample type 'inuse_space' for profile cpu"),
        "{shown}"
    );
    let (_, shown) = error_at(&rule("    severity: fatal\n"), 7, 15);
    assert!(shown.contains("unknown severity 'fatal'"), "{shown}");
    let (_, shown) = error_at(&rule("    direction: up\n"), 7, 16);
    assert!(
        shown.contains("expected one of: increase, decrease, either"),
        "{shown}"
    );
    let (_, shown) = error_at(&rule("    normalize: median\n"), 7, 16);
    assert!(
        shown.contains("expected one of: median-ratio, total, rate"),
        "{shown}"
    );
    let (_, shown) = error_at("version: 1\ndefaults: { inconclusive: maybe }\n", 2, 27);
    assert!(
        shown.contains("unknown inconclusive 'maybe' in defaults"),
        "{shown}"
    );
}

#[test]
fn empty_or_missing_rules_are_located() {
    let (kind, _) = error_at("version: 1\nrules: []\n", 2, 8);
    assert_eq!(kind, PolicyErrorKind::EmptyRules);
    let (kind, _) = error_at("version: 1\nrules:\n", 2, 6);
    assert_eq!(kind, PolicyErrorKind::EmptyRules);
    let (kind, _) = error_at("version: 1\n", 1, 1);
    assert_eq!(kind, PolicyErrorKind::EmptyRules);
}

#[test]
fn glob_syntax_errors_are_located_at_the_glob() {
    let text = format!("{HEAD}  - name: r\n    profile: cpu\n    metric: flat\n    ignore: [\"runtime.*\", \"{{oops\"]\n    max_increase: 20%\n");
    let (kind, shown) = error_at(&text, 6, 27);
    assert_eq!(kind, PolicyErrorKind::Glob);
    assert!(
        shown.contains("bad glob '{oops' in 'ignore' of rule 'r'"),
        "{shown}"
    );
    let text = format!("{HEAD}  - name: r\n    profile: cpu\n    metric: flat\n    functions:\n      - main.*\n      - 'a\\'\n    max_increase: 20%\n");
    let (kind, shown) = error_at(&text, 8, 9);
    assert_eq!(kind, PolicyErrorKind::Glob);
    assert!(shown.contains("lone '\\'"), "{shown}");
    let long = "a".repeat(1001);
    let text = format!("{HEAD}  - {{ name: r, profile: cpu, metric: flat, max_increase: 1%, functions: [{long}] }}\n");
    assert_eq!(error_at(&text, 3, 74).0, PolicyErrorKind::TooLarge);
    let text = format!(
        "{HEAD}  - {{ name: r, profile: cpu, metric: flat, max_increase: 1%, functions: [] }}\n"
    );
    assert_eq!(error_at(&text, 3, 73).0, PolicyErrorKind::Glob);
}

#[test]
fn yaml_syntax_errors_are_located() {
    let (kind, shown) = error_at("version: 1\nrules: [\n", 2, 8);
    assert_eq!(kind, PolicyErrorKind::Syntax);
    assert!(shown.contains("invalid YAML"), "{shown}");
    assert_eq!(
        error_at("version: 1\n\trules: 2\n", 1, 10).0,
        PolicyErrorKind::Syntax
    );
    assert_eq!(
        error_at("version: 1\n---\nversion: 1\n", 3, 1).0,
        PolicyErrorKind::Syntax
    );
    let (kind, shown) = error_at("version: 1\nversion: 1\n", 2, 1);
    assert_eq!(kind, PolicyErrorKind::DuplicateKey);
    assert!(shown.contains("key 'version' appears twice"), "{shown}");
    let (kind, shown) = error_at(
        &format!("{HEAD}  - name: r\n    functions: runtime.*\n"),
        4,
        16,
    );
    assert_eq!(kind, PolicyErrorKind::WrongType);
    assert!(shown.contains("wrong value for 'functions'"), "{shown}");
    assert!(shown.contains("a list of globs"), "{shown}");
    assert_eq!(error_at("- a\n- b\n", 1, 1).0, PolicyErrorKind::WrongType);
    let text = format!("{HEAD}  - name: r\n    max_increase: [1]\n");
    let (kind, shown) = error_at(&text, 4, 5);
    assert_eq!(kind, PolicyErrorKind::WrongType);
    assert!(shown.contains("wrong value for 'max_increase'"), "{shown}");
}

#[test]
fn duplicate_rule_names_are_located_at_the_second() {
    let text = format!(
        "{HEAD}  - {{ name: a, profile: cpu, metric: total, max_increase: 1% }}\n  - {{ name: a, profile: heap, metric: total, max_increase: 1% }}\n"
    );
    let (kind, shown) = error_at(&text, 4, 13);
    assert_eq!(kind, PolicyErrorKind::DuplicateRuleName);
    assert!(shown.contains("(first at line 3, column 13)"), "{shown}");
}

#[test]
fn missing_and_misplaced_keys_are_located() {
    let (kind, shown) = error_at(
        &format!("{HEAD}  - name: r\n    profile: cpu\n    metric: flat\n"),
        3,
        5,
    );
    assert_eq!(kind, PolicyErrorKind::MissingKey);
    assert!(shown.contains("rule 'r' has no max_increase"), "{shown}");
    let (kind, shown) = error_at(&format!("{HEAD}  - {{ profile: cpu }}\n"), 3, 5);
    assert_eq!(kind, PolicyErrorKind::MissingKey);
    assert!(shown.contains("rule #1 has no name"), "{shown}");
    let (kind, _) = error_at(
        &format!("{HEAD}  - {{ name: r, profile: cpu, metric: new }}\n"),
        3,
        5,
    );
    assert_eq!(kind, PolicyErrorKind::MissingKey);
    let (kind, shown) = error_at(
        &format!("{HEAD}  - {{ name: r, profile: cpu, metric: flat, max_increase: 1%, max_new_share: 1% }}\n"),
        3,
        77,
    );
    assert_eq!(kind, PolicyErrorKind::KeyNotAllowed);
    assert!(
        shown.contains("'max_new_share' does not apply to rule 'r'"),
        "{shown}"
    );
    let (kind, _) = error_at(
        &format!(
            "{HEAD}  - {{ name: r, profile: cpu, metric: total, max_increase: 1%, ignore: [x] }}\n"
        ),
        3,
        71,
    );
    assert_eq!(kind, PolicyErrorKind::KeyNotAllowed);
    let (kind, _) = error_at(
        &format!("{HEAD}  - {{ name: r, profile: cpu, metric: new, max_new_share: 1%, max_increase: 1% }}\n"),
        3,
        76,
    );
    assert_eq!(kind, PolicyErrorKind::KeyNotAllowed);
    let (kind, _) = error_at(&format!("{HEAD}  - {{ name: '', profile: cpu }}\n"), 3, 13);
    assert_eq!(kind, PolicyErrorKind::BadName);
}

#[test]
fn wrong_or_missing_version_is_located() {
    let (kind, shown) = error_at("version: 2\nrules: []\n", 1, 10);
    assert_eq!(kind, PolicyErrorKind::Version);
    assert!(
        shown.contains("unsupported policy version 2; expected version: 1"),
        "{shown}"
    );
    // Quoted, as many YAML files quote every value: the same version.
    let rule = "rules:\n  - { name: a, profile: cpu, metric: total, max_increase: 10% }\n";
    for version in ["version: '1'\n", "version: \"1\"\n"] {
        let quoted = format!("{version}{rule}");
        assert!(parse(&quoted).is_ok(), "{quoted}");
    }
    let (kind, shown) = error_at("version: 'one'\n", 1, 10);
    assert_eq!(kind, PolicyErrorKind::Version);
    assert!(
        shown.contains("unsupported policy version 'one'"),
        "{shown}"
    );
    assert_eq!(error_at("rules: []\n", 1, 1).0, PolicyErrorKind::Version);
    assert_eq!(error_at("", 1, 1).0, PolicyErrorKind::Version);
}

#[test]
fn absurd_inputs_are_refused() {
    let mut text = String::from(HEAD);
    for _ in 0..10_001 {
        text.push_str("  - {}\n");
    }
    assert_eq!(error_at(&text, 3, 3).0, PolicyErrorKind::TooLarge);
    let huge = "#".repeat(3 * 1024 * 1024);
    assert_eq!(error_at(&huge, 1, 1).0, PolicyErrorKind::TooLarge);
}

#[test]
fn garbage_and_deep_nesting_are_errors_not_panics() {
    let deep_flow = format!(
        "version: 1\nrules: {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deep_map = format!(
        "version: 1\nrules: {}x{}\n",
        "{a: ".repeat(2000),
        "}".repeat(2000)
    );
    let mut deep_block = String::from("version: 1\ndefaults:\n");
    for depth in 1..200 {
        deep_block.push_str(&" ".repeat(depth));
        deep_block.push_str("a:\n");
    }
    let bomb = "version: 1\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    let rules_bomb = "version: 1\nrules:\n  - &r {name: a, profile: cpu, metric: total, max_increase: 1%, fdr: &f 1%}\n  - *r\n";
    for text in [
        deep_flow.as_str(),
        &deep_map,
        &deep_block,
        bomb,
        rules_bomb,
        "\u{0}\u{1}\u{2}",
        "{{{{",
        "]]]",
        "version: 1\nrules: [*x]\n",
        "!!binary aGVsbG8=",
        "version: !!float 1\nrules: [{name: !!int a}]\n",
        "\u{feff}version: 1\nrules: [{name: \"\u{7}\", profile: cpu, metric: total, max_increase: 1%}]\n",
        "? [a, b]\n: c\n",
        "version: 1\nrules: [{name: a, profile: cpu, metric: total, max_increase: .nan}]\n",
        "version: 1\nrules: [{name: a, profile: cpu, metric: total, max_increase: 1e999}]\n",
        "version: 1\nrules: [{name: a, profile: cpu, metric: total, max_increase: 99999999999999999999999999999999999}]\n",
    ] {
        let err = parse(text).expect_err(text);
        assert!(err.to_string().starts_with("p.yaml:"), "{err}");
    }
    // A pseudo-random byte soup, deterministic.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"ab:-[]{}*&!|>'\"#%,.?\n \t0123456789\\";
    for _ in 0..300 {
        let len = (state % 200) as usize;
        let mut soup = String::from("version: 1\nrules:\n  - ");
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            soup.push(alphabet[(state % alphabet.len() as u64) as usize] as char);
        }
        let _ = parse(&soup);
    }
}

#[test]
fn mutations_of_the_default_policy_never_panic() {
    let base = include_str!("../../../policies/default.yaml");
    let chars: Vec<char> = base.chars().collect();
    let mut state: u64 = 42;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let mut text = chars.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() % text.len() as u64) as usize;
            match next() % 3 {
                0 => {
                    text.remove(at);
                }
                1 => text.insert(
                    at,
                    ['[', '{', ':', '-', ' ', '\n', '*', '%', 'x'][(next() % 9) as usize],
                ),
                _ => {
                    let other = (next() % text.len() as u64) as usize;
                    text.swap(at, other);
                }
            }
        }
        let text: String = text.into_iter().collect();
        if let Err(e) = parse(&text) {
            assert!(e.to_string().starts_with("p.yaml:"), "{e}");
        }
    }
}

fn selector(functions: &[&str], ignore: &[&str]) -> Rule {
    let list = |globs: &[&str]| {
        globs
            .iter()
            .map(|g| format!("'{g}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "{HEAD}  - {{ name: r, profile: cpu, metric: flat, max_increase: 1%, functions: [{}], ignore: [{}] }}\n",
        list(functions),
        list(ignore)
    );
    parse(&text)
        .unwrap_or_else(|e| panic!("{e}"))
        .rules
        .remove(0)
}

#[test]
fn globs_match_go_function_names() {
    let all = selector(&["*"], &["runtime.*"]);
    for name in [
        "main.(*Server).Handle",
        "github.com/x/y.(*T).M",
        "crypto/sha256.block",
        "main.Map[...]",
        "main.main.func1",
        "runtime/internal/atomic.Load",
    ] {
        assert!(all.selects(name), "{name}");
    }
    // Ignore wins over functions.
    assert!(!all.selects("runtime.mallocgc"));
    assert!(!all.selects("runtime.(*mheap).alloc"));

    let crypto = selector(&["crypto/*"], &["crypto/sha256.*"]);
    assert!(crypto.selects("crypto/aes.encryptBlockAsm"));
    assert!(!crypto.selects("crypto/sha256.block"));
    assert!(!crypto.selects("main.crypto/x"));

    let pkg = selector(&["github.com/x/y.*"], &[]);
    assert!(pkg.selects("github.com/x/y.(*T).M"));
    assert!(!pkg.selects("github.com/x/yz.F"));

    // `*` in a pattern matches a literal `*` too, and more; `\*` matches only the star.
    let loose = selector(&["main.(*Server).Handle"], &[]);
    assert!(loose.selects("main.(*Server).Handle"));
    assert!(loose.selects("main.(Server).Handle"));
    let exact = selector(&["main.(\\*Server).Handle"], &[]);
    assert!(exact.selects("main.(*Server).Handle"));
    assert!(!exact.selects("main.(Server).Handle"));
    assert!(!exact.selects("main.(xServer).Handle"));

    // `[` and `]` are literal: generic instances are written as they appear.
    let generic = selector(&["main.Map[...]"], &[]);
    assert!(generic.selects("main.Map[...]"));
    assert!(!generic.selects("main.Map."));
    let generic_methods = selector(&["main.(*List[...]).*"], &[]);
    assert!(generic_methods.selects("main.(*List[...]).Push"));

    // Alternatives, single characters, case-sensitivity and anchoring.
    let alt = selector(&["{runtime,internal/runtime}.*", "main.f?"], &[]);
    assert!(alt.selects("internal/runtime.x"));
    assert!(alt.selects("main.f1"));
    assert!(!alt.selects("main.f12"));
    assert!(!alt.selects("Runtime.x"));
    assert!(!alt.selects("xruntime.x"));

    // Defaults: every function, nothing ignored.
    let text = format!("{HEAD}  - {{ name: r, profile: cpu, metric: flat, max_increase: 1% }}\n");
    let rule = parse(&text).unwrap().rules.remove(0);
    assert_eq!(rule.functions.patterns(), ["*"]);
    assert!(rule.ignore.patterns().is_empty());
    assert!(rule.selects("runtime.mallocgc"));
}

#[test]
fn rule_accessors() {
    let text = format!(
        "{HEAD}  - {{ name: up, profile: heap, metric: total, max_increase: 20% }}\n  - {{ name: down, profile: allocs, sample: alloc_objects, metric: total, max_increase: 25%, direction: decrease }}\n  - {{ name: both, profile: cpu, metric: total, max_increase: 25%, direction: either }}\n"
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.rules[0].sample_type(), "inuse_space");
    assert_eq!(p.rules[0].profile, ProfileKind::Heap);
    assert_eq!(p.rules[0].upper_threshold(), Some(1.2));
    assert_eq!(p.rules[0].lower_threshold(), None);
    assert_eq!(p.rules[1].sample_type(), "alloc_objects");
    assert_eq!(p.rules[1].upper_threshold(), None);
    assert_eq!(p.rules[1].lower_threshold(), Some(0.8));
    assert_eq!(p.rules[2].upper_threshold(), Some(1.25));
    assert_eq!(p.rules[2].lower_threshold(), Some(0.8));
}

#[test]
fn describe_reads_as_plain_words() {
    let text = format!(
        "{HEAD}  - name: cpu-functions\n    profile: cpu\n    metric: flat\n    functions: [\"*\"]\n    ignore: [\"runtime.*\"]\n    max_increase: 20%\n  - {{ name: goroutines, profile: goroutine, metric: total, max_increase: 10% }}\n  - {{ name: new, profile: cpu, metric: new, max_new_share: 2%, severity: warn }}\n"
    );
    let described = parse(&text).unwrap().describe();
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(
        lines[0],
        "cpu-functions (fail): cpu flat time of any function matching * except runtime.* may grow at most 20% (functions above 0.5% share; FDR 5%)"
    );
    assert_eq!(
        lines[1],
        "goroutines (fail): total goroutine count may grow at most 10% (FDR 5%)"
    );
    assert_eq!(
        lines[2],
        "new (warn): any function matching * that is new in the candidate may take at most 2% of cpu time"
    );
}

#[test]
fn io_errors_name_the_file() {
    let err = Policy::from_file(Path::new("/nonexistent/policy.yaml")).unwrap_err();
    assert!(matches!(err, PolicyError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/policy.yaml: cannot read"),
        "{err}"
    );
}

#[test]
fn non_utf8_files_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, b"version: 1\nrules: [\xff]\n").unwrap();
    let err = Policy::from_file(&path).unwrap_err();
    assert_eq!(err.kind(), Some(PolicyErrorKind::Syntax));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:9: ", path.display())),
        "{err}"
    );
}

mod growth;
mod new_functions;

#[test]
fn label_filters_in_rules_are_read_checked_and_written_back() {
    let policy = parse(&format!(
        "{HEAD}  - {{ name: r, profile: cpu, metric: cum, max_increase: 20%, labels: {{ route: ^/checkout$ }}, ignore_labels: {{ tenant: internal }} }}\n"
    ))
    .expect("labels parse");
    let rule = &policy.rules[0];
    assert_eq!(
        rule.label_filter().as_deref(),
        Some("route=^/checkout$, not tenant=internal")
    );
    assert!(policy
        .describe()
        .contains("(samples with route=^/checkout$, not tenant=internal only)"));
    let again = parse(&policy.to_yaml()).expect("written policy parses");
    assert_eq!(again.rules[0].labels, rule.labels);
    assert_eq!(again.rules[0].ignore_labels, rule.ignore_labels);

    let (kind, shown) = error_at(
        &format!("{HEAD}  - {{ name: r, profile: cpu, metric: cum, max_increase: 20%, labels: {{ route: \"(\" }} }}\n"),
        3,
        79,
    );
    assert_eq!(kind, PolicyErrorKind::Glob);
    assert!(shown.contains("not a valid regular expression"), "{shown}");
}
