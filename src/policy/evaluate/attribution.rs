//! Naming the cause: the service's own function that carries a change, and the rule that
//! heads the verdict.

use super::*;

/// A total's change per pod in the units of its functions' values (the sum of their flat
/// changes: flat values add up to the total).
pub(super) fn total_change(s: &SampleTypeComparison) -> f64 {
    s.functions.iter().map(|f| f.flat.change_per_pod()).sum()
}

/// The service's own function that explains a rise of `change` per pod: of the functions of
/// its code whose cumulative value rose by at least half of it, the one [`deepest`] picks.
pub(super) fn attribute(s: &SampleTypeComparison, change: f64) -> Option<Attribution> {
    if change <= 0.0 || !change.is_finite() {
        return None;
    }
    let carriers: Vec<Carrier> = s
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.cum.change_per_pod() >= change / 2.0 && is_own_code(&f.name))
        .map(|(i, f)| Carrier {
            index: i,
            name: &f.name,
            level: f.cum.candidate_per_pod,
            own: f.flat.change_per_pod(),
            depth: f.leaf_distance,
        })
        .collect();
    deepest(&carriers).map(|i| {
        let f = &s.functions[i];
        Attribution {
            function: f.name.to_string(),
            cum: f.cum.clone(),
        }
    })
}

/// A function that carries part of a change, as [`deepest`] weighs it.
pub(super) struct Carrier<'a> {
    pub(super) index: usize,
    pub(super) name: &'a str,
    /// Its cumulative level in the candidate.
    pub(super) level: f64,
    /// The change of its own (flat) value.
    pub(super) own: f64,
    /// Its mean distance from the leaf.
    pub(super) depth: f64,
}

/// The carrier that explains a change best: the deepest in the call chain (nearest the leaf
/// on average), then the one holding the least besides, then the frame whose own value changed
/// most. Every carrier holds at least half the change, so the deepest is where it happens: its
/// callers carry it too (and whatever else changed under them), and a callee shared by several
/// callers (a lock's user) sits below each of them.
pub(super) fn deepest(carriers: &[Carrier]) -> Option<usize> {
    carriers
        .iter()
        .min_by(|a, b| {
            a.depth
                .total_cmp(&b.depth)
                .then_with(|| a.level.total_cmp(&b.level))
                .then_with(|| b.own.total_cmp(&a.own))
                .then_with(|| a.name.cmp(b.name))
        })
        .map(|c| c.index)
}

/// Whether a function is the service's own code rather than Go's standard library or runtime:
/// `main.*`, or a package path whose first element is a domain (`github.com/...`).
///
/// Rust paths (`rust_service::compute_checksum`) are the service's unless their crate is the
/// standard library (`std`, `core`, `alloc`) or the profiler's. Runtimes whose profiles name
/// functions without a package (JavaScript's `computeChecksum`, as Node.js profilers write
/// them) have no such mark: a plain identifier is taken as the service's, and the runtime's
/// own pseudo-frames (`(garbage collector)`, `Garbage Collection`, `(anonymous:L#12:C#3)`)
/// are not. Go names always carry their package, so this changes nothing for Go.
pub fn is_own_code(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.'),
        None if name.starts_with("main.") => true,
        None => match name.split_once("::") {
            // A Rust (or C++) path: its crate is the service's unless it is the standard
            // library or the profiler, as a Go module path is unless it is Go's own.
            Some((first, _)) => {
                is_plain_identifier(first)
                    && !matches!(first, "std" | "core" | "alloc" | "pprof" | "backtrace")
            }
            None => is_plain_identifier(name),
        },
    }
}

/// A name as JavaScript writes a function: letters, digits, `_` and `$`, not starting with a
/// digit or an underscore (a leading underscore marks runtime and C symbols).
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Fewest sampling events (both sides together) behind a function the verdict names: a
/// function seen three times can show any ratio, and heading a report with it misleads.
pub(super) const MIN_NAMED_EVENTS: f64 = 20.0;

/// Whether a finding may be named as the cause: a total, or the service's own function with
/// enough samples to judge.
pub(super) fn nameable(f: &Finding) -> bool {
    match f.function.as_deref() {
        None => true,
        Some(name) => {
            is_own_code(name)
                && f.delta.baseline_events + f.delta.candidate_events >= MIN_NAMED_EVENTS
        }
    }
}

/// The rule whose explanation heads the verdict: the first (in policy order) that names a
/// regressed function of the service's own code, else the first that explains its change by
/// one, else the first.
pub(super) fn headline<'a>(rules: &[&'a RuleOutcome]) -> &'a RuleOutcome {
    let direct = |r: &&&RuleOutcome| {
        r.culprit.as_ref().is_some_and(|c| {
            r.findings
                .iter()
                .any(|f| f.answer.status == Status::Regressed && f.function.as_ref() == Some(c))
        })
    };
    rules
        .iter()
        .find(direct)
        .or_else(|| rules.iter().find(|r| r.culprit.is_some()))
        .unwrap_or(&rules[0])
}
