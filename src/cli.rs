//! The `gate` command line: raw arguments turned into validated settings, then the pipeline.
//!
//! This is the one place that knows about exit codes and writes report files.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::capture::{self, Capture, CaptureError, PlanError, SideTargets, TargetSpec};
use crate::compare::{self, KindComparison};
use crate::inputs::{self, InputError, SideProfiles};
use crate::policy::{self, Outcome, Policy, PolicyError};
use crate::profile::{DecodeLimits, ProfileKind};
use crate::report::{self, Format, RenderOptions, Report};

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

/// Profile Gate: fail a release when the candidate's pprof profiles regress beyond a policy.
#[derive(Debug, Parser)]
#[command(name = "gate", version, about, long_about = None)]
pub struct Cli {
    /// Print only errors on standard error: no progress, no warnings (the report still goes
    /// to standard output).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log every request on standard error.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture both sides live in matched windows, compare, apply the policy, and report.
    ///
    /// Each side is one or more pprof base URLs, one per pod (`--baseline URL --baseline
    /// URL2`; `NAME=URL` names the pod), or one saved file or directory of profiles (then that
    /// side is read as `gate diff` reads it). Every pod of both sides starts each window at the
    /// same instant. `--out` receives report.txt, report.md, report.json, flame-<profile>.svg,
    /// profiles/<side>/<pod>/<profile>-<window>.pb.gz and manifest.json.
    Run(RunArgs),
    /// Compare saved profiles offline: each side a .pb.gz file or a directory of them.
    ///
    /// A directory holds one file per pod, or one subdirectory per pod with one file per
    /// window (`<pod>/<profile>-<window>.pb.gz`); every profile kind found on both sides is
    /// compared.
    Diff(DiffArgs),
    /// Capture profiles live from pprof endpoints into a directory, without comparing.
    ///
    /// Writes DIR/profiles/<side>/<pod>/<profile>-<window>.pb.gz (side `baseline` unless
    /// `--side` says otherwise) and DIR/manifest.json. A later `gate diff` or `gate run` can
    /// take DIR/profiles/<side> as a side.
    Capture(CaptureCommandArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Re-render a saved report.json as text, Markdown or JSON (exit 0; the verdict is in it).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The saved report (report.json from --out).
    file: PathBuf,
    /// Format printed on standard output.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Rows per table.
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Show every sample type, not only each profile's main one.
    #[arg(long)]
    all_samples: bool,
    #[command(flatten)]
    templates: TemplateArgs,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The baseline (stable) profiles: a file or a directory.
    baseline: PathBuf,
    /// The candidate (canary) profiles: a file or a directory.
    candidate: PathBuf,
    /// Write report.txt, report.md, report.json and flame-<profile>.svg (differential flame
    /// graphs) into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    judge: JudgeArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Baseline: a pprof URL per pod (`http://HOST:PORT[/PREFIX]` or `NAME=URL`), repeatable;
    /// or one saved file or directory of profiles.
    #[arg(long, required = true, num_args = 1.., value_name = "TARGET")]
    baseline: Vec<String>,
    /// Candidate: a pprof URL per pod, repeatable; or one saved file or directory.
    #[arg(long, required = true, num_args = 1.., value_name = "TARGET")]
    candidate: Vec<String>,
    /// Directory for the reports, the captured profiles and manifest.json.
    #[arg(long, value_name = "DIR", default_value = "gate-out")]
    out: PathBuf,
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    judge: JudgeArgs,
}

#[derive(Debug, Args)]
struct CaptureCommandArgs {
    /// pprof URLs, one per pod: `http://HOST:PORT[/PREFIX]`, or `NAME=URL` to name the pod
    /// (default name: HOST-PORT).
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// Directory for profiles/<side>/<pod>/<profile>-<window>.pb.gz and manifest.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Name of the side: the directory under DIR/profiles/.
    #[arg(long, default_value = "baseline", value_name = "NAME")]
    side: String,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Largest decompressed profile accepted, in MiB (protects against gzip bombs).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    max_profile_mib: u64,
}

/// How to capture: windows, profiles, and the limits on each request.
#[derive(Debug, Args)]
struct CaptureArgs {
    /// Total profiled time, split into equal windows (e.g. 60s, 2m, 1m30s).
    #[arg(long, default_value = "60s", value_parser = duration_arg, value_name = "DURATION")]
    duration: Duration,
    /// Number of windows; each lasts DURATION / WINDOWS, a whole number of seconds.
    #[arg(long, default_value_t = 6, value_name = "N")]
    windows: u32,
    /// Profiles to capture, comma-separated: cpu, heap, allocs, goroutine, mutex, block.
    #[arg(
        long,
        default_value = "cpu,heap,allocs,goroutine,mutex,block",
        value_parser = kinds_arg,
        value_name = "LIST"
    )]
    profiles: KindList,
    /// Pause between windows, so each CPU profile is answered before the next one starts.
    #[arg(long, default_value = "250ms", value_parser = duration_arg, value_name = "DURATION")]
    window_gap: Duration,
    /// Time a request may take beyond its window (snapshots: in all) before it is abandoned.
    #[arg(long, default_value = "10s", value_parser = duration_arg, value_name = "DURATION")]
    timeout_margin: Duration,
    /// Largest HTTP response accepted, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    max_body_mib: u64,
}

/// Profile kinds from `--profiles`.
#[derive(Debug, Clone)]
struct KindList(Vec<ProfileKind>);

fn duration_arg(s: &str) -> Result<Duration, String> {
    capture::parse_duration(s).map_err(|e| e.to_string())
}

fn kinds_arg(s: &str) -> Result<KindList, String> {
    capture::parse_kinds(s)
        .map(KindList)
        .map_err(|e| e.to_string())
}

/// Options shared by every command that judges and reports.
#[derive(Debug, Args)]
struct JudgeArgs {
    /// Policy file (YAML); default: the built-in default policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Format printed on standard output.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Rows per table.
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Show every sample type, not only each profile's main one.
    #[arg(long)]
    all_samples: bool,
    /// Largest decompressed profile accepted, in MiB (protects against gzip bombs).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    max_profile_mib: u64,
    /// Publish on GitHub: one sticky pull-request comment (updated in place), a check run, the
    /// step summary and the action's outputs. On by default in GitHub Actions when
    /// GITHUB_TOKEN is set. Reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL and
    /// GITHUB_EVENT_PATH; a failure to publish is a warning, never a different exit code.
    #[arg(long, conflicts_with = "no_github")]
    github: bool,
    /// Do not publish on GitHub, not even in GitHub Actions.
    #[arg(long)]
    no_github: bool,
    #[command(flatten)]
    templates: TemplateArgs,
}

/// Templates that replace the shipped ones.
#[derive(Debug, Args)]
struct TemplateArgs {
    /// A minijinja template for the Markdown report (report.md, `--format markdown`, the
    /// pull-request comment). It sees `view` (what the shipped template shows, escaped) and
    /// `report` (report.json; escape with `| md_escape`).
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
    /// A minijinja template for the text report (report.txt, `--format text`).
    #[arg(long, value_name = "FILE")]
    text_template: Option<PathBuf>,
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

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file and print its rules in plain words.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err:#}");
            ExitCode::from(exit_code_for(&err))
        }
    }
}

/// Executes a parsed command; errors carry the context that names what was wrong.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let show_bar = !cli.quiet && std::io::stderr().is_terminal();
    match cli.command {
        Command::Run(args) => run_live(args, show_bar),
        Command::Capture(args) => capture_only(args, show_bar),
        Command::Diff(args) => diff(args),
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
            || e.is::<BadInput>()
            || e.is::<PlanError>()
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
    let policy = load_policy(args.judge.policy.as_deref())?;
    let limits = DecodeLimits {
        max_decompressed_bytes: args.judge.max_profile_mib.saturating_mul(1 << 20),
    };
    let (baseline, candidate) = std::thread::scope(|s| {
        let b = s.spawn(|| inputs::read_side(&args.baseline, limits));
        let c = inputs::read_side(&args.candidate, limits);
        (b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), c)
    });
    let (baseline, candidate) = (baseline?, candidate?);
    let report = judge(
        &policy,
        &baseline,
        &candidate,
        args.baseline.display().to_string(),
        args.candidate.display().to_string(),
    )?;
    if let Some(dir) = &args.out {
        write_flames(dir, &args.baseline, &args.candidate, &report, limits);
    }
    emit(&report, &args.judge, args.out.as_deref())
}

/// Writes `flame-<profile>.svg`, a differential flame graph, for every profile kind compared.
/// The stacks are read again from the files of each side; a graph that cannot be drawn is a
/// warning, never a failure of the gate.
fn write_flames(
    dir: &Path,
    baseline: &Path,
    candidate: &Path,
    report: &Report,
    limits: DecodeLimits,
) {
    use crate::report::flame;
    let kinds: Vec<ProfileKind> = report.comparisons.iter().map(|c| c.kind).collect();
    let stacks = |side: &Path| -> anyhow::Result<flame::SideStacks> {
        let mut stacks = flame::SideStacks::default();
        for (path, pod) in inputs::list_side(side)? {
            let (kind, profile) = inputs::read_raw_file(&path, &pod, limits)?;
            if kinds.contains(&kind) {
                stacks
                    .add(kind, &profile)
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

/// Compares two sides under a policy and builds the report.
fn judge(
    policy: &Policy,
    baseline: &SideProfiles,
    candidate: &SideProfiles,
    baseline_name: String,
    candidate_name: String,
) -> anyhow::Result<Report> {
    let common: Vec<_> = baseline
        .kinds
        .keys()
        .filter(|k| candidate.kinds.contains_key(k))
        .copied()
        .collect();
    if common.is_empty() {
        return Err(BadInput(format!(
            "the two sides have no profile kind in common: baseline has [{}], candidate has [{}]; compare profiles of the same kind (e.g. cpu with cpu)",
            baseline.kind_names(),
            candidate.kind_names()
        ))
        .into());
    }
    let unmatched: Vec<String> = baseline
        .kinds
        .keys()
        .chain(candidate.kinds.keys())
        .filter(|k| !common.contains(k))
        .map(|k| k.name().to_owned())
        .collect();

    let default_options = policy.compare_options();
    let mut normalizations = policy.normalizations();
    if !normalizations.contains(&default_options.normalize) {
        normalizations.insert(0, default_options.normalize);
    }
    let mut sets: Vec<(compare::Normalize, Vec<KindComparison>)> = Vec::new();
    for normalize in normalizations {
        let options = compare::CompareOptions {
            normalize,
            ..default_options
        };
        let comparisons = common
            .iter()
            .map(|k| compare::compare_kind(*k, &baseline.kinds[k], &candidate.kinds[k], &options))
            .collect::<Result<Vec<_>, _>>()?;
        sets.push((normalize, comparisons));
    }
    let verdict = policy::evaluate(policy, &sets);
    let comparisons = sets
        .into_iter()
        .find(|(n, _)| *n == default_options.normalize)
        .map(|(_, c)| c)
        .unwrap_or_default();
    let growth = leak_signals(baseline, candidate);
    let warnings = growth
        .iter()
        .filter(|g| g.leak_signal && g.side == "candidate")
        .map(|g| {
            format!(
                "{} {} grows in the candidate: {:+.1} per minute ({:+.0}% over the capture, p = {:.1e}); a leak?",
                g.growth.kind, g.growth.sample_type, g.growth.per_minute, g.growth.relative * 100.0, g.growth.p_value
            )
        })
        .collect();
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        baseline: baseline_name,
        candidate: candidate_name,
        verdict,
        comparisons,
        unmatched,
        growth,
        capture_facts: None,
        capture: None,
        warnings,
    })
}

/// Growth across windows of goroutines and of the live heap, on both sides: a leak shows as
/// a climb within the candidate that the baseline does not share.
fn leak_signals(baseline: &SideProfiles, candidate: &SideProfiles) -> Vec<report::SideGrowth> {
    use crate::profile::ProfileKind;
    let mut out = Vec::new();
    for (kind, sample) in [
        (ProfileKind::Goroutine, "goroutine"),
        (ProfileKind::Heap, "inuse_space"),
    ] {
        for (side, profiles) in [("baseline", baseline), ("candidate", candidate)] {
            let Some(pods) = profiles.kinds.get(&kind) else {
                continue;
            };
            if let Some(growth) = compare::trend::growth(kind, sample, pods) {
                out.push(report::SideGrowth {
                    side: side.to_owned(),
                    leak_signal: growth.is_leak_signal(LEAK_ALPHA, LEAK_MIN_RELATIVE),
                    growth,
                });
            }
        }
    }
    out
}

/// A climb is a leak signal when it is this unlikely under no growth...
const LEAK_ALPHA: f64 = 0.01;
/// ...and adds at least this fraction of the starting level over the capture.
const LEAK_MIN_RELATIVE: f64 = 0.10;

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
    Ok(match report.verdict.outcome {
        Outcome::Fail => exit::FAIL,
        Outcome::Pass | Outcome::Warn | Outcome::Inconclusive => exit::PASS,
    })
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
    Local(PathBuf),
}

impl SideInput {
    /// The side as the report names it.
    fn describe(&self) -> String {
        match self {
            SideInput::Live(t) => t.targets.join(", "),
            SideInput::Local(p) => p.display().to_string(),
        }
    }
}

/// Sorts a side's targets into live pods or one saved path; mixing them is refused.
fn resolve_side(side: &str, args: &[String]) -> anyhow::Result<SideInput> {
    let mut urls = Vec::new();
    let mut paths = Vec::new();
    for arg in args {
        match capture::parse_target(arg).map_err(|e| BadInput(format!("{side}: {e}")))? {
            TargetSpec::Http { name, url } => urls.push((arg.clone(), name, url)),
            TargetSpec::Kubernetes(_) if !Path::new(arg).exists() => {
                return Err(BadInput(format!(
                    "{side} target {arg}: Kubernetes targets are not supported yet; reach the pods with `kubectl port-forward` and give http://127.0.0.1:PORT for each"
                ))
                .into())
            }
            TargetSpec::Kubernetes(_) => paths.push(PathBuf::from(arg)),
            TargetSpec::Path(path) => {
                if !path.exists() {
                    return Err(BadInput(format!(
                        "{side} target {arg}: no such file or directory, and not a URL (a live pod is http://HOST:PORT)"
                    ))
                    .into());
                }
                paths.push(path);
            }
        }
    }
    match (urls.is_empty(), paths.len()) {
        (false, 0) => Ok(SideInput::Live(capture::plan::side_targets(side, &urls)?)),
        (true, 1) => Ok(SideInput::Local(paths.remove(0))),
        (true, _) => Err(BadInput(format!(
            "{side}: give one saved directory (it may hold one subdirectory per pod), not {}",
            paths.len()
        ))
        .into()),
        (false, _) => Err(BadInput(format!(
            "{side}: mixes URLs and saved profiles; a side is either live pods or one saved file or directory"
        ))
        .into()),
    }
}

/// The validated capture plan from the flags.
fn plan_from(args: &CaptureArgs) -> Result<capture::CapturePlan, PlanError> {
    let mut settings = capture::PlanSettings::new(args.duration, args.windows);
    settings.kinds = args.profiles.0.clone();
    settings.gap = args.window_gap;
    settings.timeout_margin = args.timeout_margin;
    settings.max_body_bytes = args.max_body_mib.saturating_mul(1 << 20);
    capture::CapturePlan::new(&settings)
}

fn decode_limits(max_profile_mib: u64) -> DecodeLimits {
    DecodeLimits {
        max_decompressed_bytes: max_profile_mib.saturating_mul(1 << 20),
    }
}

/// Runs the capture engine on a runtime of its own; Ctrl-C stops it and keeps what it has.
fn capture_live(
    plan: &capture::CapturePlan,
    sides: &[SideTargets],
    limits: DecodeLimits,
    show_bar: bool,
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let options = capture::CaptureOptions {
        decode_limits: limits,
        progress,
        cancel: Some(stop_rx),
    };
    let result = runtime.block_on(async move {
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
            }
        });
        let result = capture::capture(plan, sides, options).await;
        watcher.abort();
        result
    });
    // Idle pooled connections and the signal watcher end with the runtime, without waiting.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(result?)
}

/// Removes the profiles of an earlier capture from `profiles/<side>/`, so that the directory
/// holds this run's profiles only. Only files named like ours (`<profile>-<window>.pb.gz`, in
/// pod subdirectories) are removed.
fn clear_side(dir: &Path) -> anyhow::Result<()> {
    let Ok(pods) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for pod in pods.flatten() {
        let pod_dir = pod.path();
        if !pod_dir.is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&pod_dir) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let ours = name
                .strip_suffix(".pb.gz")
                .and_then(|stem| stem.rsplit_once('-'))
                .is_some_and(|(kind, window)| {
                    ProfileKind::from_name(kind).is_some()
                        && kind != "profile"
                        && !window.is_empty()
                        && window.bytes().all(|b| b.is_ascii_digit())
                });
            if ours {
                std::fs::remove_file(file.path())
                    .with_context(|| format!("removing {}", file.path().display()))?;
            }
        }
        let _ = std::fs::remove_dir(&pod_dir);
    }
    Ok(())
}

/// Writes every captured profile and manifest.json under `out`, each file whole or absent.
fn save_capture(out: &Path, capture: &Capture) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).map_err(|e| {
        BadInput(format!(
            "{}: cannot create the output directory ({e})",
            out.display()
        ))
    })?;
    for side in &capture.manifest.sides {
        if side.source == capture::manifest::SideSource::Live {
            clear_side(&out.join("profiles").join(&side.side))?;
        }
    }
    for p in &capture.profiles {
        let path = out.join(p.relative_path());
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

/// `gate capture`: one side, saved, not compared.
fn capture_only(args: CaptureCommandArgs, show_bar: bool) -> anyhow::Result<u8> {
    let plan = plan_from(&args.capture)?;
    capture::plan::check_name(&args.side)
        .map_err(|why| BadInput(format!("--side {:?}: {why}", args.side)))?;
    let targets = match resolve_side(&args.side, &args.targets)? {
        SideInput::Live(t) => t,
        SideInput::Local(p) => {
            return Err(BadInput(format!(
                "{}: gate capture takes pprof URLs (http://HOST:PORT); to compare saved profiles use gate diff",
                p.display()
            ))
            .into())
        }
    };
    let captured = capture_live(
        &plan,
        std::slice::from_ref(&targets),
        decode_limits(args.max_profile_mib),
        show_bar,
    )?;
    save_capture(&args.out, &captured)?;
    log_warnings(&captured.manifest);
    captured.side_profiles(&args.side)?;
    if captured.manifest.interrupted {
        anyhow::bail!(
            "interrupted; the profiles captured so far are in {}",
            args.out.display()
        );
    }
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
    let plan = plan_from(&args.capture)?;
    let baseline = resolve_side("baseline", &args.baseline)?;
    let candidate = resolve_side("candidate", &args.candidate)?;
    let live: Vec<SideTargets> = [&baseline, &candidate]
        .into_iter()
        .filter_map(|s| match s {
            SideInput::Live(t) => Some(t.clone()),
            SideInput::Local(_) => None,
        })
        .collect();
    capture::plan::check_disjoint(&live.iter().collect::<Vec<_>>())?;
    let policy = load_policy(args.judge.policy.as_deref())?;
    let limits = decode_limits(args.judge.max_profile_mib);

    // Saved sides first: a bad path fails before minutes of capture.
    let read_local = |s: &SideInput| -> anyhow::Result<Option<SideProfiles>> {
        match s {
            SideInput::Local(path) => Ok(Some(inputs::read_side(path, limits)?)),
            SideInput::Live(_) => Ok(None),
        }
    };
    let local = [read_local(&baseline)?, read_local(&candidate)?];

    let mut captured = if live.is_empty() {
        None
    } else {
        Some(capture_live(&plan, &live, limits, show_bar)?)
    };
    let mut sides: Vec<Result<SideProfiles, CaptureError>> = Vec::with_capacity(2);
    for (i, (name, input)) in [("baseline", &baseline), ("candidate", &candidate)]
        .into_iter()
        .enumerate()
    {
        sides.push(match (input, &captured) {
            (SideInput::Local(_), _) => Ok(local[i].clone().unwrap_or_default()),
            (SideInput::Live(_), Some(c)) => c.side_profiles(name),
            (SideInput::Live(_), None) => Err(CaptureError::NothingCaptured {
                side: name.to_owned(),
                reasons: Vec::new(),
            }),
        });
    }
    if let Some(c) = captured.as_mut() {
        // Record the saved sides too, in side order, and the kinds only one side has.
        for (i, input) in [&baseline, &candidate].into_iter().enumerate() {
            if let SideInput::Local(path) = input {
                c.manifest.sides.insert(
                    i.min(c.manifest.sides.len()),
                    capture::manifest::SideRecord {
                        side: ["baseline", "candidate"][i].to_owned(),
                        source: capture::manifest::SideSource::Local,
                        targets: vec![path.display().to_string()],
                        pods: Vec::new(),
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
        save_capture(&args.out, c)?;
        log_warnings(&c.manifest);
        if c.manifest.interrupted {
            anyhow::bail!(
                "interrupted; the profiles captured so far are in {}",
                args.out.display()
            );
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
    let mut report = judge(
        &policy,
        &baseline_profiles,
        &candidate_profiles,
        baseline.describe(),
        candidate.describe(),
    )?;
    if let Some(manifest) = captured.as_ref().map(|c| &c.manifest) {
        report.capture_facts = Some(manifest.facts());
        report.capture = Some(capture::notes_json(manifest));
        report.warnings.extend(manifest.warnings.iter().cloned());
    }
    let side_dir = |name: &str, input: &SideInput| match input {
        SideInput::Local(p) => p.clone(),
        SideInput::Live(_) => args.out.join("profiles").join(name),
    };
    write_flames(
        &args.out,
        &side_dir("baseline", &baseline),
        &side_dir("candidate", &candidate),
        &report,
        limits,
    );
    emit(&report, &args.judge, Some(&args.out))
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
