//! Globs on Go function names.
//!
//! The dialect, chosen for names such as `main.(*Server).Handle`, `crypto/sha256.block` or
//! `main.Map[...]`:
//!
//! - `*` matches any run of characters, including `/`, `.`, `(`, `)` and `*`: `runtime.*` matches
//!   `runtime.mallocgc` and `runtime.(*mheap).alloc` (not `runtime/internal/atomic.Load`, which does
//!   not start with `runtime.`), and `crypto/*` matches every function of every `crypto/` package;
//! - `?` matches exactly one character;
//! - `{a,b}` matches either alternative (`{runtime,internal/runtime}.*`);
//! - `[` and `]` are **literal** (Go generic instances are written `pkg.F[...]`); there are no
//!   character classes;
//! - `\` escapes the next character: `\*`, `\?`, `\{`, `\}`, `\\` match it literally. So
//!   `main.(\*Server).Handle` matches only that method, while `main.(*Server).Handle` also matches
//!   it (and `main.(Server).Handle`, since `*` may match nothing).
//!
//! Matching is case-sensitive and anchored: the whole name must match.

use globset::{ErrorKind, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Serialize, Serializer};

/// A list of function-name globs, compiled once.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Globs {
    /// Compiles the patterns (dialect in the documentation of [`crate::policy`]); the error names
    /// the first bad pattern and what is wrong with it.
    pub fn new(patterns: Vec<String>) -> Result<Globs, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            let glob = compile(pattern).map_err(|why| format!("glob '{pattern}': {why}"))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(Globs { patterns, set })
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// True if any pattern matches the whole name.
    pub fn is_match(&self, name: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(name)
    }
}

impl PartialEq for Globs {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Serialize for Globs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(serializer)
    }
}

/// Compiles one pattern of our dialect; the error says what is wrong in plain words.
pub(crate) fn compile(pattern: &str) -> Result<globset::Glob, String> {
    // Translate to globset syntax: `[` and `]` become escaped literals, escapes pass through.
    let mut translated = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => {
                    translated.push('\\');
                    translated.push(next);
                }
                None => return Err("ends with a lone '\\' (write '\\\\' for a backslash)".into()),
            },
            '[' | ']' => {
                translated.push('\\');
                translated.push(c);
            }
            _ => translated.push(c),
        }
    }
    GlobBuilder::new(&translated)
        .literal_separator(false)
        .backslash_escape(true)
        .case_insensitive(false)
        .build()
        .map_err(|e| match e.kind() {
            ErrorKind::UnclosedAlternates => {
                "'{' opens a group that is never closed (write '\\{' for a literal brace)".into()
            }
            ErrorKind::UnopenedAlternates => {
                "'}' closes a group that was never opened (write '\\}' for a literal brace)".into()
            }
            ErrorKind::NestedAlternates => "'{...}' groups cannot be nested".into(),
            ErrorKind::DanglingEscape => {
                "ends with a lone '\\' (write '\\\\' for a backslash)".into()
            }
            other => other.to_string(),
        })
}
