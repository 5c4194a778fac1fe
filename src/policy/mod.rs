//! The YAML threshold policy: which changes between baseline and candidate break a release.
//!
//! # Format
//!
//! ```yaml
//! version: 1                    # required, must be 1
//! defaults:                     # optional; every key optional, defaults shown
//!   fdr: 5%                     # Benjamini-Hochberg false discovery rate across tested functions
//!   min_share: 0.5%             # only functions above this share (flat or cum, either side) are tested
//!   min_abs_change: 0.1%        # a function fails only if its share also grew by this much (absolute)
//!   normalize: median-ratio     # median-ratio | total | rate
//!   inconclusive: warn          # warn | fail | pass
//! rules:                        # required, at least one, at most 10,000
//!   - name: cpu-functions       # required, unique
//!     profile: cpu              # required: cpu | heap | allocs | goroutine | mutex | block
//!     sample: cpu               # optional, default the profile's main sample type
//!     metric: flat              # required: flat | cum | total | new
//!     functions: ["*"]          # globs, default ["*"]; not allowed with metric total
//!     ignore: ["runtime.*"]     # globs, default []; ignore wins over functions
//!     labels: { route: ^/api }  # optional: only samples whose pprof labels match (regexes, as
//!     ignore_labels: { tenant: internal }  # go tool pprof -tagfocus / -tagignore); default all
//!     max_increase: 20%         # required for flat, cum, total; refused for new
//!     direction: increase       # increase | decrease | either; refused for new
//!     severity: fail            # fail | warn
//!     fdr: 1%                   # per-rule overrides of any `defaults` key, written flat on the rule
//!   - { name: new-code, profile: cpu, metric: new, max_new_share: 2%, severity: warn }
//! ```
//!
//! YAML anchors and merge keys work (`- { <<: *base, name: other, metric: cum }`).
//! Unknown keys, duplicate keys and keys that do not apply (e.g. `max_new_share` on a `flat` rule)
//! are errors, each reported as `FILE:LINE:COLUMN: what is wrong; expected ...` ([`PolicyError`]).
//!
//! **Percentages** are written `20%` or as the fraction `0.2`; both are the same value (0.2, exactly
//! the same `f64`). A bare number above 1 (`20`) is refused: write `20%` or `0.2`. Negative values
//! are refused. Percent forms may exceed 100% only for `max_increase` (`150%` = 2.5 times).
//!
//! **Thresholds.** With `max_increase: x`, the effect ratio theta = candidate / baseline (after
//! normalisation) is judged against theta0 = 1 + x for `direction: increase` (the default):
//! `20%` fails a function whose ratio is confidently above 1.2. For `direction: decrease` the rule
//! breaks when theta is confidently below 1 / (1 + x), the same distance on the log scale: `20%`
//! means below 1/1.2 = 83.3% of the baseline (a drop of 16.7%). `either` applies both.
//! See [`Rule::upper_threshold`] and [`Rule::lower_threshold`]. With `metric: new`, a function present
//! only in the candidate breaks the rule when its share exceeds `max_new_share`.
//!
//! **Globs** match whole Go function names, case-sensitively: `*` matches any text including `/`,
//! `.`, `(`, `)` (`runtime.*`, `crypto/sha256.*`, `github.com/x/y.(*T).*`); `?` one character;
//! `{a,b}` either alternative; `[` and `]` are literal so generic instances such as `main.Map[...]`
//! can be written as they appear. `\` escapes the next character: a literal `*` is `\*`
//! (`main.(\*Server).Handle` matches only that method; unescaped, `main.(*Server).Handle` also matches
//! it, plus e.g. `main.(Server).Handle`), a literal `{` is `\{`, a backslash `\\`.
//!
//! Limits (an error, never a panic): 2 MiB of text, 10,000 rules, 1,000 globs per list, 1,000
//! characters per glob, 200 characters per rule name, YAML nested at most 16 levels deep.
//!
//! The shipped policies are in `policies/` (`default.yaml`, `strict.yaml`, `leak-watch.yaml`).

mod error;
mod evaluate;
mod glob;
mod model;
mod parse;
mod percent;
mod render;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

pub use error::{PolicyError, PolicyErrorKind};
pub use evaluate::{
    evaluate, finding_words, is_own_code, mark_unavailable, Finding, Outcome, RuleOutcome,
    RuleStatus, Unavailable, Verdict, LEAK_ALPHA, LEAK_MIN_RELATIVE,
};
pub use glob::Globs;
pub use model::{
    Defaults, Direction, InconclusiveAction, LabelMatch, Metric, Normalize, Policy, Rule, Severity,
};

/// The text of `policies/default.yaml`, built into the binary.
/// The built-in default policy, `policies/default.yaml` as shipped.
pub const BUILTIN_DEFAULT: &str = include_str!("../../policies/default.yaml");

impl Policy {
    /// Parses and validates a policy from YAML text; `file` names it in error messages.
    pub fn from_yaml_str(text: &str, file: &str) -> Result<Policy, PolicyError> {
        parse::parse(text, file)
    }

    /// Reads, parses and validates a policy file. A file that cannot be read, is not UTF-8 or is
    /// larger than the size limit is also a [`PolicyError`] naming the file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let io_error = |source| PolicyError::Io {
            file: file.clone(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(parse::MAX_INPUT_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(io_error)?;
        if bytes.len() > parse::MAX_INPUT_BYTES {
            return Err(PolicyError::Invalid {
                file,
                line: 1,
                column: 1,
                kind: PolicyErrorKind::TooLarge,
                message: format!("the file is larger than {} bytes", parse::MAX_INPUT_BYTES),
                expected: "a policy file of a few kilobytes".into(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() as u64 + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
            PolicyError::Invalid {
                file: file.clone(),
                line,
                column,
                kind: PolicyErrorKind::Syntax,
                message: "the file is not valid UTF-8".into(),
                expected: "a UTF-8 text file".into(),
            }
        })?;
        parse::parse(&text, &file)
    }

    /// The built-in policy (`policies/default.yaml`), used when no `--policy` is given.
    pub fn builtin_default() -> Policy {
        // The embedded file is checked by the unit test `builtin_default_parses`.
        Policy::from_yaml_str(BUILTIN_DEFAULT, "policies/default.yaml")
            .expect("policies/default.yaml is a valid policy")
    }

    /// The rules in plain words, one line each, e.g. `cpu-functions (fail): cpu flat time of any
    /// function matching * except runtime.* may grow at most 20% (functions above 0.5% share; FDR 5%)`.
    pub fn describe(&self) -> String {
        render::describe(self)
    }

    /// Canonical YAML that parses back to an equal policy: all defaults written out, rule keys
    /// only where they differ from what the parser assumes, percentages written as `20%`.
    pub fn to_yaml(&self) -> String {
        render::to_yaml(self)
    }
}
