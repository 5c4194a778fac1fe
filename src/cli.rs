//! The `gate` command line: raw arguments turned into validated settings, then the pipeline.
//!
//! This is the one place that knows about exit codes and writes report files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::compare::{self, KindComparison};
use crate::inputs::{self, InputError, SideProfiles};
use crate::policy::{self, Outcome, Policy, PolicyError};
use crate::profile::DecodeLimits;
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare saved profiles offline: each side a .pb.gz file or a directory of them.
    ///
    /// A directory holds one file per pod, or one subdirectory per pod with one file per
    /// window (`<pod>/<profile>-<window>.pb.gz`); every profile kind found on both sides is
    /// compared.
    Diff(DiffArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The baseline (stable) profiles: a file or a directory.
    baseline: PathBuf,
    /// The candidate (canary) profiles: a file or a directory.
    candidate: PathBuf,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// Options shared by every command that judges and reports.
#[derive(Debug, Args)]
struct JudgeArgs {
    /// Policy file (YAML); default: the built-in default policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write report.txt, report.md and report.json into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
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
    match cli.command {
        Command::Diff(args) => diff(args),
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
    emit(&report, &args.judge)
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
        let list = |s: &SideProfiles| {
            s.kinds
                .keys()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(BadInput(format!(
            "the two sides have no profile kind in common: baseline has [{}], candidate has [{}]; compare profiles of the same kind (e.g. cpu with cpu)",
            list(baseline),
            list(candidate)
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
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        baseline: baseline_name,
        candidate: candidate_name,
        verdict,
        comparisons,
        unmatched,
    })
}

/// Prints the report, writes the report files, and maps the verdict to an exit code.
fn emit(report: &Report, args: &JudgeArgs) -> anyhow::Result<u8> {
    let options = RenderOptions {
        top: args.top,
        all_sample_types: args.all_samples,
    };
    if let Some(dir) = &args.out {
        write_reports(dir, report, &options)?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(report::render(report, args.format, &options).as_bytes())
        .context("writing to standard output")?;
    Ok(match report.verdict.outcome {
        Outcome::Fail => exit::FAIL,
        Outcome::Pass | Outcome::Warn | Outcome::Inconclusive => exit::PASS,
    })
}

/// Writes report.txt, report.md and report.json, each whole or not at all.
fn write_reports(dir: &Path, report: &Report, options: &RenderOptions) -> anyhow::Result<()> {
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
            report::render(report, format, options).as_bytes(),
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
