//! The run's outputs: the reports in every format asked for, the flame graphs, the GitHub
//! comment and step summary, and the one way files are written (whole or not at all).

use super::*;

/// The text of the user's templates, and where each came from.
#[derive(Debug, Default)]
pub(super) struct Templates {
    pub(super) markdown: Option<String>,
    pub(super) text: Option<String>,
    pub(super) origin: Vec<String>,
}

impl TemplateArgs {
    pub(super) fn load(&self) -> anyhow::Result<Templates> {
        let read = |p: &Option<PathBuf>| -> anyhow::Result<Option<String>> {
            p.as_ref()
                .map(|p| {
                    std::fs::read_to_string(p).map_err(|e| {
                        BadInput(format!("{}: cannot read the template ({e})", p.display())).into()
                    })
                })
                .transpose()
        };
        Ok(Templates {
            markdown: read(&self.template)?,
            text: read(&self.text_template)?,
            origin: [&self.template, &self.text_template]
                .into_iter()
                .flatten()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }
}

impl Templates {
    pub(super) fn render(
        &self,
        report: &Report,
        format: Format,
        options: &RenderOptions,
    ) -> anyhow::Result<String> {
        report::render_templated(
            report,
            format,
            options,
            self.markdown.as_deref(),
            self.text.as_deref(),
        )
        .with_context(|| format!("--template {}", self.origin.join(", ")))
    }
}

/// Writes `flame-<profile>.svg`, a differential flame graph, for every profile kind compared.
/// The stacks are read again from the files of each side; a graph that cannot be drawn is a
/// warning, never a failure of the gate.
pub(super) fn write_flames(
    dir: &Path,
    baseline: &Path,
    candidate: &Path,
    report: &Report,
    limits: DecodeOptions,
) {
    use crate::report::flame;
    let kinds: Vec<ProfileKind> = report.comparisons.iter().map(|c| c.kind).collect();
    let stacks = |side: &Path| -> anyhow::Result<flame::SideStacks> {
        let mut stacks = flame::SideStacks::default();
        for (path, pod) in inputs::list_side(side)? {
            let (kind, profile) = inputs::read_raw_file(&path, &pod, limits)?;
            if kinds.contains(&kind) {
                stacks
                    .add(kind, &profile, limits.footprint)
                    .with_context(|| path.display().to_string())?;
            }
        }
        Ok(stacks)
    };
    let sides = stacks(baseline).and_then(|b| Ok((b, stacks(candidate)?)));
    let written = sides.and_then(|(b, c)| {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (kind, svg) in flame::differential_svgs(&kinds, &b, &c) {
            match svg {
                Ok(svg) => write_atomically(&dir.join(format!("flame-{}.svg", kind.name())), &svg)?,
                Err(e) => tracing::warn!("flame graph for {kind}: {e}"),
            }
        }
        Ok(())
    });
    if let Err(e) = written {
        tracing::warn!("flame graphs: {e:#}");
    }
}

/// Prints the report, writes the report files, and maps the verdict to an exit code.
pub(super) fn emit(report: &Report, args: &JudgeArgs, out: Option<&Path>) -> anyhow::Result<u8> {
    let options = RenderOptions {
        top: args.top,
        all_sample_types: args.all_samples,
    };
    let templates = args.templates.load()?;
    let mut printed = templates.render(report, args.format, &options)?;
    if args.format == Format::Text
        && templates.text.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
    {
        printed = report::colour_text(&printed);
    }
    if let Some(dir) = out {
        write_reports(dir, report, &options, &templates)?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(printed.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing to standard output")?;
    }
    github(report, args, &options, &templates, out)?;
    Ok(verdict_exit_code(report.verdict.outcome, args.fail_on))
}

/// In GitHub Actions (or with `--github`): publishes the comment and the check run when a token
/// is there, appends the Markdown to `$GITHUB_STEP_SUMMARY` and the outputs (verdict,
/// report-path, comment-url) to `$GITHUB_OUTPUT`. Publishing failures are warnings; only an
/// explicit `--github` without GITHUB_TOKEN or GITHUB_REPOSITORY is an error (exit 2).
pub(super) fn github(
    report: &Report,
    args: &JudgeArgs,
    options: &RenderOptions,
    templates: &Templates,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    use crate::publish;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(mode) = publish::Mode::choose(args.github, args.no_github, var) else {
        return Ok(());
    };
    let limit = publish::GITHUB_BODY_LIMIT - publish::MARKER.len() - 1;
    let markdown = match &templates.markdown {
        Some(source) => report::render_markdown_within_with(report, options, limit, source)
            .with_context(|| format!("--template {}", templates.origin.join(", ")))?,
        None => report::render_markdown_within(report, options, limit),
    };
    let report_path = out.map(|d| d.join("report.json"));
    let step = publish::run_step(mode, report, &markdown, report_path.as_deref(), var)
        .map_err(|e| BadInput(e.to_string()))?;
    for (path, text) in &step.appends {
        if let Err(e) = append_file(path, text.as_bytes()) {
            tracing::warn!("{e:#}");
        }
    }
    Ok(())
}

/// Appends to a file the runner owns (`$GITHUB_STEP_SUMMARY`, `$GITHUB_OUTPUT`).
pub(super) fn append_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("appending to {}", path.display()))
}

/// Writes report.txt, report.md and report.json, each whole or not at all.
pub(super) fn write_reports(
    dir: &Path,
    report: &Report,
    options: &RenderOptions,
    templates: &Templates,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        BadInput(format!(
            "{}: cannot create the output directory ({e})",
            dir.display()
        ))
    })?;
    for (name, format) in [
        ("report.txt", Format::Text),
        ("report.md", Format::Markdown),
        ("report.json", Format::Json),
    ] {
        write_atomically(
            &dir.join(name),
            templates.render(report, format, options)?.as_bytes(),
        )?;
    }
    Ok(())
}

/// Writes a file through a temporary sibling and a rename, so no reader sees half of it.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
