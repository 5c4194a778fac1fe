//! The `gate` command line: raw arguments turned into validated settings, then the pipeline.
//!
//! This is the one place that knows about exit codes and writes report files.
//!
//! Here: the exit codes, [`run`] dispatching each command, and `gate diff`. Beside it: `args`
//! (the clap structs), `live` (live sides: targets, the capture, `gate run`, `gate capture`,
//! `gate forward`), `emit` (reports, flame graphs, GitHub, file writes), `archive` (the archive
//! commands), `history` (`gate history`), `limits` (`--max-profile-mib` and the run's memory
//! budget), `out` (the output folder a run owns) and `stop` (stop signals).

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
use crate::errors::{self, Classified, FailureClass};
use crate::inputs::{self, InputError};
use crate::judge::{self, judge, judge_groups, label_groups, LabelGroup};
use crate::policy::{self, Outcome, Policy, PolicyError};
use crate::profile::{DecodeOptions, Footprint, LabelView, ProfileKind};
use crate::report::{self, Format, RenderOptions, Report};
use crate::side::SideProfiles;
use crate::targets::{self, session::KubeSideSpec, KubeOptions, KubeSession, Target, TargetError};

mod archive;
mod args;
mod emit;
mod history;
mod limits;
mod live;
mod out;
mod stop;

use emit::*;
use live::*;

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
        Command::History(args) => history::command(args),
        Command::Report(args) => rerender(args),
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = Policy::from_file(&file)?;
            print!("{}", policy.describe());
            Ok(exit::PASS)
        }
    }
}

/// Bad input exits 2 and names what to fix; anything else is an infrastructure failure.
/// Each error type says its own class; the chain is bad input when any error in it is.
fn exit_code_for(err: &anyhow::Error) -> u8 {
    match errors::chain_class(err.chain().map(class_of)) {
        FailureClass::BadInput => exit::BAD_INPUT,
        FailureClass::Infrastructure => exit::INFRASTRUCTURE,
    }
}

/// The class an error of this crate gives itself; `None` for other errors (I/O, HTTP, ...),
/// which take the class of the error that wraps them. Every error type a command can return
/// is listed here; the others (a profile's, a summary's) reach the top only wrapped in one.
fn class_of(e: &(dyn std::error::Error + 'static)) -> Option<FailureClass> {
    macro_rules! classes {
        ($($t:ty),* $(,)?) => {{
            $(if let Some(e) = e.downcast_ref::<$t>() {
                return Some(e.class());
            })*
            None
        }};
    }
    classes!(
        InputError,
        PolicyError,
        compare::CompareError,
        judge::JudgeError,
        PlanError,
        CaptureError,
        TargetError,
        crate::archive::ArchiveError,
        report::ReportError,
        report::TemplateError,
        crate::publish::PublishError,
        BadInput,
        Stopped,
        archive::NotArchived,
    )
}

/// An input problem found by the command line itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

impl Classified for BadInput {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }
}

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
    let limits = args.judge.decode.limits(policy.footprint);
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
    // One side after the other (see `read_groups`).
    let (baseline, baseline_name) = read(&args.baseline, "baseline")?;
    let (candidate, candidate_name) = read(&args.candidate, "candidate")?;
    let group = LabelGroup::whole(baseline, candidate);
    let report = judge(&policy, &group, baseline_name, candidate_name)?;
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
    let code = emit(&report, &args.judge, args.out.as_deref());
    // The process ends with this command, and its memory goes back to the system at once:
    // freeing both sides' profiles and every function's comparison piece by piece first
    // cost about 3% of the CPU of `gate diff` on large.cpu (20 pairs).
    std::mem::forget((group, report));
    code
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
    // One side after the other: decoding the two on two threads saved wall time (large.cpu
    // 58 -> 45 ms) but cost CPU (1.10x: page faults of two threads in one address space
    // contend, and each thread's allocator arena faults its pages in anew) and memory (both
    // sides' decoding buffers at once: 56 -> 87 MiB on a 250,000-stack heap profile). A side
    // of many files is still decoded on all cores (`inputs::read_side`).
    let read = |v: &LabelView| {
        Ok::<_, anyhow::Error>((
            inputs::read_side_view(baseline, limits, v)?,
            inputs::read_side_view(candidate, limits, v)?,
        ))
    };
    let whole_view = LabelView {
        by: None,
        ..view.clone()
    };
    let (b, c) = read(&whole_view)?;
    let mut groups = label_groups(&whole_view, b, c)?;
    if view.by.is_some() {
        let (b, c) = read(view)?;
        groups.extend(label_groups(view, b, c)?);
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

/// A run stopped by a signal (exit 3): what it kept is on disk, and a report when it could.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Stopped(String);

impl Classified for Stopped {
    fn class(&self) -> FailureClass {
        FailureClass::Infrastructure
    }
}

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
    use super::{error_message, exit, exit_code_for, verdict_exit_code, FailOn};

    use crate::policy::Outcome;

    #[test]
    fn each_error_gives_its_exit_code_and_a_bad_cause_makes_the_chain_bad_input() {
        use crate::capture::CaptureError;
        use crate::targets::TargetError;
        let code = |e: anyhow::Error| exit_code_for(&e.context("capturing the candidate"));
        assert_eq!(
            code(TargetError::Invalid("svc//x".into()).into()),
            exit::BAD_INPUT
        );
        let unreachable = TargetError::Unreachable {
            server: "https://127.0.0.1:6443".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(code(unreachable.into()), exit::INFRASTRUCTURE);
        assert_eq!(
            code(std::io::Error::other("disk on fire").into()),
            exit::INFRASTRUCTURE
        );
        // An infrastructure error whose cause is the user's to fix is the user's to fix.
        let wrapped = anyhow::Error::new(TargetError::Config("no current context".into()))
            .context(CaptureError::Runtime("capture failed".into()));
        assert_eq!(code(wrapped), exit::BAD_INPUT);
        let bad_url = crate::archive::Store::open("ftp://x/y")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(code(bad_url.into()), exit::BAD_INPUT);
    }

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
