//! The GitHub Actions step as a whole: whether to publish, what to publish, and what to append
//! to the runner's files. The caller renders the Markdown and writes the files.

use std::path::{Path, PathBuf};

use super::{
    comment_body, conclusion, output_lines, publish, Content, GitHubTarget, PublishError,
    Published, RetryPolicy,
};
use crate::report::{cut_to_limit, Report};

/// Whether to publish: asked for with `--github`, or automatic in Actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--github`: a missing token or repository is a configuration error.
    Explicit,
    /// In GitHub Actions (`GITHUB_ACTIONS=true`): problems are warnings.
    Automatic,
}

impl Mode {
    /// The mode for the flags and environment, `None` when nothing is to be done.
    pub fn choose(
        github: bool,
        no_github: bool,
        var: impl Fn(&str) -> Option<String>,
    ) -> Option<Mode> {
        if no_github {
            None
        } else if github {
            Some(Mode::Explicit)
        } else if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            Some(Mode::Automatic)
        } else {
            None
        }
    }
}

/// What the step produced: what was published, and text to append to runner files.
#[derive(Debug, Default)]
pub struct StepResult {
    /// The comment, the check run, and the warnings (already logged).
    pub published: Published,
    /// `(file, text)` to append: the Markdown to `$GITHUB_STEP_SUMMARY`, the outputs to
    /// `$GITHUB_OUTPUT`.
    pub appends: Vec<(PathBuf, String)>,
}

/// Runs the step: publishes the comment and the check run when a token is there (on a runtime
/// of its own), and returns what to append to `$GITHUB_STEP_SUMMARY` and `$GITHUB_OUTPUT`
/// (verdict, report-path, comment-url). `markdown` must already fit GitHub's limit with the
/// marker. Fails only in [`Mode::Explicit`] when the environment lacks what publishing needs.
pub fn run_step(
    mode: Mode,
    report: &Report,
    markdown: &str,
    report_path: Option<&Path>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<StepResult, PublishError> {
    let mut result = StepResult::default();
    let target = if mode == Mode::Explicit || var("GITHUB_TOKEN").is_some() {
        match GitHubTarget::from_env(&var) {
            Ok(t) => Some(t),
            Err(e) if mode == Mode::Explicit => return Err(e),
            Err(e) => {
                tracing::warn!("GitHub: not publishing: {e}");
                None
            }
        }
    } else {
        None
    };
    if let Some(target) = target {
        let content = Content {
            comment: comment_body(markdown),
            // Plain text on one line: function names in the summary may hold line breaks.
            title: cut_to_limit(
                &format!(
                    "{}: {}",
                    report.verdict.outcome.name(),
                    report.verdict.summary
                )
                .replace(|c: char| c.is_control(), " "),
                1000,
            ),
            summary: markdown.to_owned(),
            conclusion: conclusion(report.verdict.outcome),
        };
        result.published = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                let p = runtime.block_on(publish(&target, &content, RetryPolicy::default()));
                runtime.shutdown_timeout(std::time::Duration::from_millis(100));
                p
            }
            Err(e) => Published {
                warnings: vec![format!(
                    "GitHub: cannot start the runtime ({e}); nothing was published"
                )],
                ..Published::default()
            },
        };
        let p = &result.published;
        for w in &p.warnings {
            tracing::warn!("{w}");
        }
        if let Some(url) = &p.comment_url {
            let verb = if p.comment_created {
                "created"
            } else {
                "updated"
            };
            tracing::info!("GitHub: {verb} the pull-request comment: {url}");
        }
        if p.check_run_created {
            tracing::info!("GitHub: check run created ({})", content.conclusion);
        }
    }
    if let Some(path) = var("GITHUB_STEP_SUMMARY") {
        result
            .appends
            .push((PathBuf::from(path), markdown.to_owned()));
    }
    if let Some(path) = var("GITHUB_OUTPUT") {
        let report_path = report_path
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let comment_url = result.published.comment_url.clone().unwrap_or_default();
        result.appends.push((
            PathBuf::from(path),
            output_lines(&[
                ("verdict", report.verdict.outcome.name()),
                ("report-path", &report_path),
                ("comment-url", &comment_url),
            ]),
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn the_mode_follows_flags_then_the_environment() {
        let actions = |k: &str| (k == "GITHUB_ACTIONS").then(|| "true".to_owned());
        let local = |_: &str| None;
        assert_eq!(Mode::choose(true, false, local), Some(Mode::Explicit));
        assert_eq!(Mode::choose(false, false, actions), Some(Mode::Automatic));
        assert_eq!(Mode::choose(false, true, actions), None);
        assert_eq!(Mode::choose(false, false, local), None);
    }
}
