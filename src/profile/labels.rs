//! Sample labels (pprof labels such as `route=/checkout`): which samples a comparison keeps,
//! and how it splits them into one profile per label value.
//!
//! A filter works like `go tool pprof -tagfocus` / `-tagignore`: `KEY=REGEX` matches a sample
//! that has a label KEY whose value the regular expression matches anywhere (anchor it with
//! `^...$` for an exact value); several regular expressions for one key, comma-separated, match
//! if any does. Numeric labels match by their decimal value (`bytes=^4096$`).

use std::fmt;
use std::str::FromStr;

use regex::Regex;

/// One `KEY=REGEX[,REGEX...]` filter on sample labels.
#[derive(Debug, Clone)]
pub struct TagFilter {
    /// The label key, e.g. `route`.
    pub key: String,
    patterns: Vec<Regex>,
    text: String,
}

/// Why a `--tag` filter could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TagFilterError {
    /// No `=` between key and value.
    #[error("{0:?}: expected KEY=REGEX, e.g. route=/checkout or route=^/checkout$")]
    NoEquals(String),
    /// An empty key.
    #[error("{0:?}: the label key before '=' is empty")]
    EmptyKey(String),
    /// A regular expression that does not compile.
    #[error("{text:?}: {pattern:?} is not a valid regular expression ({reason})")]
    BadPattern {
        /// The whole filter.
        text: String,
        /// The pattern at fault.
        pattern: String,
        /// The regex engine's reason.
        reason: String,
    },
}

impl FromStr for TagFilter {
    type Err = TagFilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| TagFilterError::NoEquals(text.to_owned()))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(TagFilterError::EmptyKey(text.to_owned()));
        }
        let patterns = value
            .split(',')
            .map(|p| {
                Regex::new(p).map_err(|e| TagFilterError::BadPattern {
                    text: text.to_owned(),
                    pattern: p.to_owned(),
                    reason: e.to_string().lines().last().unwrap_or("").trim().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TagFilter {
            key: key.to_owned(),
            patterns,
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TagFilter {
    /// Whether a label value matches.
    pub fn matches(&self, value: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(value))
    }
}

/// Which samples to keep, and the label whose values split them into separate profiles.
#[derive(Debug, Clone, Default)]
pub struct LabelView {
    /// Keep only samples matching every key's filters (filters of one key: any of them).
    pub focus: Vec<TagFilter>,
    /// Drop samples matching any of these.
    pub ignore: Vec<TagFilter>,
    /// Split the kept samples by this label's value; samples without it are left out.
    pub by: Option<String>,
}

impl LabelView {
    /// Whether the view keeps every sample whole: the fast path, labels never read.
    pub fn is_everything(&self) -> bool {
        self.focus.is_empty() && self.ignore.is_empty() && self.by.is_none()
    }

    /// Whether a sample with these labels is kept, and under which value of `by`
    /// (`Some(None)`: kept, no split).
    pub(crate) fn place<'v>(&self, labels: &'v [(String, String)]) -> Option<Option<&'v str>> {
        let has = |f: &TagFilter| labels.iter().any(|(k, v)| *k == f.key && f.matches(v));
        if self.ignore.iter().any(has) {
            return None;
        }
        let focused = self.focus.iter().all(|f| {
            // Filters on one key are alternatives; different keys must all hold.
            self.focus
                .iter()
                .filter(|g| g.key == f.key)
                .any(|g| labels.iter().any(|(k, v)| *k == g.key && g.matches(v)))
        });
        if !focused {
            return None;
        }
        match &self.by {
            None => Some(None),
            Some(key) => labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Some(v.as_str())),
        }
    }

    /// The view in words, for reports: `route=/checkout, not tenant=internal, by route`.
    pub fn describe(&self) -> Option<String> {
        let mut parts: Vec<String> = self.focus.iter().map(|f| f.to_string()).collect();
        parts.extend(self.ignore.iter().map(|f| format!("not {f}")));
        if let Some(by) = &self.by {
            parts.push(format!("by {by}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_match_like_tagfocus() {
        let f: TagFilter = "route=/check".parse().unwrap();
        assert!(f.matches("/checkout"), "unanchored, as pprof");
        let exact: TagFilter = "route=^/search$,^/browse$".parse().unwrap();
        assert!(exact.matches("/browse") && !exact.matches("/browse/2"));
        assert!(matches!(
            "route".parse::<TagFilter>(),
            Err(TagFilterError::NoEquals(_))
        ));
        assert!(matches!(
            "=x".parse::<TagFilter>(),
            Err(TagFilterError::EmptyKey(_))
        ));
        let bad = "route=(".parse::<TagFilter>().unwrap_err().to_string();
        assert!(bad.contains("not a valid regular expression"), "{bad}");
    }

    #[test]
    fn focus_ignore_and_split_place_samples() {
        let view = LabelView {
            focus: vec!["route=^/checkout$".parse().unwrap()],
            ignore: vec!["tenant=internal".parse().unwrap()],
            by: Some("tenant".into()),
        };
        let a = labels(&[("route", "/checkout"), ("tenant", "acme")]);
        assert_eq!(view.place(&a), Some(Some("acme")));
        let internal = labels(&[("route", "/checkout"), ("tenant", "internal")]);
        assert_eq!(view.place(&internal), None);
        let other = labels(&[("route", "/search"), ("tenant", "acme")]);
        assert_eq!(view.place(&other), None);
        let no_tenant = labels(&[("route", "/checkout")]);
        assert_eq!(view.place(&no_tenant), None, "no value to split by");
        assert!(LabelView::default().is_everything());
        assert_eq!(
            view.describe().as_deref(),
            Some("route=^/checkout$, not tenant=internal, by tenant")
        );
    }
}
