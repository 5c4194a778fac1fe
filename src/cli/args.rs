//! The command line as clap parses it: commands, their arguments and help texts. Raw
//! arguments only; `cli` turns them into validated settings and runs them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::limits::DecodeLimitArgs;
use super::{archive, history, VERSION};
use crate::capture;
use crate::profile::{LabelView, ProfileKind, TagFilter};
use crate::report::Format;

/// Examples and exit codes, under `gate --help`.
const AFTER_HELP: &str = "\
Examples:
  gate diff examples/profiles/stable examples/profiles/canary     compare saved profiles
  gate run --namespace shop --baseline svc/stable --candidate svc/canary
  gate run --baseline http://127.0.0.1:6060 --candidate http://127.0.0.1:6061 --duration 30s
  gate policy check policies/strict.yaml

Exit codes: 0 pass (warnings and inconclusive results allowed), 1 the gate failed,
2 bad input or configuration, 3 capture or infrastructure failure.
`gate COMMAND --help` explains each command; README.md explains the statistics and policies.";

/// Profile Gate: fail a release when the candidate's pprof profiles regress beyond a policy.
///
/// The whole command line as clap parses it: `Cli::try_parse_from(["gate", "run", ...])` checks
/// an argument list without running anything (the GitHub Action's test does), and [`run`](super::run)
/// executes a parsed one.
#[derive(Debug, Parser)]
#[command(
    name = "gate",
    version = VERSION,
    about,
    long_about = None,
    after_help = AFTER_HELP,
    max_term_width = 100
)]
pub struct Cli {
    /// Print only errors on standard error: no progress, no warnings (the report still goes
    /// to standard output).
    #[arg(
        long,
        short,
        global = true,
        conflicts_with = "verbose",
        display_order = 1000
    )]
    pub(super) quiet: bool,
    /// Log every request on standard error.
    #[arg(long, short, global = true, display_order = 1000)]
    pub(super) verbose: bool,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Capture both sides live in matched windows, compare, apply the policy, and report.
    ///
    /// Each side is one or more pprof base URLs, one per pod (`--baseline URL --baseline
    /// URL2`; `NAME=URL` names the pod), or Kubernetes objects (`[NAMESPACE/]KIND/NAME`, e.g.
    /// `svc/stable`: every Ready pod behind it, through port-forwards), or one saved file or
    /// directory of profiles (then that side is read as `gate diff` reads it). Every pod of both
    /// sides starts each window at the same instant. `--out` receives report.txt, report.md,
    /// report.json, flame-<profile>.svg,
    /// profiles/<side>/<pod>/<profile>-<window>.pb.gz and manifest.json.
    Run(RunArgs),
    /// Compare saved profiles offline: each side a .pb.gz file or a directory of them.
    ///
    /// A directory holds one file per pod, or one subdirectory per pod with one file per
    /// window (`<pod>/<profile>-<window>.pb.gz`); every profile kind found on both sides is
    /// compared.
    Diff(DiffArgs),
    /// Capture profiles live from pprof endpoints or Kubernetes pods into a directory, without
    /// comparing.
    ///
    /// Writes DIR/profiles/<side>/<pod>/<profile>-<window>.pb.gz (side `baseline` unless
    /// `--side` says otherwise) and DIR/manifest.json. A later `gate diff` or `gate run` can
    /// take DIR/profiles/<side> as a side.
    Capture(CaptureCommandArgs),
    /// Archive profiles: the nightly capture to a store, and listing and pruning what is stored.
    ///
    /// `gate archive TARGET... --to URL [--service NAME]` captures cpu, heap, allocs and
    /// goroutine profiles from every pod (pprof URLs or Kubernetes objects) and stores them under
    /// `<service>/<yyyy>/<mm>/<dd>/<run-id>/`. `gate archive list --to URL` lists the runs
    /// newest first; `gate archive prune --to URL --older-than 365d [--dry-run]` deletes old
    /// runs. URL: a local folder, file://, s3://, gs:// or az://.
    Archive(archive::ArchiveCommand),
    /// What changed across a service's archived runs: per function and total, the runs where
    /// a level shifted beyond the policy's threshold, named at the service's own function.
    ///
    /// `gate history --archive URL --service NAME [--side nightly] [--since 90d]` reads each
    /// complete run's summary.parquet (made from its profiles, and stored, the first time),
    /// prints the changes (`--format text|markdown|json`) and with `--out DIR` writes
    /// history.json, history.md and an SVG chart per changed series.
    History(history::HistoryArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Forward the pprof port of each pod behind Kubernetes targets to a local URL, and keep
    /// the forwards open until Ctrl-C (e.g. for `go tool pprof URL/profile`).
    Forward(ForwardArgs),
    /// Re-render a saved report.json as text, Markdown or JSON (exit 0; the verdict is in it).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub(super) struct ForwardArgs {
    /// Kubernetes targets: `[NAMESPACE/]KIND/NAME`.
    #[arg(required = true, value_name = "TARGET")]
    pub(super) targets: Vec<String>,
    /// Stop after this long (default: at Ctrl-C).
    #[arg(long = "for", value_parser = duration_arg, value_name = "DURATION")]
    pub(super) for_duration: Option<Duration>,
    #[command(flatten)]
    pub(super) kube: KubeArgs,
}

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    /// The saved report (report.json from --out).
    pub(super) file: PathBuf,
    /// Format printed on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: Format,
    /// Rows per table.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub(super) top: usize,
    /// Show every sample type, not only each profile's main one.
    #[arg(long)]
    pub(super) all_samples: bool,
    #[command(flatten)]
    pub(super) templates: TemplateArgs,
}

#[derive(Debug, Args)]
pub(super) struct DiffArgs {
    /// The baseline (stable) profiles: a file or a directory, or archived history
    /// `archive+URL#SERVICE[@latest|@YYYY-MM-DD|@RUN_ID][:SIDE]`.
    pub(super) baseline: PathBuf,
    /// The candidate (canary) profiles: a file or a directory (or `archive+...`).
    pub(super) candidate: PathBuf,
    /// Write report.txt, report.md, report.json and flame-<profile>.svg (differential flame
    /// graphs) into this directory.
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
    #[command(flatten)]
    pub(super) judge: JudgeArgs,
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Baseline: a pprof URL per pod (`http://HOST:PORT[/PREFIX]` or `NAME=URL`), repeatable;
    /// or Kubernetes objects (`[NAMESPACE/]KIND/NAME`, KIND svc|deploy|sts|pod); or one saved
    /// file or directory of profiles; or archived history
    /// `archive+URL#SERVICE[@latest|@YYYY-MM-DD|@RUN_ID][:SIDE]`.
    #[arg(long, required = true, num_args = 1.., value_name = "TARGET")]
    pub(super) baseline: Vec<String>,
    /// Candidate: a pprof URL per pod, repeatable; or Kubernetes objects (`svc/canary`); or one
    /// saved file or directory.
    #[arg(long, required = true, num_args = 1.., value_name = "TARGET")]
    pub(super) candidate: Vec<String>,
    /// Directory for the reports, the captured profiles and manifest.json. One run at a time
    /// owns it; what an earlier run wrote there is removed first, other files are kept.
    #[arg(long, value_name = "DIR", default_value = "gate-out")]
    pub(super) out: PathBuf,
    #[command(flatten)]
    pub(super) capture: CaptureArgs,
    #[command(flatten)]
    pub(super) judge: JudgeArgs,
    #[command(flatten)]
    pub(super) archive: archive::ArchiveRunArgs,
}

#[derive(Debug, Args)]
pub(super) struct CaptureCommandArgs {
    /// pprof URLs, one per pod: `http://HOST:PORT[/PREFIX]`, or `NAME=URL` to name the pod
    /// (default name: HOST-PORT); or Kubernetes objects (`[NAMESPACE/]KIND/NAME`, pods named
    /// as in the cluster).
    #[arg(required = true, value_name = "TARGET")]
    pub(super) targets: Vec<String>,
    /// Directory for profiles/<side>/<pod>/<profile>-<window>.pb.gz and manifest.json.
    #[arg(long, value_name = "DIR")]
    pub(super) out: PathBuf,
    /// Name of the side: the directory under DIR/profiles/.
    #[arg(long, default_value = "baseline", value_name = "NAME")]
    pub(super) side: String,
    #[command(flatten)]
    pub(super) capture: CaptureArgs,
    #[command(flatten)]
    pub(super) decode: DecodeLimitArgs,
}

/// How to capture: windows, profiles, and the limits on each request.
#[derive(Debug, Args)]
#[command(next_help_heading = "Capture")]
pub(super) struct CaptureArgs {
    /// Total profiled time, split into equal windows (e.g. 60s, 2m, 1m30s).
    #[arg(long, default_value = "60s", value_parser = duration_arg, value_name = "DURATION")]
    pub(super) duration: Duration,
    /// Number of windows; each lasts DURATION / WINDOWS, a whole number of seconds.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub(super) windows: u32,
    /// Profiles to capture, comma-separated: cpu, heap, allocs, goroutine, mutex, block
    /// [default: all six; gate archive: cpu,heap,allocs,goroutine].
    #[arg(long, value_parser = kinds_arg, value_name = "LIST")]
    pub(super) profiles: Option<KindList>,
    /// Pause between windows, so each CPU profile is answered before the next one starts.
    #[arg(long, default_value = "250ms", value_parser = duration_arg, value_name = "DURATION")]
    pub(super) window_gap: Duration,
    /// Time a request may take beyond its window (snapshots: in all) before it is abandoned.
    #[arg(long, default_value = "10s", value_parser = duration_arg, value_name = "DURATION")]
    pub(super) timeout_margin: Duration,
    /// Largest HTTP response accepted, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub(super) max_body_mib: u64,
    /// Where a server that does not follow Go's /debug/pprof/ layout serves a kind, repeatable:
    /// KIND=PATH, PATH relative to the target's pprof base or from the host's root with a
    /// leading / (e.g. cpu=/profiling/cpu); `seconds=` is added for windowed kinds.
    #[arg(long = "endpoint", value_parser = endpoint_arg, value_name = "KIND=PATH")]
    pub(super) endpoints: Vec<(ProfileKind, String)>,
    #[command(flatten)]
    pub(super) kube: KubeArgs,
}

/// Kubernetes targets (`[NAMESPACE/]KIND/NAME`): how to reach the cluster and the pods.
#[derive(Debug, Args)]
#[command(next_help_heading = "Kubernetes targets")]
pub(super) struct KubeArgs {
    /// Namespace of targets that name none (default: the kubeconfig context's).
    #[arg(long, short = 'n', value_name = "NS")]
    pub(super) namespace: Option<String>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "CTX")]
    pub(super) context: Option<String>,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub(super) kubeconfig: Option<PathBuf>,
    /// The pods' pprof port: a number or a container port's name.
    #[arg(long, default_value = "6060", value_name = "PORT")]
    pub(super) port: String,
    /// At most this many Ready pods per target, chosen at random (reproducibly, see --pod-seed).
    #[arg(long, value_name = "N")]
    pub(super) max_pods: Option<usize>,
    /// Seed of the pod choice under --max-pods (default: a fresh one, recorded in manifest.json).
    #[arg(long, value_name = "SEED")]
    pub(super) pod_seed: Option<u64>,
}

/// Profile kinds from `--profiles`.
#[derive(Debug, Clone)]
pub(super) struct KindList(pub(super) Vec<ProfileKind>);

pub(super) fn duration_arg(s: &str) -> Result<Duration, String> {
    capture::parse_duration(s).map_err(|e| e.to_string())
}

pub(super) fn endpoint_arg(s: &str) -> Result<(ProfileKind, String), String> {
    capture::plan::parse_endpoint(s).map_err(|e| e.to_string())
}

pub(super) fn kinds_arg(s: &str) -> Result<KindList, String> {
    capture::parse_kinds(s)
        .map(KindList)
        .map_err(|e| e.to_string())
}

/// Options shared by every command that judges and reports.
#[derive(Debug, Args)]
#[command(next_help_heading = "Policy and report")]
pub(super) struct JudgeArgs {
    /// Policy file (YAML); default: the built-in default policy.
    #[arg(long, value_name = "FILE")]
    pub(super) policy: Option<PathBuf>,
    /// Format printed on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: Format,
    /// Rows per table.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub(super) top: usize,
    /// Show every sample type, not only each profile's main one.
    #[arg(long)]
    pub(super) all_samples: bool,
    #[command(flatten)]
    pub(super) decode: DecodeLimitArgs,
    /// Compare only samples carrying this pprof label, as `go tool pprof -tagfocus`:
    /// KEY=REGEX (unanchored; `route=^/checkout$` for one value; comma-separated regexes
    /// are alternatives). Repeatable: every key must match.
    #[arg(long = "tag", value_name = "KEY=REGEX", help_heading = "Label filters")]
    pub(super) tag: Vec<TagFilter>,
    /// Leave out samples carrying this pprof label, as `go tool pprof -tagignore`.
    #[arg(
        long = "tag-ignore",
        value_name = "KEY=REGEX",
        help_heading = "Label filters"
    )]
    pub(super) tag_ignore: Vec<TagFilter>,
    /// One comparison per value of this pprof label (e.g. `route`), each with its own noise
    /// statistics and one multiple-testing correction across all of them; samples without the
    /// label are left out. Go records labels in CPU and goroutine profiles only.
    #[arg(long = "by-label", value_name = "KEY", help_heading = "Label filters")]
    pub(super) by_label: Option<String>,
    /// Which verdicts exit 1. `never` reports only; bad input and infrastructure failures still
    /// exit 2 and 3 whatever this says.
    #[arg(long, value_enum, default_value = "fail", value_name = "WHEN")]
    pub(super) fail_on: FailOn,
    /// Publish on GitHub: one sticky pull-request comment (updated in place), a check run, the
    /// step summary and the action's outputs. On by default in GitHub Actions when
    /// GITHUB_TOKEN is set. Reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL and
    /// GITHUB_EVENT_PATH; a failure to publish is a warning, never a different exit code.
    #[arg(long, conflicts_with = "no_github", help_heading = "GitHub")]
    pub(super) github: bool,
    /// Do not publish on GitHub, not even in GitHub Actions.
    #[arg(long, help_heading = "GitHub")]
    pub(super) no_github: bool,
    #[command(flatten)]
    pub(super) templates: TemplateArgs,
}

/// `--fail-on`: which verdicts make `gate run` and `gate diff` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Exit 1 when the verdict is fail (a `severity: fail` rule broke).
    Fail,
    /// Exit 1 when the verdict is fail or inconclusive (the run could not decide).
    Inconclusive,
    /// Exit 0 whatever the verdict: report only.
    Never,
}

impl JudgeArgs {
    /// The samples to compare, from `--tag`, `--tag-ignore` and `--by-label`.
    pub(super) fn label_view(&self) -> LabelView {
        LabelView {
            focus: self.tag.clone(),
            ignore: self.tag_ignore.clone(),
            by: self.by_label.clone(),
        }
    }
}

/// Templates that replace the shipped ones.
#[derive(Debug, Args)]
#[command(next_help_heading = "Templates")]
pub(super) struct TemplateArgs {
    /// A minijinja template for the Markdown report (report.md, `--format markdown`, the
    /// pull-request comment). It sees `view` (what the shipped template shows, escaped) and
    /// `report` (report.json; escape with `| md_escape`).
    #[arg(long, value_name = "FILE")]
    pub(super) template: Option<PathBuf>,
    /// A minijinja template for the text report (report.txt, `--format text`).
    #[arg(long, value_name = "FILE")]
    pub(super) text_template: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Validate a policy file and print its rules in plain words.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}
