//! Findings and rules in a few words, for the rule lines and the verdict's summary.

use super::*;

pub(super) fn describe_target(rule: &Rule) -> String {
    let limit = match rule.metric {
        Metric::New => format!(
            "new functions above {:.1}% share",
            rule.max_new_share.unwrap_or(0.0) * 100.0
        ),
        _ => format!(
            "{} may change at most {:.0}%",
            rule.metric,
            rule.max_increase.unwrap_or(0.0) * 100.0
        ),
    };
    let samples = match rule.label_filter() {
        Some(filter) => format!(" {{{filter}}}"),
        None => String::new(),
    };
    if rule.sample_type() == rule.profile.name() {
        format!("{}{samples} ({limit})", rule.profile)
    } else {
        format!("{} {}{samples} ({limit})", rule.profile, rule.sample_type())
    }
}

/// A finding in a few words: `main.f +52% [+31%, +76%]`.
pub fn finding_words(f: &Finding) -> String {
    let words = change_words(f);
    match &f.explained_by {
        // Named at the service's code where the change is confident; elsewhere the
        // attribution would put a name on noise.
        Some(a) if f.answer.status == Status::Regressed => {
            let cum = match a.cum.estimate.as_deref() {
                Some(e) => ratio_words(e.ratio),
                None if a.cum.baseline_per_pod <= 0.0 => "new".to_owned(),
                None => ratio_words(a.cum.candidate_per_pod / a.cum.baseline_per_pod),
            };
            let name = display_name(&a.function);
            if f.function.is_some() {
                format!("{name} {cum} cum, time in {words}")
            } else {
                format!("{words}, mostly in {name} ({cum} cum)")
            }
        }
        _ => words,
    }
}

/// A ratio as a change people read: `+52%`, `-30%`; from ten times on, `12x`, which reads better
/// than `+1100%`; never `+inf%`.
pub fn ratio_words(r: f64) -> String {
    if !r.is_finite() {
        "new".to_owned()
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{:+.0}%", (r - 1.0) * 100.0)
    }
}

/// A finding's own change in words, without its attribution.
pub(super) fn change_words(f: &Finding) -> String {
    let function = display_name(f.function.as_deref().unwrap_or("total"));
    let name = match &f.label {
        Some(label) => format!("{function} [{label}]"),
        None => function.into_owned(),
    };
    match f.metric {
        Metric::New => {
            let mut words = format!(
                "{name} new at {:.1}% share (at least {:.1}%)",
                f.delta.candidate_share * 100.0,
                f.answer.lower.unwrap_or(0.0) * 100.0
            );
            // A burst in a few windows (start-up work of a fresh canary) reads differently
            // from code that runs all the time; say which it was.
            if let Some(spread) = f
                .delta
                .candidate_spread
                .as_deref()
                .map(|u| u.factor)
                .filter(|&s| s >= super::answers::UNEVEN_SPREAD)
            {
                words.push_str(&format!(
                    ", uneven across the candidate's windows ({spread:.0}x sampling noise)"
                ));
            }
            words
        }
        _ => {
            let pct = |r: f64| ratio_words(r);
            match (f.ratio(), f.answer.lower, f.answer.upper) {
                (Some(r), Some(lo), Some(hi)) if hi.is_finite() => {
                    format!("{name} {} [{}, {}]", pct(r), pct(lo), pct(hi))
                }
                (Some(r), Some(lo), Some(_)) => {
                    format!("{name} {} [{}, no upper bound]", pct(r), pct(lo))
                }
                _ => match f.delta.presence {
                    Presence::New => format!(
                        "{name} from none in the baseline to {} per pod",
                        crate::profile::units::format_value(f.delta.candidate_per_pod, &f.unit)
                    ),
                    Presence::Vanished => format!("{name} gone in the candidate"),
                    Presence::Neither => format!("{name} (none on either side)"),
                    Presence::Both => format!("{name} (too few samples for an estimate)"),
                },
            }
        }
    }
}
