//! The archive's part of the command line: `gate run --archive`, `gate archive` (the nightly
//! capture), `gate archive list` and `gate archive prune`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::{
    capture_sides, exit, log_warnings, plan_from, resolve_side, save_capture, BadInput,
    CaptureArgs, EarlierProfiles, OutDir, SideInput,
};
use crate::archive::summary::{self, SummaryRun, SUMMARY};
use crate::archive::{
    self, layout, ArchiveError, ArchiveObject, IndexSide, Payload, PolicyRecord, RunArchive,
    RunKind, Store,
};
use crate::capture::{self, Capture};
use crate::errors::{Classified, FailureClass};
use crate::profile::ProfileKind;
use crate::report::Report;
use crate::side::SideProfiles;

/// The profiles the nightly job captures by default.
const NIGHTLY_KINDS: [ProfileKind; 4] = [
    ProfileKind::Cpu,
    ProfileKind::Heap,
    ProfileKind::Allocs,
    ProfileKind::Goroutine,
];

/// The run was not archived completely and `--archive-required` was given (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotArchived(String);

impl Classified for NotArchived {
    fn class(&self) -> FailureClass {
        FailureClass::Infrastructure
    }
}

/// `gate run`'s archive flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Archive")]
pub struct ArchiveRunArgs {
    /// Archive the run (profiles, manifest.json, reports, policy) whatever the verdict: a
    /// local folder, file://PATH, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or
    /// az://CONTAINER[/PREFIX]. Credentials come from the cloud's usual environment variables.
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// The service: the archive's top folder for this run.
    #[arg(long, value_name = "NAME", default_value = "default")]
    service: String,
    /// Exit 3 when the run could not be archived completely (default: a warning, and the exit
    /// code of the verdict).
    #[arg(long, requires = "archive")]
    archive_required: bool,
    /// The run's folder name in the archive (default: the start time and four random hex
    /// digits, e.g. 20261122T081530Z-3fa9).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// The commit the candidate was built from, recorded in the archive for `gate history`
    /// (e.g. `--commit "$GITHUB_SHA"`).
    #[arg(long, value_name = "SHA", env = "GATE_COMMIT")]
    commit: Option<String>,
}

/// `gate archive`: the nightly capture, or `list` / `prune`.
///
/// `gate archive TARGET... --to URL` captures cpu, heap, allocs and goroutine profiles from
/// every pod and stores them; `gate archive list --to URL` and `gate archive prune --to URL
/// --older-than 365d` work on what is stored. A first argument `list` or `prune` is always
/// the subcommand (targets are URLs, so no target is named so).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ArchiveCommand {
    #[command(subcommand)]
    action: Option<ArchiveAction>,
    #[command(flatten)]
    nightly: NightlyArgs,
}

#[derive(Debug, Subcommand)]
enum ArchiveAction {
    /// List the archived runs, newest first.
    List(ListArgs),
    /// Delete the runs older than an age, listing what goes.
    Prune(PruneArgs),
}

/// The nightly capture.
#[derive(Debug, Args)]
struct NightlyArgs {
    /// pprof URLs, one per pod (`http://HOST:PORT[/PREFIX]`, or `NAME=URL` to name the pod),
    /// or Kubernetes objects (`[NAMESPACE/]KIND/NAME`: every Ready pod, through port-forwards).
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// The store: a local folder, file://, s3://, gs:// or az:// URL.
    #[arg(long, required = true, value_name = "URL")]
    to: Option<String>,
    /// The service: the archive's top folder.
    #[arg(long, value_name = "NAME", default_value = "default")]
    service: String,
    /// The side's folder in the run.
    #[arg(long, value_name = "NAME", default_value = "nightly")]
    side: String,
    /// Also save the profiles and manifest.json into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The run's folder name in the archive (default: start time and random hex digits).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// The commit the captured pods run, recorded for `gate history` (e.g. the deployed
    /// image's source commit).
    #[arg(long, value_name = "SHA", env = "GATE_COMMIT")]
    commit: Option<String>,
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    decode: super::limits::DecodeLimitArgs,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// The store: a local folder, file://, s3://, gs:// or az:// URL.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Only this service's runs.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
}

#[derive(Debug, Args)]
struct PruneArgs {
    /// The store: a local folder, file://, s3://, gs:// or az:// URL.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Delete runs that started longer ago than this: e.g. 365d, 8w, 12h.
    #[arg(long, value_name = "AGE")]
    older_than: String,
    /// Only this service's runs.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// List what would be deleted, and delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A run id: the one given (made safe), or a fresh one.
fn run_id(given: Option<&str>, started: DateTime<Utc>) -> String {
    match given {
        Some(id) => layout::safe_segment(id),
        None => layout::new_run_id(
            started,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        ),
    }
}

/// When a capture's first window started, or `fallback`.
fn capture_start(capture: Option<&Capture>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    capture
        .and_then(|c| DateTime::from_timestamp_millis(c.manifest.started_at_unix_ms as i64))
        .unwrap_or(fallback)
}

/// The captured profiles of one side as archive objects.
fn captured_objects(capture: &Capture, side: &str) -> Vec<ArchiveObject> {
    capture
        .profiles
        .iter()
        .filter(|p| p.side == side)
        .map(|p| ArchiveObject {
            key: format!(
                "{}/{}/{}-{}.pb.gz",
                layout::safe_segment(&p.side),
                layout::safe_segment(&p.pod),
                p.kind.name(),
                p.window
            ),
            payload: Payload::Bytes(p.bytes.clone()),
        })
        .collect()
}

/// A live side's summary for history (`<side>/summary.parquet`); `None`, with a warning, when
/// it cannot be made (history then summarises the run from its profiles when first read).
fn summary_object(profiles: &SideProfiles, side: &str, run: SummaryRun) -> Option<ArchiveObject> {
    match summary::encode(&run, &crate::history::summarise(profiles)) {
        Ok(bytes) => Some(ArchiveObject {
            key: format!("{}/{SUMMARY}", layout::safe_segment(side)),
            payload: Payload::Bytes(bytes),
        }),
        Err(e) => {
            tracing::warn!("cannot summarise side {side} for gate history: {e}");
            None
        }
    }
}

/// A `--commit` as recorded: short, printable, or refused.
fn checked_commit(commit: Option<&str>) -> Result<Option<String>, BadInput> {
    let Some(c) = commit.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if c.len() > 200 || c.chars().any(char::is_control) {
        return Err(BadInput(format!(
            "--commit {:?}: not a commit; give a SHA or tag of at most 200 printable characters",
            c.chars().take(40).collect::<String>()
        )));
    }
    Ok(Some(c.to_owned()))
}

fn pods_of(capture: &Capture, side: &str) -> Vec<String> {
    capture
        .manifest
        .sides
        .iter()
        .filter(|s| s.side == side)
        .flat_map(|s| s.pods.iter().map(|p| p.name.clone()))
        .collect()
}

/// Opens `--archive` before anything runs: a malformed URL is bad input (exit 2) before
/// minutes of capture; a store that cannot be reached is only known when writing.
pub(super) fn open_for_run(args: &ArchiveRunArgs) -> anyhow::Result<Option<Result<Store, String>>> {
    let Some(url) = &args.archive else {
        return Ok(None);
    };
    match Store::open(url) {
        Ok(store) => Ok(Some(Ok(store))),
        Err(e) if e.class() == FailureClass::BadInput => Err(e.into()),
        Err(e) => Ok(Some(Err(e.to_string()))),
    }
}

/// Everything `gate run` archives, after the reports are written into `out`.
pub(super) struct RunRecord<'a> {
    /// The archive flags.
    pub args: &'a ArchiveRunArgs,
    /// The store, or why it could not be opened.
    pub store: Result<Store, String>,
    /// The local output directory.
    pub out: &'a Path,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// The live capture, if any side was live.
    pub captured: Option<&'a Capture>,
    /// The two sides.
    pub sides: [(&'static str, &'a SideInput); 2],
    /// The policy file, when one was given.
    pub policy: Option<&'a Path>,
    /// The report.
    pub report: &'a Report,
}

/// Archives a finished `gate run`: a warning when it cannot be done completely, an error
/// ([`NotArchived`], exit 3) with `--archive-required`.
pub(super) fn after_run(record: RunRecord<'_>) -> anyhow::Result<()> {
    let url = record.args.archive.as_deref().unwrap_or_default();
    let out = record.out.display();
    let shortfall = match &record.store {
        Err(why) => Some(format!("nothing was archived to {url}: {why}")),
        Ok(store) => match run_archive(&record) {
            Err(e) => Some(format!("nothing was archived to {url}: {e:#}")),
            Ok(run) => {
                let outcome = archive::archive_run(store, &run);
                if outcome.complete() {
                    tracing::info!(
                        "archived {} objects to {}",
                        outcome.stored.len(),
                        outcome.location
                    );
                    None
                } else {
                    Some(format!(
                        "the run was not archived completely to {}: {}",
                        outcome.location,
                        outcome.shortfall()
                    ))
                }
            }
        },
    };
    match shortfall {
        None => Ok(()),
        Some(msg) => {
            let msg = format!("{msg}; {out} keeps every profile and report of the run");
            if record.args.archive_required {
                Err(NotArchived(msg).into())
            } else {
                tracing::warn!("{msg}");
                Ok(())
            }
        }
    }
}

/// [`layout::safe_segment`] of `name`, numbered (`-2`, `-3`, before a `.pb.gz` ending) when
/// an earlier name of the same folder already made that segment; records it in `taken`.
fn unique_segment(name: &str, taken: &mut HashSet<String>) -> String {
    let safe = layout::safe_segment(name);
    let (stem, ending) = match safe.strip_suffix(".pb.gz") {
        Some(stem) if !stem.is_empty() => (stem.to_owned(), ".pb.gz"),
        _ => (safe.clone(), ""),
    };
    crate::capture::endpoints::first_free(safe, &stem, ending, taken)
}

fn run_archive(record: &RunRecord<'_>) -> anyhow::Result<RunArchive> {
    let mut objects = Vec::new();
    let mut sides = Vec::new();
    let started = capture_start(record.captured, record.started);
    let run_id = run_id(record.args.run_id.as_deref(), started);
    let commit = checked_commit(record.args.commit.as_deref())?;
    for (name, input) in record.sides {
        let safe = layout::safe_segment(name);
        match input {
            SideInput::Live(_) | SideInput::Kube(_) => {
                if let Some(c) = record.captured {
                    objects.extend(captured_objects(c, name));
                    let run = SummaryRun {
                        service: layout::safe_segment(&record.args.service),
                        run_id: run_id.clone(),
                        started,
                        commit: commit.clone(),
                        side: safe.clone(),
                    };
                    if let Ok(profiles) = c.side_profiles(name) {
                        objects.extend(summary_object(&profiles, name, run));
                    }
                }
                let targets = match input {
                    SideInput::Live(t) => t.targets.clone(),
                    SideInput::Kube(k) => k.targets.iter().map(|(t, _)| t.clone()).collect(),
                    _ => Vec::new(),
                };
                sides.push(IndexSide {
                    side: safe,
                    source: "live".into(),
                    targets,
                    pods: record
                        .captured
                        .map(|c| pods_of(c, name))
                        .unwrap_or_default(),
                });
            }
            SideInput::Local(path) => {
                let mut pods = Vec::new();
                // Pod folders and file names as the disk has them, to their segments: two
                // names that make the same safe segment (`a b` and `a_b`) get two objects.
                let mut pod_segments: HashMap<String, String> = HashMap::new();
                let mut taken_pods = HashSet::new();
                let mut taken_files: HashMap<String, HashSet<String>> = HashMap::new();
                for (file, pod) in crate::inputs::list_side(path)? {
                    let pod = pod_segments
                        .entry(pod)
                        .or_insert_with_key(|pod| unique_segment(pod, &mut taken_pods))
                        .clone();
                    let file_name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if !pods.contains(&pod) {
                        pods.push(pod.clone());
                    }
                    let file_name =
                        unique_segment(&file_name, taken_files.entry(pod.clone()).or_default());
                    objects.push(ArchiveObject {
                        key: format!("{safe}/{pod}/{file_name}"),
                        payload: Payload::File(file),
                    });
                }
                sides.push(IndexSide {
                    side: safe,
                    source: "local".into(),
                    targets: vec![path.display().to_string()],
                    pods,
                });
            }
            SideInput::Archive(r) => sides.push(IndexSide {
                side: safe,
                source: "archive".into(),
                targets: vec![r.text.clone()],
                pods: Vec::new(),
            }),
        }
    }
    let mut files = vec!["manifest.json".to_owned()];
    files.extend(["report.txt", "report.md", "report.json"].map(str::to_owned));
    if let Ok(entries) = std::fs::read_dir(record.out) {
        let mut flames: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("flame-") && n.ends_with(".svg"))
            .collect();
        flames.sort();
        files.extend(flames);
    }
    for name in files {
        if name == "manifest.json" && record.captured.is_none() {
            continue;
        }
        let path = record.out.join(&name);
        if path.is_file() {
            objects.push(ArchiveObject {
                key: layout::safe_segment(&name),
                payload: Payload::File(path),
            });
        }
    }
    let (policy_bytes, source) = match record.policy {
        Some(path) => (
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read the policy ({e})", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            crate::policy::BUILTIN_DEFAULT.as_bytes().to_vec(),
            "built-in".to_owned(),
        ),
    };
    let policy = PolicyRecord {
        source,
        sha256: archive::index::sha256_hex(&policy_bytes),
    };
    objects.push(ArchiveObject {
        key: "policy.yaml".into(),
        payload: Payload::Bytes(policy_bytes),
    });
    Ok(RunArchive {
        partial: record.report.partial.clone(),
        service: record.args.service.clone(),
        run_id,
        started_at: started,
        kind: RunKind::Run,
        sides,
        verdict: serde_json::to_value(record.report.verdict.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
        policy: Some(policy),
        commit,
        objects,
    })
}

/// Runs `gate archive` and its subcommands.
pub(super) fn command(cmd: ArchiveCommand, show_bar: bool) -> anyhow::Result<u8> {
    match cmd.action {
        Some(ArchiveAction::List(args)) => list(args),
        Some(ArchiveAction::Prune(args)) => prune(args),
        None => nightly(cmd.nightly, show_bar),
    }
}

/// The nightly job: capture one side live and store it; anything short of a complete
/// archive is a failure (exit 3), since archiving is the job.
fn nightly(args: NightlyArgs, show_bar: bool) -> anyhow::Result<u8> {
    let plan = plan_from(&args.capture, &NIGHTLY_KINDS)?;
    let commit = checked_commit(args.commit.as_deref())?;
    capture::endpoints::check_name(&args.side)
        .map_err(|why| BadInput(format!("--side {:?}: {why}", args.side)))?;
    let url = args.to.clone().unwrap_or_default();
    let input = resolve_side(&args.side, &args.targets)?;
    if let SideInput::Local(_) | SideInput::Archive(_) = &input {
        return Err(BadInput(format!(
            "{}: gate archive captures live pods: give pprof URLs (http://HOST:PORT or NAME=URL) or Kubernetes objects ([NAMESPACE/]KIND/NAME)",
            input.describe()
        ))
        .into());
    }
    // A bad store URL or --out fails before minutes of capture.
    let store = Store::open(&url)?;
    let out = args.out.as_deref().map(OutDir::claim).transpose()?;
    if let Some(out) = &out {
        out.clear_earlier_run(EarlierProfiles::All)?;
    }
    super::stop::watch();
    let started = Utc::now();
    let captured = capture_sides(
        &args.capture,
        &plan,
        &[&input],
        args.decode.limits(crate::profile::Footprint::default()),
        show_bar,
        out.as_ref().map(OutDir::path),
    )?
    .ok_or_else(|| BadInput("gate archive: no live target to capture".to_owned()))?;
    if let Some(out) = &out {
        save_capture(out.path(), &captured)?;
    }
    log_warnings(&captured.manifest);
    let mut objects = captured_objects(&captured, &args.side);
    let profiles = objects.len();
    let mut manifest = serde_json::to_vec_pretty(&captured.manifest)?;
    manifest.push(b'\n');
    objects.push(ArchiveObject {
        key: "manifest.json".into(),
        payload: Payload::Bytes(manifest),
    });
    let started = capture_start(Some(&captured), started);
    let run_id = run_id(args.run_id.as_deref(), started);
    let side = layout::safe_segment(&args.side);
    // Read once: summarised for history now, and its error (nothing usable captured) reported
    // after what was captured is archived.
    let side_profiles = captured.side_profiles(&args.side);
    if let Ok(profiles) = &side_profiles {
        objects.extend(summary_object(
            profiles,
            &args.side,
            SummaryRun {
                service: layout::safe_segment(&args.service),
                run_id: run_id.clone(),
                started,
                commit: commit.clone(),
                side: side.clone(),
            },
        ));
    }
    let pods = pods_of(&captured, &args.side);
    let run = RunArchive {
        partial: captured.manifest.interrupted.then(|| {
            format!(
                "stopped by {}",
                super::stop::received().unwrap_or("a stop signal")
            )
        }),
        service: args.service.clone(),
        run_id,
        started_at: started,
        kind: RunKind::Nightly,
        sides: vec![IndexSide {
            side,
            source: "live".into(),
            targets: args.targets.clone(),
            pods: pods.clone(),
        }],
        verdict: None,
        policy: None,
        commit,
        objects,
    };
    let outcome = archive::archive_run(&store, &run);
    if !outcome.complete() {
        return Err(NotArchived(format!(
            "the nightly capture was not archived completely to {}: {}",
            outcome.location,
            outcome.shortfall()
        ))
        .into());
    }
    side_profiles?;
    if captured.manifest.interrupted {
        return Err(super::Stopped(format!(
            "stopped by {}; the profiles captured so far are archived in {}",
            super::stop::received().unwrap_or("a stop signal"),
            outcome.location
        ))
        .into());
    }
    println!(
        "Archived {profiles} profiles from {} pod{} to {} ({})",
        pods.len(),
        if pods.len() == 1 { "" } else { "s" },
        outcome.location,
        captured.manifest.facts()
    );
    Ok(exit::PASS)
}

/// Sizes in readable units.
fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

fn list(args: ListArgs) -> anyhow::Result<u8> {
    let store = Store::open(&args.to)?;
    let runs = archive::list_runs(&store, args.service.as_deref())?;
    if runs.is_empty() {
        println!("No archived runs in {}", args.to);
        return Ok(exit::PASS);
    }
    println!(
        "{:<20} {:<16} {:<24} {:<8} {:<10} {:<8} {:>7} {:>10}  SIDES",
        "STARTED (UTC)", "SERVICE", "RUN", "KIND", "STATUS", "VERDICT", "OBJECTS", "SIZE"
    );
    for run in &runs {
        let index = run.index.as_ref();
        println!(
            "{:<20} {:<16} {:<24} {:<8} {:<10} {:<8} {:>7} {:>10}  {}",
            run.started_at().format("%Y-%m-%d %H:%M:%S"),
            run.path.service,
            run.path.run_id,
            index
                .map(|i| match i.kind {
                    RunKind::Run => "run",
                    RunKind::Nightly => "nightly",
                })
                .unwrap_or("-"),
            run.status(),
            index.and_then(|i| i.verdict.as_deref()).unwrap_or("-"),
            run.objects,
            size(run.bytes),
            run.sides().join(",")
        );
        if let Some(e) = &run.index_error {
            tracing::warn!("{e}");
        }
    }
    Ok(exit::PASS)
}

fn prune(args: PruneArgs) -> anyhow::Result<u8> {
    let age = layout::parse_age(&args.older_than)?;
    let store = Store::open(&args.to)?;
    let cutoff = Utc::now() - age;
    let pruned = archive::prune(&store, args.service.as_deref(), cutoff, args.dry_run)?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut objects = 0;
    let mut bytes = 0;
    for p in &pruned {
        objects += p.keys.len();
        bytes += p.run.bytes;
        println!(
            "{verb} {} (started {}, {}, {} objects, {})",
            store.url_of(&p.run.path.prefix()),
            p.run.started_at().format("%Y-%m-%d %H:%M:%S"),
            p.run.status(),
            p.keys.len(),
            size(p.run.bytes)
        );
    }
    println!(
        "{}: {} run{}, {objects} objects, {} started before {} (older than {})",
        if args.dry_run { "dry run" } else { "pruned" },
        pruned.len(),
        if pruned.len() == 1 { "" } else { "s" },
        size(bytes),
        cutoff.format("%Y-%m-%d %H:%M:%S UTC"),
        args.older_than
    );
    Ok(exit::PASS)
}

/// Reads a side named `archive+...`, or `None` when `text` is not such a reference; with
/// `copy_to`, its files are also written there (for flame graphs).
pub(super) fn read_history(
    text: &str,
    limits: crate::profile::DecodeOptions,
    copy_to: Option<&Path>,
) -> anyhow::Result<Option<(SideProfiles, String)>> {
    match archive::parse_ref(text)? {
        Some(r) => Ok(Some(archive::read_side_into(&r, limits, copy_to)?)),
        None => Ok(None),
    }
}

/// Parses `archive+...` for `gate run`.
pub(super) fn parse_history(text: &str) -> Result<Option<archive::ArchiveRef>, ArchiveError> {
    archive::parse_ref(text)
}
