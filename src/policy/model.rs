//! The typed policy: what a parsed and validated policy file means.

use serde::{Deserialize, Serialize};

use super::glob::Globs;
use crate::profile::{Footprint, ProfileKind};

/// A validated threshold policy: statistical defaults and the rules a comparison is judged by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Format version of the policy file; always 1 today.
    pub version: u32,
    /// Policy-wide statistical settings; every rule starts from these.
    pub defaults: Defaults,
    /// Whether the gate's own footprint is removed from every profile before comparing
    /// (`defaults.footprint`; policy-wide, because it applies when profiles are read).
    pub footprint: Footprint,
    /// The rules, in file order (never empty, names unique).
    pub rules: Vec<Rule>,
}

/// Statistical settings: the policy-wide `defaults`, and in [`Rule::settings`] the values in effect
/// for one rule (its own overrides merged over the policy defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Defaults {
    /// Benjamini-Hochberg false discovery rate across all tested functions, as a fraction (0.05).
    pub fdr: f64,
    /// Only functions above this share (flat or cum, either side) are tested, as a fraction (0.005).
    pub min_share: f64,
    /// A function fails only if its share also grew by more than this absolute amount (0.001 = 0.1
    /// percentage points), so tiny functions with large ratios do not fail a release.
    pub min_abs_change: f64,
    /// How the exposures of the two sides are made comparable.
    pub normalize: Normalize,
    /// What an inconclusive result does to the verdict.
    pub inconclusive: InconclusiveAction,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            fdr: 0.05,
            min_share: 0.005,
            min_abs_change: 0.001,
            normalize: Normalize::MedianRatio,
            inconclusive: InconclusiveAction::Warn,
        }
    }
}

/// One rule: which quantity of which profile is compared, and how much it may change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Unique name, used in reports.
    pub name: String,
    /// The profile the rule reads.
    pub profile: ProfileKind,
    /// The sample type as written in the policy; `None` means the profile's main one
    /// (see [`Rule::sample_type`]).
    pub sample: Option<String>,
    /// The quantity compared.
    pub metric: Metric,
    /// Globs selecting functions (default `["*"]`); unused for [`Metric::Total`].
    pub functions: Globs,
    /// Globs excluding functions (default none); they win over `functions`.
    pub ignore: Globs,
    /// Largest allowed change as a fraction (0.2 = 20%); set for flat, cum and total.
    pub max_increase: Option<f64>,
    /// Largest share a function new in the candidate may take, as a fraction; set for `new` only.
    pub max_new_share: Option<f64>,
    /// Which way of change breaks the rule.
    pub direction: Direction,
    /// What breaking the rule does to the verdict.
    pub severity: Severity,
    /// Only samples with these pprof labels (`labels: {route: /checkout}`; regular
    /// expressions matched as `go tool pprof -tagfocus` does); empty: every sample.
    pub labels: Vec<LabelMatch>,
    /// Samples with any of these labels are left out (as `-tagignore`).
    pub ignore_labels: Vec<LabelMatch>,
    /// The statistical settings in effect for this rule (its overrides merged over the defaults).
    pub settings: Defaults,
}

/// One `key: regex` of a rule's `labels` or `ignore_labels`, checked when the policy is read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelMatch {
    /// The label key, e.g. `route`.
    pub key: String,
    /// The regular expression its value must match.
    pub pattern: String,
}

impl LabelMatch {
    /// As a label filter, e.g. for [`crate::profile::LabelView`].
    pub fn filter(&self) -> crate::profile::TagFilter {
        format!("{}={}", self.key, self.pattern)
            .parse()
            .expect("label patterns are checked when the policy is read")
    }
}

impl Rule {
    /// The samples this rule reads, when it narrows them by label (`route=/checkout, not
    /// tenant=internal`): comparisons made for it carry this as their filter.
    pub fn label_filter(&self) -> Option<String> {
        let view = crate::profile::LabelView {
            focus: self.labels.iter().map(LabelMatch::filter).collect(),
            ignore: self.ignore_labels.iter().map(LabelMatch::filter).collect(),
            by: None,
        };
        view.describe()
    }

    /// The sample type compared: the one named in the policy, else the profile's main one.
    pub fn sample_type(&self) -> &str {
        self.sample
            .as_deref()
            .unwrap_or_else(|| self.profile.main_sample_type())
    }

    /// True if the rule applies to the function: some `functions` glob matches the name and no
    /// `ignore` glob does (ignore wins).
    pub fn selects(&self, function_name: &str) -> bool {
        self.functions.is_match(function_name) && !self.ignore.is_match(function_name)
    }

    /// The ratio theta0 = 1 + max_increase above which an increase breaks the rule; `None` when the
    /// rule does not look at increases (direction `decrease`, or metric `new`).
    pub fn upper_threshold(&self) -> Option<f64> {
        match self.direction {
            Direction::Increase | Direction::Either => self.max_increase.map(|x| 1.0 + x),
            Direction::Decrease => None,
        }
    }

    /// The ratio 1 / (1 + max_increase) below which a decrease breaks the rule (the same distance
    /// on the log scale as the increase threshold); `None` when the rule does not look at decreases.
    pub fn lower_threshold(&self) -> Option<f64> {
        match self.direction {
            Direction::Decrease | Direction::Either => self.max_increase.map(|x| 1.0 / (1.0 + x)),
            Direction::Increase => None,
        }
    }
}

/// Keyword enums spelled in the policy file: the set of spellings, for parsing and error messages.
pub(crate) trait Keyword: Copy + 'static {
    /// Every value, in documentation order.
    const ALL: &'static [Self];
    /// The spelling in the policy file.
    fn keyword(self) -> &'static str;
    /// Parses a spelling.
    fn from_keyword(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.keyword() == text)
    }
}

impl Keyword for Footprint {
    const ALL: &'static [Self] = &[Footprint::Remove, Footprint::Keep];
    fn keyword(self) -> &'static str {
        self.name()
    }
}

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// The spelling used in policy files and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl Keyword for $name {
            const ALL: &'static [Self] = &[$($name::$variant,)+];
            fn keyword(self) -> &'static str {
                self.name()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

keyword_enum! {
    /// The quantity a rule compares.
    Metric {
        /// A function's own (self) value, per function.
        Flat => "flat",
        /// A function's cumulative value (itself and everything it calls), per function.
        Cum => "cum",
        /// The whole profile's total.
        Total => "total",
        /// Functions present only in the candidate, judged on their share.
        New => "new",
        /// A level (live heap, goroutines) climbing across the candidate's windows: a leak.
        Growth => "growth",
    }
}

keyword_enum! {
    /// Which way of change breaks a rule.
    Direction {
        /// Growth above 1 + max_increase breaks it.
        Increase => "increase",
        /// Shrinking below 1 / (1 + max_increase) breaks it.
        Decrease => "decrease",
        /// Either of the two.
        Either => "either",
    }
}

keyword_enum! {
    /// What a broken rule does to the verdict.
    Severity {
        /// The gate fails (exit 1).
        Fail => "fail",
        /// A warning in the report; the gate still passes.
        Warn => "warn",
    }
}

keyword_enum! {
    /// How exposures are made comparable between baseline and candidate.
    Normalize {
        /// Median of per-function ratios (robust to one big function changing), as DESeq2 does.
        MedianRatio => "median-ratio",
        /// The profile totals.
        Total => "total",
        /// Per second of wall-clock capture time.
        Rate => "rate",
    }
}

keyword_enum! {
    /// What an inconclusive result (neither clearly within nor beyond the threshold) does.
    InconclusiveAction {
        /// Reported as a warning; the gate passes.
        Warn => "warn",
        /// Treated like a broken rule of the rule's severity.
        Fail => "fail",
        /// Reported only.
        Pass => "pass",
    }
}

/// The sample types Go writes for a profile kind, main one first.
pub(crate) fn sample_types(kind: ProfileKind) -> &'static [&'static str] {
    match kind {
        ProfileKind::Cpu => &["cpu", "samples"],
        ProfileKind::Heap => &[
            "inuse_space",
            "inuse_objects",
            "alloc_space",
            "alloc_objects",
        ],
        ProfileKind::Allocs => &[
            "alloc_space",
            "alloc_objects",
            "inuse_space",
            "inuse_objects",
        ],
        ProfileKind::Goroutine => &["goroutine"],
        ProfileKind::Mutex | ProfileKind::Block => &["delay", "contentions"],
    }
}
