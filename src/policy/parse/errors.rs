//! Mistakes in a policy told with their place: line and column from serde-saphyr's spans or
//! read back from the text, the rule they are in, and a suggestion for a misspelt word.

use super::*;

impl Validator<'_> {
    pub(super) fn err_at(
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
    pub(super) fn err(
        &self,
        at: Location,
        kind: Kind,
        message: String,
        expected: String,
    ) -> PolicyError {
        self.err_at(at.line(), at.column(), kind, message, expected)
    }
    /// Turns a serde-saphyr error into ours, keeping its location.
    pub(super) fn yaml_error(&self, error: &YamlError) -> PolicyError {
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
    pub(super) fn key_before(&self, at: Location) -> Option<&str> {
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
    pub(super) fn rule_at(&self, at: Location) -> String {
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
}

/// Makes user text safe to show inside quotes on one line, and bounded in length.
pub(super) fn quote(text: &str) -> String {
    let mut out: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(super) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
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

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

pub(super) fn one_of(words: &[&str]) -> String {
    format!("one of: {}", words.join(", "))
}

pub(super) fn with_suggestion(message: String, word: &str, candidates: &[&str]) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("{message} (did you mean '{s}'?)"),
        None => message,
    }
}

/// What a key's value should look like, for wrong-type errors.
pub(super) fn expected_for_key(key: Option<&str>, at: Location) -> String {
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
