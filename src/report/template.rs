//! minijinja templates: the layouts shipped in the binary, and the user's own (`--template`).
//!
//! Templates run with `trim_blocks` and `lstrip_blocks` on (a line holding only a block tag
//! leaves nothing behind), the trailing newline kept, no auto-escaping (the view's cells are
//! already escaped for their format), and strict undefined values, so a misspelt field in a
//! user's template is an error naming the line instead of a silently empty cell.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::Report;

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("template {name}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct TemplateError {
    /// The template's name.
    pub name: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl crate::errors::Classified for TemplateError {
    fn class(&self) -> crate::errors::FailureClass {
        // The templates are the user's files.
        crate::errors::FailureClass::BadInput
    }
}

impl TemplateError {
    fn from_minijinja(name: &str, e: &minijinja::Error) -> TemplateError {
        let mut message = e.kind().to_string();
        if let Some(detail) = e.detail() {
            message = format!("{message}: {detail}");
        }
        TemplateError {
            name: name.to_owned(),
            line: e.line(),
            message,
        }
    }
}

/// Renders `source` (named `name` in errors) with `view` and the raw `report` in scope, as
/// report.json holds it (tested functions only: a profile of a million functions would
/// otherwise be copied whole into the template engine, gigabytes of it).
///
/// Filters besides minijinja's built-ins: `md_escape` (Markdown table-cell escaping, for
/// text taken from `report`).
pub fn render<V: Serialize>(
    source: &str,
    name: &str,
    view: &V,
    report: &Report,
) -> Result<String, TemplateError> {
    let err = |e: minijinja::Error| TemplateError::from_minijinja(name, &e);
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(err)?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("md_escape", |s: &str| escape(s));
    let template = env.template_from_named_str(name, source).map_err(err)?;
    template
        .render(minijinja::context! {
            view => Value::from(minijinja::value::Serde(view)),
            report => Value::from(minijinja::value::Serde(&super::slim(report))),
        })
        .map_err(err)
}

/// Escapes text for a Markdown table cell: no HTML, no emphasis, no links, no broken pipes or
/// lines, no @mentions.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            // Without `[` and `]` no link or image can form, so parentheses may stay.
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            // A zero-width joiner after `@`: `@octocat` in a function name shows as written
            // but mentions (and notifies) nobody on GitHub.
            '@' => out.push_str("@\u{200d}"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    // GitHub turns bare `https://...` and `www....` into links; a zero-width joiner inside the
    // pattern keeps a name that holds one as plain text.
    let out = out.replace("://", ":\u{200d}//");
    let lower = out.to_ascii_lowercase();
    if !lower.contains("www.") {
        return out;
    }
    // Lowercasing ASCII keeps byte offsets, so matches in `lower` are places in `out`.
    let mut defused = String::with_capacity(out.len() + 8);
    let mut from = 0;
    for (at, _) in lower.match_indices("www.") {
        defused.push_str(&out[from..at + 3]);
        defused.push('\u{200d}');
        from = at + 3;
    }
    defused.push_str(&out[from..]);
    defused
}
