//! From YAML text to a validated [`Policy`]: serde-saphyr into span-carrying raw structs (unknown
//! keys refused by serde), then validation with the spans so every mistake has a line and column.

mod errors;
mod rule;

use errors::*;

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_saphyr::{Error as YamlError, Location, MessageFormatter, Spanned, UserMessageFormatter};

use super::error::{PolicyError, PolicyErrorKind as Kind};
use super::glob::{compile, Globs};
use super::model::{
    sample_types, Defaults, Direction, InconclusiveAction, Keyword, LabelMatch, Metric, Normalize,
    Policy, Rule, Severity,
};
use super::percent::{format_number, format_percent, parse_fraction, RawNumber};
use crate::profile::{Footprint, ProfileKind, TagFilter};

/// Largest policy text accepted, in bytes.
pub(crate) const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;
/// Most rules in one policy.
pub(crate) const MAX_RULES: usize = 10_000;
/// Longest glob, in characters.
pub(crate) const MAX_GLOB_CHARS: usize = 1_000;
/// Most globs in one `functions` or `ignore` list.
pub(crate) const MAX_GLOBS: usize = 1_000;
/// Longest rule name or sample type, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;
/// Deepest YAML nesting accepted (the format itself needs 4 levels).
const MAX_DEPTH: usize = 16;

const TOP_KEYS: &[&str] = &["version", "defaults", "rules"];
const DEFAULTS_KEYS: &[&str] = &[
    "fdr",
    "min_share",
    "min_abs_change",
    "normalize",
    "inconclusive",
    "footprint",
];
const RULE_KEYS: &[&str] = &[
    "name",
    "profile",
    "sample",
    "metric",
    "functions",
    "ignore",
    "labels",
    "ignore_labels",
    "max_increase",
    "max_new_share",
    "direction",
    "severity",
    "fdr",
    "min_share",
    "min_abs_change",
    "normalize",
    "inconclusive",
];

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    version: Option<S<RawNumber>>,
    #[serde(default)]
    defaults: Option<S<RawDefaults>>,
    #[serde(default = "no_rules")]
    rules: S<Option<Vec<S<RawRule>>>>,
}

fn no_rules() -> S<Option<Vec<S<RawRule>>>> {
    Spanned::new(None, Location::UNKNOWN, Location::UNKNOWN)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    fdr: Option<S<RawNumber>>,
    #[serde(default)]
    min_share: Option<S<RawNumber>>,
    #[serde(default)]
    min_abs_change: Option<S<RawNumber>>,
    #[serde(default)]
    normalize: Option<S<String>>,
    #[serde(default)]
    inconclusive: Option<S<String>>,
    #[serde(default)]
    footprint: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<S<String>>,
    #[serde(default)]
    profile: Option<S<String>>,
    #[serde(default)]
    sample: Option<S<String>>,
    #[serde(default)]
    metric: Option<S<String>>,
    #[serde(default)]
    functions: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    ignore: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    labels: Option<S<BTreeMap<String, S<String>>>>,
    #[serde(default)]
    ignore_labels: Option<S<BTreeMap<String, S<String>>>>,
    #[serde(default)]
    max_increase: Option<S<RawNumber>>,
    #[serde(default)]
    max_new_share: Option<S<RawNumber>>,
    #[serde(default)]
    direction: Option<S<String>>,
    #[serde(default)]
    severity: Option<S<String>>,
    #[serde(default)]
    fdr: Option<S<RawNumber>>,
    #[serde(default)]
    min_share: Option<S<RawNumber>>,
    #[serde(default)]
    min_abs_change: Option<S<RawNumber>>,
    #[serde(default)]
    normalize: Option<S<String>>,
    #[serde(default)]
    inconclusive: Option<S<String>>,
}

/// Parses and validates a policy; see [`Policy::from_yaml_str`].
pub(crate) fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
    let v = Validator { file, text };
    if text.len() > MAX_INPUT_BYTES {
        return Err(v.err_at(
            1,
            1,
            Kind::TooLarge,
            format!("the policy is {} bytes long", text.len()),
            format!("a policy file of at most {MAX_INPUT_BYTES} bytes"),
        ));
    }
    let raw: RawPolicy =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| v.yaml_error(&e))?;
    v.policy(raw)
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: 250_000,
            max_events: 1_000_000,
            max_total_scalar_bytes: 4 * MAX_INPUT_BYTES,
            max_aliases: 10_000,
            max_anchors: 10_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 250_000,
        },
    }
}

/// A rule as messages name it: `rule 'cpu'`, or `rule #3` before its name is known.
#[derive(Clone)]
struct RuleLabel(String);

impl RuleLabel {
    fn new(index: usize, name: Option<&str>) -> RuleLabel {
        match name {
            Some(name) => RuleLabel(format!("rule '{}'", quote(name))),
            None => RuleLabel(format!("rule #{}", index + 1)),
        }
    }
}

impl std::fmt::Display for RuleLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Numeric bounds of the percentage-valued keys.
#[derive(Clone, Copy)]
enum Bound {
    /// (0, 1): a false discovery rate.
    Fdr,
    /// [0, 1): a share floor.
    Floor,
    /// (0, 1]: a share ceiling.
    Ceiling,
    /// [0, 100]: a relative change up to +10000%.
    Change,
}

impl Bound {
    fn check(self, v: f64) -> Option<&'static str> {
        match self {
            Bound::Fdr if v <= 0.0 || v >= 1.0 => Some("a rate above 0% and below 100%, e.g. 5%"),
            Bound::Floor if v >= 1.0 => Some("a share of at least 0% and below 100%, e.g. 0.5%"),
            Bound::Ceiling if v <= 0.0 || v > 1.0 => {
                Some("a share above 0% and up to 100%, e.g. 2%")
            }
            Bound::Change if v > 100.0 => Some("a change of at most 10000%, e.g. 20%"),
            _ => None,
        }
    }
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Validator<'_> {
    fn policy(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        match &raw.version {
            None => {
                return Err(self.err_at(
                    1,
                    1,
                    Kind::Version,
                    "missing key 'version'".into(),
                    "'version: 1' at the top of the policy".into(),
                ))
            }
            Some(v) if v.value == RawNumber::Number(1.0) => {}
            // `version: "1"`: quoted, as many YAML files quote every value; the same version.
            Some(v) if matches!(&v.value, RawNumber::Text(t) if t.trim() == "1") => {}
            Some(v) => {
                let written = match &v.value {
                    RawNumber::Number(n) => format_number(*n),
                    RawNumber::Text(t) => format!("'{}'", quote(t)),
                    RawNumber::Other(what) => what.to_string(),
                };
                return Err(self.err(
                    v.referenced,
                    Kind::Version,
                    format!("unsupported policy version {written}"),
                    "version: 1".into(),
                ));
            }
        }

        let mut defaults = Defaults::default();
        let mut footprint = Footprint::default();
        if let Some(d) = &raw.defaults {
            let d = &d.value;
            let ctx = "defaults";
            if let Some(v) = &d.footprint {
                footprint = self.keyword::<Footprint>(v, "footprint", ctx)?;
            }
            self.settings(
                &mut defaults,
                ctx,
                &d.fdr,
                &d.min_share,
                &d.min_abs_change,
                &d.normalize,
                &d.inconclusive,
            )?;
        }

        let rules_at = raw.rules.referenced;
        let raw_rules = match raw.rules.value {
            None => {
                return Err(self.err(
                    rules_at,
                    Kind::EmptyRules,
                    "the policy has no rules".into(),
                    "'rules:' with at least one rule".into(),
                ))
            }
            Some(r) if r.is_empty() => {
                return Err(self.err(
                    rules_at,
                    Kind::EmptyRules,
                    "'rules' is empty".into(),
                    "at least one rule".into(),
                ))
            }
            Some(r) if r.len() > MAX_RULES => {
                return Err(self.err(
                    rules_at,
                    Kind::TooLarge,
                    format!("the policy has {} rules", r.len()),
                    format!("at most {MAX_RULES} rules"),
                ))
            }
            Some(r) => r,
        };

        let mut rules = Vec::with_capacity(raw_rules.len());
        let mut seen: HashMap<String, Location> = HashMap::new();
        for (index, raw_rule) in raw_rules.into_iter().enumerate() {
            let rule = self.rule(index, raw_rule, &defaults, &mut seen)?;
            rules.push(rule);
        }
        Ok(Policy {
            version: 1,
            defaults,
            footprint,
            rules,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn settings(
        &self,
        into: &mut Defaults,
        ctx: &str,
        fdr: &Option<S<RawNumber>>,
        min_share: &Option<S<RawNumber>>,
        min_abs_change: &Option<S<RawNumber>>,
        normalize: &Option<S<String>>,
        inconclusive: &Option<S<String>>,
    ) -> Result<(), PolicyError> {
        if let Some(v) = fdr {
            into.fdr = self.fraction(v, "fdr", ctx, Bound::Fdr)?;
        }
        if let Some(v) = min_share {
            into.min_share = self.fraction(v, "min_share", ctx, Bound::Floor)?;
        }
        if let Some(v) = min_abs_change {
            into.min_abs_change = self.fraction(v, "min_abs_change", ctx, Bound::Floor)?;
        }
        if let Some(v) = normalize {
            into.normalize = self.keyword::<Normalize>(v, "normalize", ctx)?;
        }
        if let Some(v) = inconclusive {
            into.inconclusive = self.keyword::<InconclusiveAction>(v, "inconclusive", ctx)?;
        }
        Ok(())
    }

    fn fraction(
        &self,
        value: &S<RawNumber>,
        key: &str,
        ctx: &str,
        bound: Bound,
    ) -> Result<f64, PolicyError> {
        let at = value.referenced;
        let v = parse_fraction(&value.value).map_err(|(what, expected)| {
            self.err(
                at,
                Kind::BadPercentage,
                format!("bad percentage for {key} in {ctx}: {what}"),
                expected,
            )
        })?;
        match bound.check(v) {
            None => Ok(v),
            Some(expected) => Err(self.err(
                at,
                Kind::BadPercentage,
                format!("{key} {} in {ctx} is out of range", format_percent(v)),
                expected.to_string(),
            )),
        }
    }

    fn keyword<T: Keyword>(
        &self,
        value: &S<String>,
        key: &str,
        ctx: &str,
    ) -> Result<T, PolicyError> {
        let names: Vec<&str> = T::ALL.iter().map(|v| v.keyword()).collect();
        T::from_keyword(&value.value).ok_or_else(|| {
            let message = format!("unknown {key} '{}' in {ctx}", quote(&value.value));
            self.err(
                value.referenced,
                Kind::UnknownValue,
                with_suggestion(message, &value.value, &names),
                one_of(&names),
            )
        })
    }
}
