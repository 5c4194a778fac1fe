//! Policy errors: each names the file, line and column, what is wrong and what was expected.

use std::fmt;

/// Why a policy could not be loaded. `Display` gives `FILE:LINE:COLUMN: what is wrong; expected ...`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("{file}: cannot read the policy file: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The policy text is wrong at a place in the file.
    #[error("{file}:{line}:{column}: {message}; expected {expected}")]
    Invalid {
        /// The file name given to the parser.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column, in characters.
        column: u64,
        /// Which kind of mistake it is.
        kind: PolicyErrorKind,
        /// What is wrong.
        message: String,
        /// What was expected instead.
        expected: String,
    },
}

impl crate::errors::Classified for PolicyError {
    fn class(&self) -> crate::errors::FailureClass {
        // The policy is the user's file, read or parsed.
        crate::errors::FailureClass::BadInput
    }
}

impl PolicyError {
    /// The kind of mistake; `None` for I/O errors.
    pub fn kind(&self) -> Option<PolicyErrorKind> {
        match self {
            PolicyError::Io { .. } => None,
            PolicyError::Invalid { kind, .. } => Some(*kind),
        }
    }
}

/// The kinds of mistake a policy file can contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// Not valid YAML (or not a single YAML document, or not UTF-8).
    Syntax,
    /// A key the format does not know (often a typo).
    UnknownKey,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// A required key is missing.
    MissingKey,
    /// A key that does not apply in this place (e.g. `max_new_share` on a `flat` rule).
    KeyNotAllowed,
    /// A value of the wrong YAML type (a list where a string was expected, ...).
    WrongType,
    /// A percentage that cannot be read or is out of range.
    BadPercentage,
    /// A keyword that is not one of the allowed ones (profile, metric, sample type, ...).
    UnknownValue,
    /// `rules` is empty or missing.
    EmptyRules,
    /// Two rules with the same name.
    DuplicateRuleName,
    /// A glob that does not compile.
    Glob,
    /// `version` missing or not 1.
    Version,
    /// A rule name that is empty or unprintable.
    BadName,
    /// An input past a size limit (file size, rules, glob length, nesting).
    TooLarge,
}

impl fmt::Display for PolicyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
