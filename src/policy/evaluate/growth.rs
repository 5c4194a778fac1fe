//! Leak rules: whether the candidate's level climbs across windows, clearly, faster than the
//! baseline's clearly, and by more than the rule allows beyond the baseline's own climb.

use super::*;

/// A climb is a leak signal when it is this unlikely under no growth (one-sided)...
pub const LEAK_ALPHA: f64 = 0.01;
/// ...and, where no rule sets the size, adds at least this part of the starting level over
/// the capture.
pub const LEAK_MIN_RELATIVE: f64 = 0.10;

/// A function that carries half of a climb already judged clear is named when its own climb
/// is this clear: naming is not a second test, and a function holds fewer of the sampled
/// allocations than the whole. With one pod a side over 9 s, a 512 KB/s leak broke the rule
/// at p = 0.006 while `main.retainRecord`, with 84% of the climb, was at p = 0.037.
const NAMING_ALPHA: f64 = 0.05;

/// What a growth rule found: decided from the fitted slopes, without a margin question.
pub(super) struct GrowthOutcome {
    pub(super) status: RuleStatus,
    pub(super) explanation: String,
    pub(super) culprit: Option<String>,
}

/// Judges a leak: the candidate's level climbs across windows, clearly (p below
/// [`LEAK_ALPHA`]), faster than the baseline's just as clearly, and by more than
/// `max_increase` of its first window over the capture beyond what the baseline's level
/// climbs over the same windows. Named at the deepest function of the service's own code
/// that climbs with it.
pub(super) fn judge_growth(rule: &Rule, s: &SampleTypeComparison) -> GrowthOutcome {
    let what = crate::profile::units::kind_and_sample(rule.profile, rule.sample_type());
    let limit = rule.max_increase.unwrap_or(LEAK_MIN_RELATIVE);
    let skipped = |why: &str| GrowthOutcome {
        status: RuleStatus::Skipped,
        explanation: format!("skipped: {why}"),
        culprit: None,
    };
    let Some(g) = &s.growth else {
        return skipped(
            "a climb needs three windows from a pod of each side (--windows 3 or more)",
        );
    };
    let Some(c) = &g.candidate else {
        return skipped("a climb needs three windows from a candidate pod (--windows 3 or more)");
    };
    let per_min = |v: f64| {
        format!(
            "{} per minute",
            crate::profile::units::format_growth(v, rule.sample_type())
        )
    };
    let baseline_words = match &g.baseline {
        Some(b) => format!("the baseline {}", per_min(b.per_minute)),
        None => "the baseline not measured".to_owned(),
    };
    let head = format!(
        "{what} in the candidate {} ({:+.0}% over the capture, p = {:.1e}; {baseline_words})",
        per_min(c.per_minute),
        c.relative * 100.0,
        c.p_value
    );
    let climbs = c.is_leak_signal(LEAK_ALPHA, limit);
    // What the release adds is the candidate's climb beyond the baseline's, both relative to
    // their own level over the same windows: fresh pods of one build warm up at different
    // rates, and in a one-pod A/A run of the example service the canary's heap rose 12%
    // beside the stable pod's 7% (p = 0.0016 on the canary alone; the baseline's climb was
    // not clear on its own, so "both climb alike" did not hold it). A baseline shrinking
    // does not make the candidate's climb larger.
    let relative_beyond = match &g.baseline {
        Some(b) => c.relative - b.relative.max(0.0),
        None => c.relative,
    };
    if !climbs {
        return GrowthOutcome {
            status: RuleStatus::Held,
            explanation: format!(
                "{head}: no clear climb past {:.0}% (a climb must be clear at p < {LEAK_ALPHA} and larger than that)",
                limit * 100.0
            ),
            culprit: None,
        };
    }
    if relative_beyond <= limit {
        return GrowthOutcome {
            status: RuleStatus::Held,
            explanation: format!(
                "{head}: the baseline climbs too, and the candidate's climb beyond it ({:+.0}% over the capture) is within {:.0}%, so not this release",
                relative_beyond * 100.0,
                limit * 100.0
            ),
            culprit: None,
        };
    }
    // The same build's level moves between windows alike on both sides; the candidate's
    // climb must stand out from that movement, not only from a flat line.
    if let Some(x) = g
        .beyond_baseline
        .as_ref()
        .filter(|x| x.p_value >= LEAK_ALPHA)
    {
        let how = if x.per_minute > 0.0 {
            format!(
                "it climbs {} faster than the baseline, which is not clear beside how both sides' levels move between windows (p = {:.1e}, must be below {LEAK_ALPHA})",
                per_min(x.per_minute),
                x.p_value
            )
        } else {
            // Larger relative to its own level, but no faster in what it holds.
            format!(
                "it climbs no faster than the baseline ({} against it)",
                per_min(x.per_minute)
            )
        };
        return GrowthOutcome {
            status: RuleStatus::Held,
            explanation: format!("{head}: {how}, so not this release"),
            culprit: None,
        };
    }
    // The functions that carry the climb: at least half of it, clearly enough to name, in the
    // service's own code, where the rule looks; named as [`deepest`] picks.
    let carriers: Vec<&compare::trend::FunctionGrowth> = g
        .functions
        .iter()
        .filter(|f| f.per_minute >= c.per_minute / 2.0 && f.p_value < NAMING_ALPHA)
        .filter(|f| is_own_code(&f.name) && rule.selects(&f.name))
        .collect();
    let weighed: Vec<Carrier> = carriers
        .iter()
        .enumerate()
        .map(|(i, f)| Carrier {
            index: i,
            name: &f.name,
            level: f.level,
            own: f.flat_level,
            depth: f.leaf_distance,
        })
        .collect();
    let named_at = deepest(&weighed).map(|i| carriers[i]);
    let named = match (named_at, g.functions.first()) {
        (Some(f), _) => format!(
            "; it climbs in {} {}",
            display_name(&f.name),
            per_min(f.per_minute)
        ),
        (None, Some(f)) => format!(
            "; the steepest function is {} {} (no function of the service's own code climbs clearly with half of it)",
            display_name(&f.name),
            per_min(f.per_minute)
        ),
        (None, None) => String::new(),
    };
    let culprit = named_at.map(|f| f.name.clone());
    let beyond = match &g.baseline {
        Some(b) if b.relative > 0.0 => {
            format!(", {:+.0}% beyond the baseline's", relative_beyond * 100.0)
        }
        _ => String::new(),
    };
    let against_baseline = match &g.beyond_baseline {
        Some(x) => format!(", faster than it at p = {:.1e}", x.p_value),
        None => String::new(),
    };
    GrowthOutcome {
        status: RuleStatus::Broken,
        explanation: format!(
            "{what} grows in the candidate: {} ({:+.0}% over the capture{beyond}, more than {:.0}%; p = {:.1e}; {baseline_words}{against_baseline}){named}",
            per_min(c.per_minute),
            c.relative * 100.0,
            limit * 100.0,
            c.p_value
        ),
        culprit,
    }
}
