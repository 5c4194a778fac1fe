//! `gate history`: what changed across a service's archived runs. Reads each complete run's
//! `summary.parquet` (summarising from its profiles, and storing the summary, the first time
//! a run without one is read), analyses them with [`crate::history`], prints the result and
//! writes charts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use clap::Args;

use super::{emit::write_atomically, exit, load_policy, BadInput};
use crate::archive::summary::{self, SummaryRun, SUMMARY};
use crate::archive::{self, layout, ArchiveError, RunEntry, Store};
use crate::history::{self, chart, render, HistoryOptions, RunSummary};
use crate::policy::Globs;
use crate::profile::ProfileKind;
use crate::report::Format;

/// `gate history` arguments.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The store: a local folder, file://, s3://, gs:// or az:// URL.
    #[arg(long, value_name = "URL")]
    archive: String,
    /// The service (the archive's top folder).
    #[arg(long, value_name = "NAME")]
    service: String,
    /// The side of each run to follow.
    #[arg(long, value_name = "NAME", default_value = "nightly")]
    side: String,
    /// Only runs that started within this age: e.g. 90d, 12w, 48h.
    #[arg(long, value_name = "AGE", default_value = "90d")]
    since: String,
    /// Only the newest N of those runs.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// Profile kinds to follow (repeat, or comma-separated; default: every kind archived).
    #[arg(long = "profile", value_name = "KIND", value_delimiter = ',')]
    profiles: Vec<String>,
    /// Only functions matching these globs (repeat; `*` matches anything). Every matching
    /// function's series is then in the JSON, not only the changed ones.
    #[arg(long = "functions", value_name = "GLOB")]
    functions: Vec<String>,
    /// The policy whose flat, cum and total rules set each series' threshold and false
    /// discovery rate (default: the built-in policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Test series that no rule of the policy covers at this threshold, e.g. 20% (default:
    /// they are shown, not tested).
    #[arg(long, value_name = "PERCENT")]
    threshold: Option<String>,
    /// Format printed on standard output.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also write history.json, history.md, history.txt and one SVG chart per changed series
    /// into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The decode bound for runs without a summary yet, read from their profiles.
    #[command(flatten)]
    decode: super::limits::DecodeLimitArgs,
}

/// `20%` or `0.2` as a fraction.
fn parse_fraction(text: &str) -> Option<f64> {
    let v = match text.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => text.trim().parse::<f64>().ok()?,
    };
    (v.is_finite() && v > 0.0 && v <= 10.0).then_some(v)
}

/// How the runs were read, for the notes.
#[derive(Default)]
struct Reading {
    from_summaries: usize,
    summarised: usize,
    not_stored: Option<String>,
    skipped: Vec<String>,
}

/// Runs `gate history`.
pub(super) fn command(args: HistoryArgs) -> anyhow::Result<u8> {
    let policy = load_policy(args.policy.as_deref())?;
    let profiles = args
        .profiles
        .iter()
        .map(|p| {
            ProfileKind::from_name(p.trim()).ok_or_else(|| {
                BadInput(format!(
                    "--profile {p:?}: not a profile kind; write one of cpu, heap, allocs, goroutine, mutex, block"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let functions = if args.functions.is_empty() {
        None
    } else {
        Some(
            Globs::new(args.functions.clone())
                .map_err(|why| BadInput(format!("--functions: {why}")))?,
        )
    };
    let threshold = args
        .threshold
        .as_deref()
        .map(|t| {
            parse_fraction(t).ok_or_else(|| {
                BadInput(format!(
                    "--threshold {t:?}: not a percentage; write e.g. 20% or 0.2"
                ))
            })
        })
        .transpose()?;
    let since = layout::parse_age(&args.since)?;
    crate::capture::endpoints::check_name(&args.side)
        .map_err(|why| BadInput(format!("--side {:?}: {why}", args.side)))?;
    let store = Store::open_existing(
        &args.archive,
        &format!("--archive {}", args.archive),
        "give the folder or URL that gate archive --to wrote",
    )?;

    let started = Instant::now();
    let cutoff = Utc::now() - since;
    let listed = archive::list_runs(&store, Some(&args.service))?;
    let listed_count = listed.len();
    let mut reading = Reading::default();
    let mut chosen: Vec<RunEntry> = Vec::new();
    for run in listed {
        if run.started_at() < cutoff {
            continue;
        }
        if run.newer_index {
            reading
                .skipped
                .push(format!("run {} (written by a newer gate)", run.path.run_id));
            continue;
        }
        if !run.complete() || !run.sides().contains(&args.side) {
            continue;
        }
        chosen.push(run);
    }
    if let Some(n) = args.last {
        chosen.truncate(n);
    }
    chosen.reverse();
    if chosen.is_empty() {
        return Err(ArchiveError::NotFound(format!(
            "no complete run of service {} with a side {} started within {} in {} ({listed_count} run{} listed); see gate archive list --to {} --service {}",
            args.service,
            args.side,
            args.since,
            args.archive,
            if listed_count == 1 { "" } else { "s" },
            args.archive,
            args.service
        ))
        .into());
    }
    let limits = args.decode.limits(policy.footprint);
    let options = HistoryOptions {
        policy,
        profiles,
        all_series: functions.is_some(),
        functions,
        threshold,
    };
    let wanted = |kind: ProfileKind, sample_type: &str| options.reads(kind, sample_type);
    let runs = read_runs(&store, &chosen, &wanted, &args, limits, &mut reading);
    let read_seconds = started.elapsed().as_secs_f64();
    let mut history = history::analyse(&runs, &options);
    if reading.summarised > 0 {
        history.notes.push(format!(
            "{} run{} had no summary yet and {} summarised from {} profiles{}",
            reading.summarised,
            if reading.summarised == 1 { "" } else { "s" },
            if reading.summarised == 1 {
                "was"
            } else {
                "were"
            },
            if reading.summarised == 1 {
                "its"
            } else {
                "their"
            },
            match &reading.not_stored {
                None => "; the summaries are now stored beside them".to_owned(),
                Some(why) => format!(" (not stored: {why})"),
            }
        ));
    }
    for s in &reading.skipped {
        history.notes.push(format!("skipped {s}"));
    }
    tracing::info!(
        "read {} runs in {read_seconds:.2} s ({} from summaries, {} from profiles)",
        runs.len(),
        reading.from_summaries,
        reading.summarised
    );
    let title = format!("History of {} (side {})", args.service, args.side);
    let json = {
        let mut value = serde_json::to_value(&history)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("service".into(), args.service.clone().into());
            map.insert("side".into(), args.side.clone().into());
        }
        let mut bytes = serde_json::to_vec_pretty(&value)?;
        bytes.push(b'\n');
        bytes
    };
    let printed = match args.format {
        Format::Text => render::text(&history, &title).into_bytes(),
        Format::Markdown => render::markdown(&history, &title).into_bytes(),
        Format::Json => json.clone(),
    };
    if let Some(dir) = &args.out {
        write_out(dir, &history, &title, &json)?;
    }
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(&printed)
        .map_err(|e| anyhow::anyhow!("writing to standard output: {e}"))?;
    Ok(exit::PASS)
}

/// Every chosen run's summary, in order, read on as many threads as there are cores: each
/// is an independent object (or profiles) to fetch and decode.
fn read_runs(
    store: &Store,
    chosen: &[RunEntry],
    wanted: &(dyn Fn(ProfileKind, &str) -> bool + Sync),
    args: &HistoryArgs,
    limits: crate::profile::DecodeOptions,
    reading: &mut Reading,
) -> Vec<RunSummary> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(chosen.len().max(1));
    let results: Vec<(usize, Result<RunSummary, String>, Reading)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for (i, run) in chosen.iter().enumerate().skip(t).step_by(threads) {
                        let mut reading = Reading::default();
                        let result = run_summary(store, run, wanted, args, limits, &mut reading)
                            .map_err(|e| {
                                format!(
                                    "run {}: {}",
                                    run.path.run_id,
                                    crate::errors::chain_message(e.as_ref())
                                )
                            });
                        mine.push((i, result, reading));
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|r| r.0);
        all
    });
    let mut runs = Vec::with_capacity(results.len());
    for (_, result, r) in results {
        reading.from_summaries += r.from_summaries;
        reading.summarised += r.summarised;
        if reading.not_stored.is_none() {
            reading.not_stored = r.not_stored;
        }
        match result {
            Ok(summary) => runs.push(summary),
            Err(why) => reading.skipped.push(why),
        }
    }
    runs
}

/// One run's summary: stored, or made from its profiles (and stored for next time).
fn run_summary(
    store: &Store,
    run: &RunEntry,
    wanted: &(dyn Fn(ProfileKind, &str) -> bool + Sync),
    args: &HistoryArgs,
    limits: crate::profile::DecodeOptions,
    reading: &mut Reading,
) -> anyhow::Result<RunSummary> {
    let key = format!("{}/{}/{SUMMARY}", run.path.prefix(), args.side);
    let commit = run.index.as_ref().and_then(|i| i.commit.clone());
    let started = run
        .started_at()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Some(bytes) = store.get(&key)? {
        match summary::decode(bytes, wanted) {
            Ok((mut s, _)) => {
                reading.from_summaries += 1;
                s.run_id = run.path.run_id.clone();
                s.started = started;
                s.commit = commit.or(s.commit);
                return Ok(s);
            }
            Err(e) => tracing::warn!(
                "{}: {e}; summarising the run from its profiles instead",
                store.url_of(&key)
            ),
        }
    }
    let side = archive::history::read_run_side(store, run, &args.side, limits, None)?;
    let kinds = history::summarise(&side);
    reading.summarised += 1;
    if reading.not_stored.is_none() {
        let meta = SummaryRun {
            service: args.service.clone(),
            run_id: run.path.run_id.clone(),
            started: run.started_at(),
            commit: commit.clone(),
            side: args.side.clone(),
        };
        let stored = summary::encode(&meta, &kinds)
            .map_err(|e| e.to_string())
            .and_then(|bytes| store.put(&key, bytes).map_err(|e| e.to_string()));
        if let Err(why) = stored {
            tracing::warn!("cannot store run summaries in {}: {why}; history will read the profiles again next time", store.url());
            reading.not_stored = Some(why);
        }
    }
    Ok(RunSummary {
        run_id: run.path.run_id.clone(),
        started,
        commit,
        kinds,
    })
}

/// history.json, history.md, history.txt and the charts of changed series.
fn write_out(
    dir: &Path,
    history: &history::History,
    title: &str,
    json: &[u8],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        BadInput(format!(
            "--out {}: cannot create the folder ({e})",
            dir.display()
        ))
    })?;
    write_atomically(&dir.join("history.json"), json)?;
    write_atomically(
        &dir.join("history.md"),
        render::markdown(history, title).as_bytes(),
    )?;
    write_atomically(
        &dir.join("history.txt"),
        render::text(history, title).as_bytes(),
    )?;
    for s in history.series.iter().filter(|s| s.segments.len() > 1) {
        write_atomically(
            &dir.join(chart::file_name(s)),
            chart::svg(s, &history.runs).as_bytes(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_fraction;

    #[test]
    fn thresholds_read_as_percent_or_fraction() {
        assert_eq!(parse_fraction("20%"), Some(0.2));
        assert_eq!(parse_fraction("0.2"), Some(0.2));
        assert_eq!(parse_fraction("-5%"), None);
        assert_eq!(parse_fraction("x"), None);
    }
}
