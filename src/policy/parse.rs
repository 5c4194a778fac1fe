//! From YAML text to a validated [`Policy`]: serde-saphyr into span-carrying raw structs (unknown
//! keys refused by serde), then validation with the spans so every mistake has a line and column.

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

/// Makes user text safe to show inside quotes on one line, and bounded in length.
fn quote(text: &str) -> String {
    let mut out: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > 64 {
        return None;
    }
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d > 0 && *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let old = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(old).min(row[j])
            };
            prev = old;
        }
    }
    row[b.len()]
}

fn one_of(words: &[&str]) -> String {
    format!("one of: {}", words.join(", "))
}

fn with_suggestion(message: String, word: &str, candidates: &[&str]) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("{message} (did you mean '{s}'?)"),
        None => message,
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
    fn err_at(
        &self,
        line: u64,
        column: u64,
        kind: Kind,
        message: String,
        expected: String,
    ) -> PolicyError {
        let (line, column) = if line == 0 {
            (1, 1)
        } else {
            (line, column.max(1))
        };
        PolicyError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            kind,
            message,
            expected,
        }
    }

    fn err(&self, at: Location, kind: Kind, message: String, expected: String) -> PolicyError {
        self.err_at(at.line(), at.column(), kind, message, expected)
    }

    /// Turns a serde-saphyr error into ours, keeping its location.
    fn yaml_error(&self, error: &YamlError) -> PolicyError {
        let mut inner = error;
        while let YamlError::AliasError { error, .. } | YamlError::WithSnippet { error, .. } = inner
        {
            inner = error;
        }
        let at = error.location().unwrap_or(Location::UNKNOWN);
        let said = || quote(&UserMessageFormatter.format_message(inner));
        match inner {
            YamlError::SerdeUnknownField {
                field, expected, ..
            } => {
                let (place, keys) = if expected.contains(&"metric") {
                    (format!("in {}", self.rule_at(at)), RULE_KEYS)
                } else if expected.contains(&"fdr") {
                    ("in defaults".to_string(), DEFAULTS_KEYS)
                } else {
                    ("at the top level".to_string(), TOP_KEYS)
                };
                let message = format!("unknown key '{}' {place}", quote(field));
                self.err(
                    at,
                    Kind::UnknownKey,
                    with_suggestion(message, field, keys),
                    one_of(keys),
                )
            }
            YamlError::DuplicateMappingKey { key, .. } => self.err(
                at,
                Kind::DuplicateKey,
                match key {
                    Some(key) => format!("key '{}' appears twice in the same mapping", quote(key)),
                    None => "a key appears twice in the same mapping".to_string(),
                },
                "each key at most once per mapping".into(),
            ),
            YamlError::Budget { .. }
            | YamlError::AliasReplayCounterOverflow { .. }
            | YamlError::AliasReplayLimitExceeded { .. }
            | YamlError::AliasExpansionLimitExceeded { .. }
            | YamlError::AliasReplayStackDepthExceeded { .. }
            | YamlError::RecursiveReferencesRequireWeakTypes { .. } => self.err(
                at,
                Kind::TooLarge,
                format!("the policy is too large or too deeply nested ({})", said()),
                format!(
                    "at most {MAX_RULES} rules, nesting at most {MAX_DEPTH} levels deep and few aliases"
                ),
            ),
            YamlError::SerdeInvalidType { .. }
            | YamlError::SerdeInvalidValue { .. }
            | YamlError::SerdeInvalidLength { .. }
            | YamlError::SerdeMissingField { .. }
            | YamlError::SerdeUnknownVariant { .. }
            | YamlError::Unexpected { .. }
            | YamlError::InvalidScalar { .. }
            | YamlError::NonFiniteFloat { .. }
            | YamlError::NullIntoString { .. }
            | YamlError::TaggedScalarCannotDeserializeIntoString { .. }
            | YamlError::BytesNotSupportedMissingBinaryTag { .. }
            | YamlError::InvalidBinaryBase64 { .. }
            | YamlError::BinaryNotUtf8 { .. }
            | YamlError::MergeValueNotMapOrSeqOfMaps { .. } => {
                let key = self.key_before(at);
                let message = match key {
                    Some(key) => format!("wrong value for '{key}': {}", said()),
                    None => format!("wrong kind of value: {}", said()),
                };
                self.err(at, Kind::WrongType, message, expected_for_key(key, at))
            }
            _ => self.err(
                at,
                Kind::Syntax,
                format!("invalid YAML: {}", said()),
                "one YAML document, indented with spaces, as in policies/default.yaml".into(),
            ),
        }
    }

    /// The key that a wrong value at `at` belongs to, read back from the text: either the key
    /// just before it (`  max_increase: [1]`, pointing at `[`) or the key at it.
    fn key_before(&self, at: Location) -> Option<&str> {
        let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let known = |key: &str| TOP_KEYS.contains(&key) || RULE_KEYS.contains(&key);
        let line_index = usize::try_from(at.line()).ok()?.checked_sub(1)?;
        let line = self.text.lines().nth(line_index)?;
        let column = usize::try_from(at.column()).ok()?.checked_sub(1)?;
        let split = line
            .char_indices()
            .nth(column)
            .map_or(line.len(), |(i, _)| i);
        let (before, after) = line.split_at(split);
        let key_at = after
            .split(':')
            .next()
            .filter(|k| after.len() > k.len() && !k.is_empty() && k.chars().all(is_key_char));
        if let Some(key) = key_at.filter(|k| known(k)) {
            return Some(key);
        }
        let prefix = before.trim_end().strip_suffix(':')?;
        // Past the last character that cannot be in a key, however many bytes it takes.
        let start = prefix
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_key_char(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = &prefix[start..];
        known(key).then_some(key)
    }

    /// Names the rule whose mapping encloses `at`, found by a lenient second parse.
    fn rule_at(&self, at: Location) -> String {
        #[derive(Deserialize)]
        struct LooseDoc {
            #[serde(default)]
            rules: Option<Vec<S<LooseRule>>>,
        }
        #[derive(Deserialize)]
        struct LooseRule {
            #[serde(default)]
            name: Option<String>,
        }
        let found = serde_saphyr::from_str_with_options::<LooseDoc>(self.text, yaml_options())
            .ok()
            .and_then(|doc| doc.rules)
            .and_then(|rules| {
                let here = (at.line(), at.column());
                rules
                    .into_iter()
                    .enumerate()
                    .rev()
                    .find(|(_, r)| (r.referenced.line(), r.referenced.column()) <= here)
                    .map(|(i, r)| RuleLabel::new(i, r.value.name.as_deref()))
            });
        match found {
            Some(label) => label.0,
            None => "a rule".to_string(),
        }
    }

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

    fn rule(
        &self,
        index: usize,
        raw: S<RawRule>,
        defaults: &Defaults,
        seen: &mut HashMap<String, Location>,
    ) -> Result<Rule, PolicyError> {
        let at = raw.referenced;
        let r = raw.value;
        let anonymous = RuleLabel::new(index, None).0;

        // Name: present, printable, bounded, unique.
        let Some(name) = r.name else {
            return Err(self.err(
                at,
                Kind::MissingKey,
                format!("{anonymous} has no name"),
                "'name: ...', a unique name for the rule".into(),
            ));
        };
        let trimmed = name.value.trim();
        if trimmed.is_empty() || name.value.chars().any(char::is_control) {
            return Err(self.err(
                name.referenced,
                Kind::BadName,
                format!("the name of {anonymous} is empty or contains control characters"),
                "a short printable name such as cpu-functions".into(),
            ));
        }
        if name.value.chars().count() > MAX_NAME_CHARS {
            return Err(self.err(
                name.referenced,
                Kind::TooLarge,
                format!("the name of {anonymous} is longer than {MAX_NAME_CHARS} characters"),
                "a short printable name such as cpu-functions".into(),
            ));
        }
        if let Some(first) = seen.get(&name.value) {
            return Err(self.err(
                name.referenced,
                Kind::DuplicateRuleName,
                format!(
                    "rule name '{}' is used twice (first at line {}, column {})",
                    quote(&name.value),
                    first.line(),
                    first.column()
                ),
                "a unique name for every rule".into(),
            ));
        }
        seen.insert(name.value.clone(), name.referenced);
        let label = RuleLabel::new(index, Some(&name.value)).0;

        // Profile, sample type, metric.
        let profile_names: Vec<&str> = ProfileKind::ALL.iter().map(|k| k.name()).collect();
        let Some(profile_raw) = r.profile else {
            return Err(self.err(
                at,
                Kind::MissingKey,
                format!("{label} has no profile"),
                format!("'profile:' {}", one_of(&profile_names)),
            ));
        };
        let profile = ProfileKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == profile_raw.value)
            .ok_or_else(|| {
                let message = format!("unknown profile '{}' in {label}", quote(&profile_raw.value));
                self.err(
                    profile_raw.referenced,
                    Kind::UnknownValue,
                    with_suggestion(message, &profile_raw.value, &profile_names),
                    one_of(&profile_names),
                )
            })?;
        let sample = match r.sample {
            None => None,
            Some(s) => {
                let known = sample_types(profile);
                if !known.contains(&s.value.as_str()) {
                    let message = format!(
                        "unknown sample type '{}' for profile {profile} in {label}",
                        quote(&s.value)
                    );
                    return Err(self.err(
                        s.referenced,
                        Kind::UnknownValue,
                        with_suggestion(message, &s.value, known),
                        one_of(known),
                    ));
                }
                Some(s.value)
            }
        };
        let metric_names: Vec<&str> = Metric::ALL.iter().map(|m| m.keyword()).collect();
        let Some(metric_raw) = r.metric else {
            return Err(self.err(
                at,
                Kind::MissingKey,
                format!("{label} has no metric"),
                format!("'metric:' {}", one_of(&metric_names)),
            ));
        };
        let metric: Metric = self.keyword(&metric_raw, "metric", &label)?;

        // Globs.
        let functions = self.globs(r.functions.as_ref(), "functions", &label, vec!["*".into()])?;
        let ignore = self.globs(r.ignore.as_ref(), "ignore", &label, Vec::new())?;
        let labels = self.label_matches(r.labels.as_ref(), "labels", &label)?;
        let ignore_labels =
            self.label_matches(r.ignore_labels.as_ref(), "ignore_labels", &label)?;

        // Thresholds, and keys that only some metrics take.
        let max_increase = match &r.max_increase {
            Some(v) => Some(self.fraction(v, "max_increase", &label, Bound::Change)?),
            None => None,
        };
        let max_new_share = match &r.max_new_share {
            Some(v) => Some(self.fraction(v, "max_new_share", &label, Bound::Ceiling)?),
            None => None,
        };
        let direction = match &r.direction {
            Some(v) => self.keyword(v, "direction", &label)?,
            None => Direction::Increase,
        };
        let severity = match &r.severity {
            Some(v) => self.keyword(v, "severity", &label)?,
            None => Severity::Fail,
        };
        let not_allowed = |key: &str, value_at: Location, why: &str, expected: &str| {
            self.err(
                value_at,
                Kind::KeyNotAllowed,
                format!("'{key}' does not apply to {label}: {why}"),
                expected.to_string(),
            )
        };
        match metric {
            Metric::Flat | Metric::Cum | Metric::Total => {
                if let Some(v) = &r.max_new_share {
                    return Err(not_allowed(
                        "max_new_share",
                        v.referenced,
                        &format!("it has metric {metric}, and max_new_share is for metric new"),
                        "max_increase for this metric, or metric: new",
                    ));
                }
                if max_increase.is_none() {
                    return Err(self.err(
                        at,
                        Kind::MissingKey,
                        format!("{label} has no max_increase"),
                        format!("'max_increase:' the largest allowed change for metric {metric}, e.g. 20%"),
                    ));
                }
                if metric == Metric::Total {
                    for (key, list) in [("functions", &r.functions), ("ignore", &r.ignore)] {
                        if let Some(list) = list {
                            return Err(not_allowed(
                                key,
                                list.referenced,
                                "metric total compares the whole profile, not chosen functions",
                                "no functions or ignore on a total rule (use metric flat or cum)",
                            ));
                        }
                    }
                }
            }
            Metric::Growth => {
                let sample_type = sample.as_deref().unwrap_or(sample_types(profile)[0]);
                if !crate::compare::trend::is_level_sample_type(profile, sample_type) {
                    return Err(self.err(
                        metric_raw.referenced,
                        Kind::KeyNotAllowed,
                        format!("{label} has metric growth, which follows a level across windows, and {profile} {sample_type} is not one"),
                        "metric: growth on profile goroutine, or on profile heap with sample inuse_space or inuse_objects".into(),
                    ));
                }
                if let Some(v) = &r.max_new_share {
                    return Err(not_allowed(
                        "max_new_share",
                        v.referenced,
                        "it has metric growth, and max_new_share is for metric new",
                        "max_increase: the largest climb over the capture, e.g. 10%",
                    ));
                }
                if let Some(v) = &r.direction {
                    return Err(not_allowed(
                        "direction",
                        v.referenced,
                        "a leak only climbs, so there is no direction",
                        "no direction on a rule with metric growth",
                    ));
                }
                if max_increase.is_none() {
                    return Err(self.err(
                        at,
                        Kind::MissingKey,
                        format!("{label} has no max_increase"),
                        "'max_increase:' the largest climb over the capture, relative to the first window, e.g. 10%".into(),
                    ));
                }
            }
            Metric::New => {
                if let Some(v) = &r.max_increase {
                    return Err(not_allowed(
                        "max_increase",
                        v.referenced,
                        "metric new judges new functions by their share",
                        "max_new_share for metric new",
                    ));
                }
                if let Some(v) = &r.direction {
                    return Err(not_allowed(
                        "direction",
                        v.referenced,
                        "a new function can only appear, so there is no direction",
                        "no direction on a rule with metric new",
                    ));
                }
                if max_new_share.is_none() {
                    return Err(self.err(
                        at,
                        Kind::MissingKey,
                        format!("{label} has no max_new_share"),
                        "'max_new_share:' the largest share a new function may take, e.g. 2%"
                            .into(),
                    ));
                }
            }
        }

        let mut settings = defaults.clone();
        self.settings(
            &mut settings,
            &label,
            &r.fdr,
            &r.min_share,
            &r.min_abs_change,
            &r.normalize,
            &r.inconclusive,
        )?;

        Ok(Rule {
            name: name.value,
            profile,
            sample,
            metric,
            functions,
            ignore,
            max_increase,
            max_new_share,
            direction,
            severity,
            labels,
            ignore_labels,
            settings,
        })
    }

    fn label_matches(
        &self,
        map: Option<&S<BTreeMap<String, S<String>>>>,
        key: &str,
        label: &str,
    ) -> Result<Vec<LabelMatch>, PolicyError> {
        let Some(map) = map else {
            return Ok(Vec::new());
        };
        if map.value.len() > MAX_GLOBS {
            return Err(self.err(
                map.referenced,
                Kind::TooLarge,
                format!("'{key}' in {label} has {} labels", map.value.len()),
                format!("at most {MAX_GLOBS} labels"),
            ));
        }
        let expected =
            "a pprof label and a regular expression for its value, e.g. route: ^/checkout$";
        let mut out = Vec::with_capacity(map.value.len());
        for (name, pattern) in &map.value {
            if name.trim().is_empty() || pattern.value.chars().count() > MAX_GLOB_CHARS {
                return Err(self.err(
                    pattern.referenced,
                    Kind::Glob,
                    format!("an empty label name or an over-long pattern in '{key}' of {label}"),
                    expected.into(),
                ));
            }
            if let Err(e) = format!("{name}={}", pattern.value).parse::<TagFilter>() {
                return Err(self.err(
                    pattern.referenced,
                    Kind::Glob,
                    format!("bad label pattern in '{key}' of {label}: {e}"),
                    expected.into(),
                ));
            }
            out.push(LabelMatch {
                key: name.clone(),
                pattern: pattern.value.clone(),
            });
        }
        Ok(out)
    }

    fn globs(
        &self,
        list: Option<&S<Vec<S<String>>>>,
        key: &str,
        label: &str,
        default: Vec<String>,
    ) -> Result<Globs, PolicyError> {
        let expected_glob = "a glob such as runtime.* ('*' any text, '?' one character, \
                             '{a,b}' either, '\\' escapes; '[' and ']' are literal)";
        let patterns = match list {
            None => default,
            Some(list) => {
                if list.value.len() > MAX_GLOBS {
                    return Err(self.err(
                        list.referenced,
                        Kind::TooLarge,
                        format!("'{key}' in {label} has {} globs", list.value.len()),
                        format!("at most {MAX_GLOBS} globs"),
                    ));
                }
                if key == "functions" && list.value.is_empty() {
                    return Err(self.err(
                        list.referenced,
                        Kind::Glob,
                        format!("'functions' in {label} is empty, so the rule selects nothing"),
                        "at least one glob, e.g. [\"*\"] for every function".into(),
                    ));
                }
                let mut patterns = Vec::with_capacity(list.value.len());
                for glob in &list.value {
                    let pattern = &glob.value;
                    if pattern.chars().count() > MAX_GLOB_CHARS {
                        return Err(self.err(
                            glob.referenced,
                            Kind::TooLarge,
                            format!("a glob in '{key}' of {label} is longer than {MAX_GLOB_CHARS} characters"),
                            format!("globs of at most {MAX_GLOB_CHARS} characters"),
                        ));
                    }
                    if pattern.is_empty() {
                        return Err(self.err(
                            glob.referenced,
                            Kind::Glob,
                            format!("an empty glob in '{key}' of {label}"),
                            expected_glob.into(),
                        ));
                    }
                    if let Err(why) = compile(pattern) {
                        return Err(self.err(
                            glob.referenced,
                            Kind::Glob,
                            format!("bad glob '{}' in '{key}' of {label}: {why}", quote(pattern)),
                            expected_glob.into(),
                        ));
                    }
                    patterns.push(pattern.clone());
                }
                patterns
            }
        };
        Globs::new(patterns).map_err(|why| {
            let at = list.map_or(Location::UNKNOWN, |l| l.referenced);
            self.err(
                at,
                Kind::TooLarge,
                format!("'{key}' of {label} cannot be compiled: {}", quote(&why)),
                "fewer or simpler globs".into(),
            )
        })
    }
}

/// What a key's value should look like, for wrong-type errors.
fn expected_for_key(key: Option<&str>, at: Location) -> String {
    match key {
        Some("functions" | "ignore") => "a list of globs, e.g. [\"runtime.*\"]".into(),
        Some("labels" | "ignore_labels") => {
            "a mapping of label to regular expression, e.g. { route: ^/checkout$ }".into()
        }
        Some("rules") => "a list of rules, each a mapping starting '- name: ...'".into(),
        Some("defaults") => format!("a mapping with keys {}", DEFAULTS_KEYS.join(", ")),
        Some("version") => "version: 1".into(),
        Some("max_increase" | "max_new_share" | "fdr" | "min_share" | "min_abs_change") => {
            "a percentage such as 20% or the fraction 0.2".into()
        }
        Some(_) => "a single word or string".into(),
        None if at.line() <= 1 && at.column() <= 1 => {
            format!("a mapping with the keys {}", TOP_KEYS.join(", "))
        }
        None => "a value of the kind this key takes (see policies/default.yaml)".into(),
    }
}
