//! What a policy run says: the verdict, each rule's outcome, and the findings behind it.

use super::*;

/// The overall outcome of a gate run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every rule held.
    Pass,
    /// Only `severity: warn` rules broke.
    Warn,
    /// Some rule could not decide and the policy says to warn about it.
    Inconclusive,
    /// A `severity: fail` rule broke (or an inconclusive one the policy treats as failing).
    Fail,
}

impl Outcome {
    /// The word shown in reports and action outputs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Fail => "fail",
        }
    }
}

/// A policy's judgement of a comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// The overall outcome.
    pub outcome: Outcome,
    /// One line for people: what decided the outcome.
    pub summary: String,
    /// Every rule's outcome, in policy order.
    pub rules: Vec<RuleOutcome>,
}

/// What one rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Something went beyond the rule's threshold, with confidence.
    Broken,
    /// Nothing did.
    Held,
    /// Something may have; the data cannot tell.
    Inconclusive,
    /// The profile or sample type was not captured on both sides.
    Skipped,
}

/// The outcome of one rule, with the findings that decided it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule's name.
    pub rule: String,
    /// The profile it reads.
    pub profile: ProfileKind,
    /// The sample type it reads.
    pub sample_type: String,
    /// Its metric.
    pub metric: Metric,
    /// Its severity.
    pub severity: Severity,
    /// What it found.
    pub status: RuleStatus,
    /// One line for people.
    pub explanation: String,
    /// How many functions (or totals) were tested.
    pub tested: usize,
    /// How many of them were decided: regressed, improved, or confidently within the threshold.
    #[serde(default)]
    pub decided: usize,
    /// How many the data could not decide either way: "verified within" and "could not see"
    /// are different answers, and the count keeps them apart.
    #[serde(default)]
    pub undecided: usize,
    /// The tested items, most damning first.
    pub findings: Vec<Finding>,
    /// The service's own function the rule names as the cause of a break, when it names one:
    /// the first regression in the service's code with enough samples to judge, or the
    /// deepest function of the service's code that a leak climbs through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
}

/// One tested function (or total) under a rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// The function; `None` for the profile's total.
    pub function: Option<String>,
    /// Flat, cum, total or new.
    pub metric: Metric,
    /// Unit of the values.
    pub unit: String,
    /// The numbers compared.
    pub delta: Delta,
    /// The threshold ratio applied (for `new`: the allowed share).
    pub threshold: f64,
    /// The test's answer.
    pub answer: MarginAnswer,
    /// For `new`: one-sided p-value that the function is really absent from the baseline, not
    /// merely unsampled there (the candidate's events against the baseline's zero, given
    /// each side's total events). Other metrics test movement with their estimate.
    pub p_new: Option<f64>,
    /// The label value of the comparison this came from (`route=/checkout`), when split.
    pub label: Option<String>,
    /// For a total or a library function: the service's own function whose cumulative change
    /// accounts for most of it, where the user can act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<Attribution>,
    /// How many frames above the leaf the function sits, on average: of a chain of callers
    /// with the same numbers, the deepest is listed (and named) first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_distance: Option<f64>,
}

/// The service's own function that explains a change: the deepest frame of its code whose
/// cumulative change carries at least half of the change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attribution {
    /// The function.
    pub function: String,
    /// Its cumulative values.
    pub cum: Delta,
}

impl Finding {
    /// The point estimate of the ratio, if any.
    pub fn ratio(&self) -> Option<f64> {
        self.delta.estimate.as_deref().map(|e| e.ratio)
    }
}
