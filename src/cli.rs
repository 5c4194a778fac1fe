//! The `gate` command line: raw arguments turned into validated settings, then the pipeline.
//!
//! This is the one place that knows about exit codes and writes report files.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::capture::{self, Capture, CaptureError, PlanError, SideTargets};
use crate::compare;
use crate::inputs::{self, InputError, SideProfiles};
use crate::judge::{self, judge, judge_groups, label_groups, LabelGroup};
use crate::policy::{self, Outcome, Policy, PolicyError};
use crate::profile::{self, DecodeOptions, Footprint, LabelView, ProfileKind};
use crate::report::{self, Format, RenderOptions, Report};
use crate::targets::{self, session::KubeSideSpec, KubeOptions, KubeSession, Target, TargetError};

mod archive;
mod args;
mod out;
mod stop;

use args::{
    CaptureArgs, CaptureCommandArgs, Command, DiffArgs, ForwardArgs, JudgeArgs, KubeArgs,
    PolicyCommand, ReportArgs, RunArgs, TemplateArgs,
};
pub use args::{Cli, FailOn};

use out::{EarlierProfiles, OutDir};

/// Exit codes: stable, part of the contract with CI systems.
pub mod exit {
    /// The gate passed (warnings allowed).
    pub const PASS: u8 = 0;
    /// A `severity: fail` rule was broken.
    pub const FAIL: u8 = 1;
    /// Bad input or configuration; the message names the file, field or target.
    pub const BAD_INPUT: u8 = 2;
    /// Capture or infrastructure failure.
    pub const INFRASTRUCTURE: u8 = 3;
}

/// `gate --version`: the crate version and the commit it was built from (`build.rs`: the
/// `GATE_COMMIT` build variable, else `git rev-parse`, else `unknown`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GATE_COMMIT"),
    ")"
);

/// The exit code of a verdict under `--fail-on`: [`exit::FAIL`] or [`exit::PASS`].
pub fn verdict_exit_code(outcome: Outcome, fail_on: FailOn) -> u8 {
    let fails = match fail_on {
        FailOn::Fail => outcome == Outcome::Fail,
        FailOn::Inconclusive => matches!(outcome, Outcome::Fail | Outcome::Inconclusive),
        FailOn::Never => false,
    };
    if fails {
        exit::FAIL
    } else {
        exit::PASS
    }
}

/// The text of the user's templates, and where each came from.
#[derive(Debug, Default)]
struct Templates {
    markdown: Option<String>,
    text: Option<String>,
    origin: Vec<String>,
}

impl TemplateArgs {
    fn load(&self) -> anyhow::Result<Templates> {
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
    fn render(
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

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            // Errors quote what the apiserver, a pprof endpoint or a file said: hostile
            // control characters in them must not drive the terminal, and a line break in a
            // quoted name must not start a line that passes for one of ours.
            // Nor may a password given in a URL (a target, an archive) come back in the error.
            let message = error_message(&err);
            let message = capture::endpoints::without_credentials(&message);
            let message = report::terminal_safe(&message, true).replace('\n', "\n  ");
            let _ = writeln!(stderr, "error: {message}");
            ExitCode::from(exit_code_for(&err))
        }
    }
}

/// The error and its causes, outermost first, joined by `: `; a cause whose text the message
/// already holds (errors that print their source, as `"{path}: {source}"` does) is not repeated.
pub fn error_message(err: &anyhow::Error) -> String {
    crate::errors::chain_message(err.as_ref())
}

/// Executes a parsed command; errors carry the context that names what was wrong.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let show_bar = !cli.quiet && std::io::stderr().is_terminal();
    match cli.command {
        Command::Run(args) => run_live(args, show_bar),
        Command::Capture(args) => capture_only(args, show_bar),
        Command::Diff(args) => diff(args),
        Command::Forward(args) => forward(args),
        Command::Archive(args) => archive::command(args, show_bar),
        Command::Report(args) => rerender(args),
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = Policy::from_file(&file)?;
            print!("{}", policy.describe());
            Ok(exit::PASS)
        }
    }
}

/// Bad input exits 2 and names what to fix; anything else is an infrastructure failure.
fn exit_code_for(err: &anyhow::Error) -> u8 {
    let bad_input = err.chain().any(|e| {
        e.is::<InputError>()
            || e.is::<PolicyError>()
            || e.is::<compare::CompareError>()
            || e.is::<judge::JudgeError>()
            || e.is::<BadInput>()
            || e.is::<PlanError>()
            || e.downcast_ref::<TargetError>()
                .is_some_and(TargetError::is_bad_input)
            || e.downcast_ref::<crate::archive::ArchiveError>()
                .is_some_and(crate::archive::ArchiveError::is_bad_input)
            || e.is::<report::ReportError>()
            || e.is::<report::TemplateError>()
    });
    if bad_input {
        exit::BAD_INPUT
    } else {
        exit::INFRASTRUCTURE
    }
}

/// An input problem found by the command line itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

/// `gate report`: reads a saved report.json and prints it again in the format asked for.
fn rerender(args: ReportArgs) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        BadInput(format!(
            "{}: cannot read ({e}); give the report.json that --out wrote",
            args.file.display()
        ))
    })?;
    let report = Report::from_json(&text).with_context(|| args.file.display().to_string())?;
    let options = RenderOptions {
        top: args.top,
        all_sample_types: args.all_samples,
    };
    let rendered = args
        .templates
        .load()?
        .render(&report, args.format, &options)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(rendered.as_bytes())
        .context("writing to standard output")?;
    Ok(exit::PASS)
}

fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    Ok(match path {
        Some(p) => Policy::from_file(p)?,
        None => Policy::builtin_default(),
    })
}

fn diff(args: DiffArgs) -> anyhow::Result<u8> {
    // Claimed first, cleared of an earlier run's reports and flame graphs (its profiles, which
    // this diff may be reading, stay).
    let out = args.out.as_deref().map(OutDir::claim).transpose()?;
    if let Some(out) = &out {
        out.clear_earlier_run(EarlierProfiles::Keep)?;
    }
    let policy = load_policy(args.judge.policy.as_deref())?;
    let limits = decode_limits(args.judge.max_profile_mib, policy.footprint);
    let view = args.judge.label_view();
    let label_rules = policy.rules.iter().any(|r| r.label_filter().is_some());
    if !view.is_everything() || label_rules {
        for side in [&args.baseline, &args.candidate] {
            refuse_history_with_labels(&side.display().to_string())?;
        }
        let read = |v: &LabelView| read_groups(&args.baseline, &args.candidate, limits, v);
        let report = judge_groups(
            &policy,
            &view,
            &read(&view)?,
            &read_rule_views(&policy, &view, read),
            args.baseline.display().to_string(),
            args.candidate.display().to_string(),
        )?;
        if let Some(dir) = &args.out {
            write_flames(dir, &args.baseline, &args.candidate, &report, limits);
        }
        return emit(&report, &args.judge, args.out.as_deref());
    }
    // An archived side is copied into --out, where its flame graph half is drawn from.
    let copies = |name: &str| out.as_ref().map(|o| o.path().join("profiles").join(name));
    let is_history = |path: &Path| path.to_str().is_some_and(|t| t.starts_with("archive+"));
    let read = |path: &Path, name: &str| -> anyhow::Result<(SideProfiles, String)> {
        if let Some(history) = path
            .to_str()
            .map(|t| archive::read_history(t, limits, copies(name).as_deref()))
            .transpose()?
            .flatten()
        {
            return Ok(history);
        }
        Ok((inputs::read_side(path, limits)?, path.display().to_string()))
    };
    if let Some(o) = &out {
        let sides = [(&args.baseline, "baseline"), (&args.candidate, "candidate")];
        for (path, name) in sides {
            if !is_history(path) {
                continue;
            }
            // The archived side is copied over profiles/NAME: a saved side there would be lost.
            let copy = o.path().join("profiles").join(name);
            for (other, _) in sides.iter().filter(|(p, _)| !is_history(p)) {
                refuse_inside_out(other, &copy)?;
            }
            o.clear_earlier_run(EarlierProfiles::Side(name))?;
        }
    }
    let (baseline, candidate) = std::thread::scope(|s| {
        let b = s.spawn(|| read(&args.baseline, "baseline"));
        let c = read(&args.candidate, "candidate");
        (b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), c)
    });
    let ((baseline, baseline_name), (candidate, candidate_name)) = (baseline?, candidate?);
    let report = judge(
        &policy,
        &baseline,
        &candidate,
        baseline_name,
        candidate_name,
    )?;
    if let Some(dir) = &args.out {
        let side = |path: &Path, name: &str| match copies(name) {
            Some(copy) if is_history(path) => copy,
            _ => path.to_path_buf(),
        };
        write_flames(
            dir,
            &side(&args.baseline, "baseline"),
            &side(&args.candidate, "candidate"),
            &report,
            limits,
        );
    }
    emit(&report, &args.judge, args.out.as_deref())
}

/// Label views read profile files; an archived side comes back already decoded, whole.
fn refuse_history_with_labels(side: &str) -> anyhow::Result<()> {
    if side.starts_with("archive+") {
        return Err(BadInput(format!(
            "{side}: --tag, --tag-ignore, --by-label and policy rules with labels read profile files, and an archived side is read whole; drop the label options, or copy the run's profiles out of the archive and compare those"
        ))
        .into());
    }
    Ok(())
}

/// Reads both sides through a label view: with a split, the whole (kept samples) first, then
/// one group per label value found on both sides.
fn read_groups(
    baseline: &Path,
    candidate: &Path,
    limits: DecodeOptions,
    view: &LabelView,
) -> anyhow::Result<Vec<LabelGroup>> {
    let read = |v: &LabelView| {
        std::thread::scope(|s| {
            let b = s.spawn(|| inputs::read_side_view(baseline, limits, v));
            let c = inputs::read_side_view(candidate, limits, v);
            (b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), c)
        })
    };
    let whole_view = LabelView {
        by: None,
        ..view.clone()
    };
    let (b, c) = read(&whole_view);
    let mut groups = label_groups(&whole_view, b?, c?)?;
    if view.by.is_some() {
        let (b, c) = read(view);
        groups.extend(label_groups(view, b?, c?)?);
    }
    Ok(groups)
}

/// Both sides read through each label view that rules narrowed by label ask for
/// ([`judge::rule_views`]); a view that matches no sample is left out, and its rules say so
/// when judged.
fn read_rule_views(
    policy: &Policy,
    view: &LabelView,
    read: impl Fn(&LabelView) -> anyhow::Result<Vec<LabelGroup>>,
) -> Vec<(String, Vec<LabelGroup>)> {
    judge::rule_views(policy, view)
        .into_iter()
        .filter_map(|(filter, narrowed)| match read(&narrowed) {
            Ok(groups) => Some((filter, groups)),
            Err(e) => {
                tracing::debug!("samples with {filter}: {e:#}");
                None
            }
        })
        .collect()
}

/// Writes `flame-<profile>.svg`, a differential flame graph, for every profile kind compared.
/// The stacks are read again from the files of each side; a graph that cannot be drawn is a
/// warning, never a failure of the gate.
fn write_flames(
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
fn emit(report: &Report, args: &JudgeArgs, out: Option<&Path>) -> anyhow::Result<u8> {
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
fn github(
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
fn append_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("appending to {}", path.display()))
}

/// Writes report.txt, report.md and report.json, each whole or not at all.
fn write_reports(
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
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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

/// Sets up `tracing` on standard error: errors only with `--quiet`, every request with
/// `--verbose`; otherwise progress lines when standard error is not a terminal (CI), and only
/// warnings above the progress bar when it is.
fn init_logging(quiet: bool, verbose: bool) {
    let terminal = std::io::stderr().is_terminal();
    let level = if quiet {
        "error"
    } else if verbose {
        "debug"
    } else if terminal {
        "warn"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("profile_gate={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(capture::StderrWriter)
        .with_ansi(terminal)
        .with_target(false)
        .without_time()
        .try_init();
}

/// One side of `gate run`: live pods, or saved profiles.
#[derive(Debug)]
enum SideInput {
    Live(SideTargets),
    Kube(KubeSideSpec),
    Local(PathBuf),
    Archive(crate::archive::ArchiveRef),
}

impl SideInput {
    /// The side as the report names it.
    fn describe(&self) -> String {
        match self {
            SideInput::Live(t) => t.targets.join(", "),
            SideInput::Kube(k) => k
                .targets
                .iter()
                .map(|(a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            SideInput::Local(p) => p.display().to_string(),
            SideInput::Archive(r) => r.text.clone(),
        }
    }
}

/// Sorts a side's targets into live pods (URLs), Kubernetes objects, or one saved path; mixing
/// them is refused.
fn resolve_side(side: &str, args: &[String]) -> anyhow::Result<SideInput> {
    if let [one] = args {
        if let Some(r) = archive::parse_history(one)? {
            return Ok(SideInput::Archive(r));
        }
    }
    if let Some(h) = args.iter().find(|a| a.starts_with("archive+")) {
        return Err(BadInput(format!(
            "{side}: {h} names archived history; give it alone, not with other targets"
        ))
        .into());
    }
    let mut urls = Vec::new();
    let mut kube = Vec::new();
    let mut paths = Vec::new();
    for arg in args {
        match targets::parse(arg, |p| Path::new(p).exists())
            .map_err(|e| BadInput(format!("{side}: {e}")))?
        {
            Target::Http { name, url } => urls.push((arg.clone(), name, url)),
            Target::Kube(r) => kube.push((arg.clone(), r)),
            Target::Path(path) => {
                if !path.exists() {
                    return Err(BadInput(format!(
                        "{side} target {arg}: no such file or directory, and not a URL (a live pod is http://HOST:PORT) nor a Kubernetes object ([NAMESPACE/]KIND/NAME, KIND one of svc, deploy, sts, pod)"
                    ))
                    .into());
                }
                paths.push(path);
            }
        }
    }
    match (urls.is_empty(), kube.is_empty(), paths.len()) {
        (false, true, 0) => Ok(SideInput::Live(capture::endpoints::side_targets(side, &urls)?)),
        (true, false, 0) => {
            capture::endpoints::check_name(side)
                .map_err(|why| BadInput(format!("bad side name {side:?}: {why}")))?;
            Ok(SideInput::Kube(KubeSideSpec {
                side: side.to_owned(),
                targets: kube,
            }))
        }
        (true, true, 1) => Ok(SideInput::Local(paths.remove(0))),
        (true, true, _) => Err(BadInput(format!(
            "{side}: give one saved directory (it may hold one subdirectory per pod), not {}",
            paths.len()
        ))
        .into()),
        _ => Err(BadInput(format!(
            "{side}: mixes kinds of target; a side is either pprof URLs, Kubernetes objects, or one saved file or directory"
        ))
        .into()),
    }
}

/// Kubernetes settings from the flags; the port-forward upgrade deadline follows
/// `--timeout-margin` (half of it, between 500 ms and 5 s).
fn kube_options(k: &KubeArgs, timeout_margin: Duration) -> anyhow::Result<KubeOptions> {
    if k.max_pods == Some(0) {
        return Err(BadInput("--max-pods must be at least 1".to_owned()).into());
    }
    Ok(KubeOptions {
        kubeconfig: k.kubeconfig.clone(),
        context: k.context.clone(),
        namespace: k.namespace.clone(),
        port: targets::PortSpec::parse(&k.port)?,
        max_pods: k.max_pods,
        seed: k.pod_seed,
        upgrade_timeout: (timeout_margin / 2)
            .clamp(Duration::from_millis(500), Duration::from_secs(5)),
        ..KubeOptions::default()
    })
}

/// Resolves the Kubernetes sides and opens their port-forwards; the live sides in order, the
/// session to keep alive during the capture.
fn live_sides(
    args: &CaptureArgs,
    inputs: &[&SideInput],
) -> anyhow::Result<(Vec<SideTargets>, Option<KubeSession>)> {
    let specs: Vec<KubeSideSpec> = inputs
        .iter()
        .filter_map(|s| match s {
            SideInput::Kube(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    let (session, mut kube_targets) = if specs.is_empty() {
        (None, Vec::new())
    } else {
        let (session, targets) =
            KubeSession::start(&kube_options(&args.kube, args.timeout_margin)?, &specs)?;
        (Some(session), targets)
    };
    let mut live = Vec::new();
    for input in inputs {
        match input {
            SideInput::Live(t) => live.push(t.clone()),
            SideInput::Kube(_) => live.push(kube_targets.remove(0)),
            SideInput::Local(_) | SideInput::Archive(_) => {}
        }
    }
    Ok((live, session))
}

/// The validated capture plan from the flags.
fn plan_from(
    args: &CaptureArgs,
    default_kinds: &[ProfileKind],
) -> Result<capture::CapturePlan, PlanError> {
    let mut settings = capture::PlanSettings::new(args.duration, args.windows);
    settings.kinds = match &args.profiles {
        Some(list) => list.0.clone(),
        None => default_kinds.to_vec(),
    };
    settings.gap = args.window_gap;
    settings.timeout_margin = args.timeout_margin;
    settings.max_body_bytes = args.max_body_mib.saturating_mul(1 << 20);
    capture::CapturePlan::new(&settings)
}

fn decode_limits(max_profile_mib: u64, footprint: Footprint) -> DecodeOptions {
    let max_decompressed_bytes = max_profile_mib.saturating_mul(1 << 20);
    DecodeOptions {
        max_decompressed_bytes,
        footprint,
        budget: Some(memory_budget(max_decompressed_bytes)),
    }
}

/// The run's one bound on inflated profile bytes at once: two profiles at their limit, so two
/// cores stay busy, and however many pods answer with bombs, no more than that is inflated.
fn memory_budget(max_decompressed_bytes: u64) -> &'static profile::MemoryBudget {
    static BUDGET: std::sync::OnceLock<profile::MemoryBudget> = std::sync::OnceLock::new();
    BUDGET.get_or_init(|| {
        profile::MemoryBudget::new(max_decompressed_bytes.saturating_mul(2).saturating_add(2))
    })
}

/// Runs the capture engine on a runtime of its own. A stop signal (SIGINT, SIGTERM, SIGHUP)
/// ends it early and keeps what it has; with `spool`, each profile is written there as it
/// arrives, so that even a run killed outright leaves its profiles.
fn capture_live(
    plan: &capture::CapturePlan,
    sides: &[SideTargets],
    limits: DecodeOptions,
    show_bar: bool,
    spool: Option<&Path>,
    warmer: Option<Arc<dyn capture::ConnectionWarmer>>,
) -> anyhow::Result<Capture> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CaptureError::Runtime(e.to_string()))?;
    let progress: Arc<dyn capture::Progress> = if show_bar {
        Arc::new(capture::BarProgress::new())
    } else {
        Arc::new(capture::NoProgress)
    };
    let options = capture::CaptureOptions {
        decode_limits: limits,
        progress,
        cancel: stop::watch(),
        spool: spool.map(Path::to_path_buf),
        warmer,
    };
    let result = runtime.block_on(capture::capture(plan, sides, options));
    // Idle pooled connections end with the runtime, without waiting.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(result?)
}

/// Writes every captured profile and manifest.json under `out`, each file whole or absent.
fn save_capture(out: &Path, capture: &Capture) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).map_err(|e| {
        BadInput(format!(
            "{}: cannot create the output directory ({e})",
            out.display()
        ))
    })?;
    // Spooled profiles of pods dropped after the capture (restarted, deleted) do not belong
    // to the run.
    let kept: BTreeSet<PathBuf> = capture.profiles.iter().map(|p| p.relative_path()).collect();
    for side in &capture.manifest.sides {
        if side.source == capture::manifest::SideSource::Live {
            out::remove_profiles_except(out, &side.side, &kept)?;
        }
    }
    for p in &capture.profiles {
        let path = out.join(p.relative_path());
        // Spooled as it arrived (whole, by rename): written again only if that failed.
        let spooled = std::fs::metadata(&path).is_ok_and(|m| m.len() == p.bytes.len() as u64);
        if spooled {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomically(&path, &p.bytes)?;
    }
    let mut json =
        serde_json::to_string_pretty(&capture.manifest).context("serialising the manifest")?;
    json.push('\n');
    write_atomically(&out.join("manifest.json"), json.as_bytes())
}

/// Logs the manifest's warnings (missing windows, lost pods) once the capture is over.
fn log_warnings(manifest: &capture::Manifest) {
    for w in &manifest.warnings {
        tracing::warn!("{w}");
    }
}

/// `gate forward`: local URLs for every pod behind the targets, open until Ctrl-C or `--for`.
fn forward(args: ForwardArgs) -> anyhow::Result<u8> {
    let mut targets = Vec::new();
    for arg in &args.targets {
        match targets::parse(arg, |_| false).map_err(|e| BadInput(e.to_string()))? {
            Target::Kube(r) => targets.push((arg.clone(), r)),
            _ => {
                return Err(BadInput(format!(
                    "{arg}: gate forward takes Kubernetes targets ([NAMESPACE/]KIND/NAME, e.g. svc/stable)"
                ))
                .into())
            }
        }
    }
    let spec = KubeSideSpec {
        side: "forward".to_owned(),
        targets,
    };
    let options = kube_options(&args.kube, capture::plan::DEFAULT_TIMEOUT_MARGIN)?;
    let (session, _) = KubeSession::start(&options, std::slice::from_ref(&spec))?;
    let mut stdout = std::io::stdout().lock();
    for line in session.describe_forwards() {
        writeln!(stdout, "{}", line.trim_start_matches("forward pod "))?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!("forwarding; Ctrl-C stops");
    session.wait(args.for_duration);
    Ok(exit::PASS)
}

/// `gate capture`: one side, saved, not compared.
fn capture_only(args: CaptureCommandArgs, show_bar: bool) -> anyhow::Result<u8> {
    let plan = plan_from(&args.capture, &ProfileKind::ALL)?;
    capture::endpoints::check_name(&args.side)
        .map_err(|why| BadInput(format!("--side {:?}: {why}", args.side)))?;
    let input = resolve_side(&args.side, &args.targets)?;
    if let SideInput::Local(_) | SideInput::Archive(_) = &input {
        return Err(BadInput(format!(
            "{}: gate capture takes pprof URLs (http://HOST:PORT) or Kubernetes objects (svc/NAME); to compare saved profiles use gate diff",
            input.describe()
        ))
        .into());
    }
    let out = OutDir::claim(&args.out)?;
    stop::watch();
    out.clear_earlier_run(EarlierProfiles::Side(&args.side))?;
    let (targets, session) = live_sides(&args.capture, &[&input])?;
    let mut captured = capture_live(
        &plan,
        &targets,
        decode_limits(args.max_profile_mib, Footprint::default()),
        show_bar,
        Some(out.path()),
        session.as_ref().map(KubeSession::warmer),
    )?;
    if let Some(session) = session {
        session.finish(&mut captured);
    }
    save_capture(out.path(), &captured)?;
    log_warnings(&captured.manifest);
    // Stopped: said first, so that a stop before any window reads as the stop it was.
    if captured.manifest.interrupted {
        return Err(Stopped(format!(
            "stopped by {}; the {} profiles captured so far and manifest.json are in {}",
            stop::received().unwrap_or("a stop signal"),
            captured.profiles.len(),
            out.path().display()
        ))
        .into());
    }
    captured.side_profiles(&args.side)?;
    println!(
        "Captured {} profiles into {} ({}); see manifest.json",
        captured.profiles.len(),
        args.out.join("profiles").join(&args.side).display(),
        captured.manifest.facts()
    );
    Ok(exit::PASS)
}

/// `gate run`: capture the live sides, read the saved ones, compare, judge, report.
fn run_live(args: RunArgs, show_bar: bool) -> anyhow::Result<u8> {
    let plan = plan_from(&args.capture, &ProfileKind::ALL)?;
    // The output directory first: a file or a folder in use is bad input before anything slow.
    let out = OutDir::claim(&args.out)?;
    // From here a stop signal asks the run to stop and report, instead of ending it.
    stop::watch();
    let result = run_live_into(args, &plan, &out, show_bar);
    if let Err(e) = &result {
        // CI keeps --out as the job's artifact: it says why there is no report.
        out.record_failure(&capture::endpoints::without_credentials(&error_message(e)));
    }
    result
}

/// `gate run` once its output directory is claimed.
fn run_live_into(
    args: RunArgs,
    plan: &capture::CapturePlan,
    out: &OutDir,
    show_bar: bool,
) -> anyhow::Result<u8> {
    let started = chrono::Utc::now();
    let baseline = resolve_side("baseline", &args.baseline)?;
    let candidate = resolve_side("candidate", &args.candidate)?;
    let archive_store = archive::open_for_run(&args.archive)?;
    let urls: Vec<SideTargets> = [&baseline, &candidate]
        .into_iter()
        .filter_map(|s| match s {
            SideInput::Live(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    capture::endpoints::check_disjoint(&urls.iter().collect::<Vec<_>>())?;
    let policy = load_policy(args.judge.policy.as_deref())?;
    let limits = decode_limits(args.judge.max_profile_mib, policy.footprint);

    for input in [&baseline, &candidate] {
        if let SideInput::Local(path) = input {
            refuse_inside_out(path, out.path())?;
        }
    }
    out.clear_earlier_run(EarlierProfiles::All)?;
    // Saved sides first: a bad path fails before minutes of capture. An archived side's
    // files are copied into the output, as a captured side's are written there.
    let read_local = |name: &str,
                      s: &SideInput|
     -> anyhow::Result<Option<(SideProfiles, String)>> {
        match s {
            SideInput::Local(path) => Ok(Some((inputs::read_side(path, limits)?, s.describe()))),
            SideInput::Archive(r) => Ok(Some(crate::archive::read_side_into(
                r,
                limits,
                Some(&out.path().join("profiles").join(name)),
            )?)),
            SideInput::Live(_) | SideInput::Kube(_) => Ok(None),
        }
    };
    let local = [
        read_local("baseline", &baseline)?,
        read_local("candidate", &candidate)?,
    ];

    // Kubernetes sides: resolved and forwarded now, after every cheap check.
    let (live, session) = live_sides(&args.capture, &[&baseline, &candidate])?;
    let mut captured = if live.is_empty() {
        None
    } else {
        Some(capture_live(
            plan,
            &live,
            limits,
            show_bar,
            Some(out.path()),
            session.as_ref().map(KubeSession::warmer),
        )?)
    };
    if let (Some(c), Some(session)) = (captured.as_mut(), session) {
        session.finish(c);
    }
    let mut sides: Vec<Result<SideProfiles, CaptureError>> = Vec::with_capacity(2);
    for (i, (name, input)) in [("baseline", &baseline), ("candidate", &candidate)]
        .into_iter()
        .enumerate()
    {
        sides.push(match (input, &captured) {
            (SideInput::Local(_) | SideInput::Archive(_), _) => {
                Ok(local[i].clone().map(|(p, _)| p).unwrap_or_default())
            }
            (SideInput::Live(_) | SideInput::Kube(_), Some(c)) => c.side_profiles(name),
            (SideInput::Live(_) | SideInput::Kube(_), None) => Err(CaptureError::NothingCaptured {
                side: name.to_owned(),
                reasons: Vec::new(),
            }),
        });
    }
    if let Some(c) = captured.as_mut() {
        // Record the saved sides too, in side order, and the kinds only one side has.
        for (i, input) in [&baseline, &candidate].into_iter().enumerate() {
            if let SideInput::Local(_) | SideInput::Archive(_) = input {
                c.manifest.sides.insert(
                    i.min(c.manifest.sides.len()),
                    capture::manifest::SideRecord {
                        side: ["baseline", "candidate"][i].to_owned(),
                        source: capture::manifest::SideSource::Local,
                        targets: vec![input.describe()],
                        pods: Vec::new(),
                        kubernetes: None,
                    },
                );
            }
        }
        if let [Ok(b), Ok(cand)] = sides.as_slice() {
            for (kind, only, other) in one_sided_kinds(b, cand) {
                c.manifest.warnings.push(format!(
                    "{kind}: profiles on the {only} side only, none usable on the {other} side; not compared"
                ));
            }
        }
        save_capture(out.path(), c)?;
        log_warnings(&c.manifest);
    }
    // Stopped: what every side has a window of is still judged, marked partial.
    let partial = match captured.as_ref().filter(|c| c.manifest.interrupted) {
        None => None,
        Some(c) => {
            let how = stop::received().unwrap_or("a stop signal");
            let complete = c.windows_from_every_side();
            if complete == 0 || sides.iter().any(Result::is_err) {
                return Err(Stopped(format!(
                    "stopped by {how} before a window was captured on both sides: nothing to judge; the manifest and the profiles captured so far are in {}",
                    out.path().display()
                ))
                .into());
            }
            Some(format!(
                "stopped by {how}: the report covers {complete} of {} windows",
                plan.windows
            ))
        }
    };
    // Both sides empty because one could not be reached: that side is the one to name.
    if let (Some(c), [Err(_), Err(_)]) = (&captured, sides.as_slice()) {
        let unreachable = |name: &str| {
            c.manifest.sides.iter().any(|s| {
                s.side == name && !s.pods.is_empty() && s.pods.iter().all(|p| p.error.is_some())
            })
        };
        if !unreachable("baseline") && unreachable("candidate") {
            sides.swap(0, 1);
        }
    }
    let mut sides = sides.into_iter();
    let baseline_profiles = sides
        .next()
        .unwrap_or_else(|| Ok(SideProfiles::default()))?;
    let candidate_profiles = sides
        .next()
        .unwrap_or_else(|| Ok(SideProfiles::default()))?;
    if captured.is_some()
        && !baseline_profiles
            .kinds
            .keys()
            .any(|k| candidate_profiles.kinds.contains_key(k))
    {
        return Err(CaptureError::NoCommonKind {
            baseline: baseline_profiles.kind_names(),
            candidate: candidate_profiles.kind_names(),
        }
        .into());
    }
    let name = |i: usize, s: &SideInput| {
        local[i]
            .as_ref()
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| s.describe())
    };
    let view = args.judge.label_view();
    let label_rules = policy.rules.iter().any(|r| r.label_filter().is_some());
    let mut report = if view.is_everything() && !label_rules {
        judge(
            &policy,
            &baseline_profiles,
            &candidate_profiles,
            name(0, &baseline),
            name(1, &candidate),
        )?
    } else {
        // Labels are read from the files just saved (or given): the capture kept no labels.
        let path = |side: &SideInput, name: &str| -> anyhow::Result<PathBuf> {
            Ok(match side {
                SideInput::Local(path) => path.clone(),
                SideInput::Live(_) | SideInput::Kube(_) => out.path().join("profiles").join(name),
                SideInput::Archive(_) => {
                    refuse_history_with_labels(&side.describe())?;
                    unreachable!("archived sides are refused above")
                }
            })
        };
        let (b, c) = (path(&baseline, "baseline")?, path(&candidate, "candidate")?);
        let read = |v: &LabelView| read_groups(&b, &c, limits, v);
        judge_groups(
            &policy,
            &view,
            &read(&view)?,
            &read_rule_views(&policy, &view, read),
            name(0, &baseline),
            name(1, &candidate),
        )?
    };
    // A kind asked for and refused or lost on a side: its rules are inconclusive, not skipped.
    if let Some(c) = &captured {
        let unavailable: Vec<policy::Unavailable> = c
            .kinds_missing()
            .into_iter()
            .map(|(kind, side, reason)| policy::Unavailable { kind, side, reason })
            .collect();
        if !unavailable.is_empty() {
            report.verdict = policy::mark_unavailable(&policy, report.verdict, &unavailable);
        }
    }
    if let Some(why) = &partial {
        report.verdict.summary = format!("partial ({why}): {}", report.verdict.summary);
        report.partial = Some(why.clone());
    }
    if let Some(manifest) = captured.as_ref().map(|c| &c.manifest) {
        report.capture_facts = Some(manifest.facts());
        report.capture = Some(capture::notes_json(manifest));
        report.warnings.extend(manifest.warnings.iter().cloned());
    }
    let side_dir = |name: &str, input: &SideInput| match input {
        SideInput::Local(p) => p.clone(),
        SideInput::Live(_) | SideInput::Kube(_) | SideInput::Archive(_) => {
            out.path().join("profiles").join(name)
        }
    };
    write_flames(
        out.path(),
        &side_dir("baseline", &baseline),
        &side_dir("candidate", &candidate),
        &report,
        limits,
    );
    let code = emit(&report, &args.judge, Some(out.path()))?;
    if let Some(store) = archive_store {
        archive::after_run(archive::RunRecord {
            args: &args.archive,
            store,
            out: out.path(),
            started,
            captured: captured.as_ref(),
            sides: [("baseline", &baseline), ("candidate", &candidate)],
            policy: args.judge.policy.as_deref(),
            report: &report,
        })?;
    }
    if let Some(why) = partial {
        return Err(Stopped(format!(
            "{why}; the report of what was captured is in {} (verdict {}, marked partial)",
            out.path().display(),
            report.verdict.outcome.name()
        ))
        .into());
    }
    Ok(code)
}

/// A run stopped by a signal (exit 3): what it kept is on disk, and a report when it could.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Stopped(String);

/// Refuses a saved side inside the output directory, which the run clears first.
fn refuse_inside_out(side: &Path, out: &Path) -> Result<(), BadInput> {
    let (Ok(side_abs), Ok(out_abs)) = (side.canonicalize(), out.canonicalize()) else {
        return Ok(());
    };
    if side_abs.starts_with(&out_abs) {
        return Err(BadInput(format!(
            "{}: is inside {}, which this run clears of an earlier run's files first; copy the profiles elsewhere or give another --out",
            side.display(),
            out.display()
        )));
    }
    Ok(())
}

/// Kinds present on one side only: `(kind, side that has it, side that has not)`.
fn one_sided_kinds(
    baseline: &SideProfiles,
    candidate: &SideProfiles,
) -> Vec<(ProfileKind, &'static str, &'static str)> {
    let mut out = Vec::new();
    for k in baseline.kinds.keys() {
        if !candidate.kinds.contains_key(k) {
            out.push((*k, "baseline", "candidate"));
        }
    }
    for k in candidate.kinds.keys() {
        if !baseline.kinds.contains_key(k) {
            out.push((*k, "candidate", "baseline"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{error_message, verdict_exit_code, FailOn};

    use crate::policy::Outcome;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(crate::inputs::InputError::Io {
            path: "a.pb.gz".into(),
            source: io,
        })
        .context("reading the baseline");
        assert_eq!(
            error_message(&err),
            "reading the baseline: a.pb.gz: cannot read (disk on fire); check the path"
        );
    }

    #[test]
    fn fail_on_maps_each_verdict_to_its_exit_code() {
        use Outcome::*;
        let codes = |f| [Pass, Warn, Inconclusive, Fail].map(|o| verdict_exit_code(o, f));
        assert_eq!(codes(FailOn::Fail), [0, 0, 0, 1]);
        assert_eq!(codes(FailOn::Inconclusive), [0, 0, 1, 1]);
        assert_eq!(codes(FailOn::Never), [0, 0, 0, 0]);
    }
}
