//! Live sides: targets resolved (URLs, Kubernetes objects), the capture run with the
//! port-forwards, the profiles saved, and `gate run`, `gate capture` and `gate forward`.

use super::*;

/// One side of `gate run`: live pods, or saved profiles.
#[derive(Debug)]
pub(super) enum SideInput {
    Live(SideTargets),
    Kube(KubeSideSpec),
    Local(PathBuf),
    Archive(crate::archive::ArchiveRef),
}

impl SideInput {
    /// The side as the report names it.
    pub(super) fn describe(&self) -> String {
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
pub(super) fn resolve_side(side: &str, args: &[String]) -> anyhow::Result<SideInput> {
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
pub(super) fn kube_options(k: &KubeArgs, timeout_margin: Duration) -> anyhow::Result<KubeOptions> {
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
pub(super) fn live_sides(
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
pub(super) fn plan_from(
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
    settings.endpoints = args.endpoints.clone();
    capture::CapturePlan::new(&settings)
}

/// Runs the capture engine on a runtime of its own. A stop signal (SIGINT, SIGTERM, SIGHUP)
/// ends it early and keeps what it has; with `spool`, each profile is written there as it
/// arrives, so that even a run killed outright leaves its profiles.
pub(super) fn capture_live(
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
pub(super) fn save_capture(out: &Path, capture: &Capture) -> anyhow::Result<()> {
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
pub(super) fn log_warnings(manifest: &capture::Manifest) {
    for w in &manifest.warnings {
        tracing::warn!("{w}");
    }
}

/// `gate forward`: local URLs for every pod behind the targets, open until Ctrl-C or `--for`.
pub(super) fn forward(args: ForwardArgs) -> anyhow::Result<u8> {
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
pub(super) fn capture_only(args: CaptureCommandArgs, show_bar: bool) -> anyhow::Result<u8> {
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
    let captured = capture_sides(
        &args.capture,
        &plan,
        &[&input],
        args.decode.limits(Footprint::default()),
        show_bar,
        Some(out.path()),
    )?
    .ok_or_else(|| BadInput(format!("{}: no live target to capture", input.describe())))?;
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
pub(super) fn run_live(args: RunArgs, show_bar: bool) -> anyhow::Result<u8> {
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

/// The two sides of `gate run`, in order, with their names.
const SIDES: [&str; 2] = ["baseline", "candidate"];

/// `gate run` once its output directory is claimed: the pipeline, step by step.
pub(super) fn run_live_into(
    args: RunArgs,
    plan: &capture::CapturePlan,
    out: &OutDir,
    show_bar: bool,
) -> anyhow::Result<u8> {
    let started = chrono::Utc::now();
    let inputs = [
        resolve_side(SIDES[0], &args.baseline)?,
        resolve_side(SIDES[1], &args.candidate)?,
    ];
    let archive_store = archive::open_for_run(&args.archive)?;
    let urls: Vec<&SideTargets> = inputs
        .iter()
        .filter_map(|s| match s {
            SideInput::Live(t) => Some(t),
            _ => None,
        })
        .collect();
    capture::endpoints::check_disjoint(&urls)?;
    let policy = load_policy(args.judge.policy.as_deref())?;
    let limits = args.judge.decode.limits(policy.footprint);
    for input in &inputs {
        if let SideInput::Local(path) = input {
            refuse_inside_out(path, out.path())?;
        }
    }
    out.clear_earlier_run(EarlierProfiles::All)?;

    // Saved sides first: a bad path fails before minutes of capture.
    let saved = [
        read_saved(SIDES[0], &inputs[0], limits, out)?,
        read_saved(SIDES[1], &inputs[1], limits, out)?,
    ];
    // Kubernetes sides: resolved and forwarded now, after every cheap check.
    let mut captured = capture_sides(
        &args.capture,
        plan,
        &[&inputs[0], &inputs[1]],
        limits,
        show_bar,
        Some(out.path()),
    )?;
    // The report names a saved side as read; its profiles move on to be judged.
    let names = [0, 1].map(|i| match &saved[i] {
        Some((_, described)) => described.clone(),
        None => inputs[i].describe(),
    });
    let sides = side_profiles(&inputs, saved.map(|s| s.map(|(p, _)| p)), captured.as_ref());
    if let Some(c) = captured.as_mut() {
        record_saved_sides(c, &inputs, &sides);
        save_capture(out.path(), c)?;
        log_warnings(&c.manifest);
    }
    let partial = partial_run(captured.as_ref(), &sides, plan, out)?;
    let (baseline, candidate) = sides_to_judge(sides, captured.as_ref())?;

    let mut report = judge_run(
        &args,
        &policy,
        &inputs,
        [baseline, candidate],
        names,
        limits,
        out,
    )?;
    annotate(&mut report, &policy, captured.as_ref(), partial.as_deref());

    let side_dir = |i: usize| match &inputs[i] {
        SideInput::Local(p) => p.clone(),
        SideInput::Live(_) | SideInput::Kube(_) | SideInput::Archive(_) => {
            out.path().join("profiles").join(SIDES[i])
        }
    };
    write_flames(out.path(), &side_dir(0), &side_dir(1), &report, limits);
    let code = emit(&report, &args.judge, Some(out.path()))?;
    if let Some(store) = archive_store {
        archive::after_run(archive::RunRecord {
            args: &args.archive,
            store,
            out: out.path(),
            started,
            captured: captured.as_ref(),
            sides: [(SIDES[0], &inputs[0]), (SIDES[1], &inputs[1])],
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

/// A saved side's profiles and its description; `None` for a live side. An archived side's
/// files are copied into the output, as a captured side's are written there.
fn read_saved(
    name: &str,
    input: &SideInput,
    limits: DecodeOptions,
    out: &OutDir,
) -> anyhow::Result<Option<(SideProfiles, String)>> {
    match input {
        SideInput::Local(path) => Ok(Some((inputs::read_side(path, limits)?, input.describe()))),
        SideInput::Archive(r) => Ok(Some(crate::archive::read_side_into(
            r,
            limits,
            Some(&out.path().join("profiles").join(name)),
        )?)),
        SideInput::Live(_) | SideInput::Kube(_) => Ok(None),
    }
}

/// The capture of the live sides among `inputs` (Kubernetes ones through their
/// port-forwards, with the session's record), each profile spooled under `spool` as it
/// arrives; `None` when no side is live. `gate run`, `gate capture` and the nightly archive
/// all capture through here.
pub(super) fn capture_sides(
    capture_args: &CaptureArgs,
    plan: &capture::CapturePlan,
    inputs: &[&SideInput],
    limits: DecodeOptions,
    show_bar: bool,
    spool: Option<&Path>,
) -> anyhow::Result<Option<Capture>> {
    let (live, session) = live_sides(capture_args, inputs)?;
    if live.is_empty() {
        return Ok(None);
    }
    let mut captured = capture_live(
        plan,
        &live,
        limits,
        show_bar,
        spool,
        session.as_ref().map(KubeSession::warmer),
    )?;
    if let Some(session) = session {
        captured.add_kubernetes(session.finish());
    }
    Ok(Some(captured))
}

/// Each side's profiles, saved or captured, or why a live side has none.
fn side_profiles(
    inputs: &[SideInput; 2],
    saved: [Option<SideProfiles>; 2],
    captured: Option<&Capture>,
) -> Vec<Result<SideProfiles, CaptureError>> {
    saved
        .into_iter()
        .enumerate()
        .map(|(i, saved)| match (&inputs[i], captured) {
            (SideInput::Local(_) | SideInput::Archive(_), _) => Ok(saved.unwrap_or_default()),
            (SideInput::Live(_) | SideInput::Kube(_), Some(c)) => c.side_profiles(SIDES[i]),
            (SideInput::Live(_) | SideInput::Kube(_), None) => Err(CaptureError::NothingCaptured {
                side: SIDES[i].to_owned(),
                reasons: Vec::new(),
            }),
        })
        .collect()
}

/// Records the saved sides in the capture's manifest too, in side order, and warns of the
/// kinds only one side has.
fn record_saved_sides(
    c: &mut Capture,
    inputs: &[SideInput; 2],
    sides: &[Result<SideProfiles, CaptureError>],
) {
    for (i, input) in inputs.iter().enumerate() {
        if let SideInput::Local(_) | SideInput::Archive(_) = input {
            c.manifest.sides.insert(
                i.min(c.manifest.sides.len()),
                capture::manifest::SideRecord {
                    side: SIDES[i].to_owned(),
                    source: capture::manifest::SideSource::Local,
                    targets: vec![input.describe()],
                    pods: Vec::new(),
                    kubernetes: None,
                },
            );
        }
    }
    if let [Ok(b), Ok(cand)] = sides {
        for (kind, only, other) in one_sided_kinds(b, cand) {
            c.manifest.warnings.push(format!(
                "{kind}: profiles on the {only} side only, none usable on the {other} side; not compared"
            ));
        }
    }
}

/// For a capture a stop signal ended: what the report will say it covers, or the error that
/// ends the run when not every side has a window to judge.
fn partial_run(
    captured: Option<&Capture>,
    sides: &[Result<SideProfiles, CaptureError>],
    plan: &capture::CapturePlan,
    out: &OutDir,
) -> anyhow::Result<Option<String>> {
    let Some(c) = captured.filter(|c| c.manifest.interrupted) else {
        return Ok(None);
    };
    let how = stop::received().unwrap_or("a stop signal");
    let complete = c.windows_from_every_side();
    if complete == 0 || sides.iter().any(Result::is_err) {
        return Err(Stopped(format!(
            "stopped by {how} before a window was captured on both sides: nothing to judge; the manifest and the profiles captured so far are in {}",
            out.path().display()
        ))
        .into());
    }
    Ok(Some(format!(
        "stopped by {how}: the report covers {complete} of {} windows",
        plan.windows
    )))
}

/// Both sides' profiles, or the error that says why they cannot be compared: the side with
/// nothing usable (the unreachable one named first when both are empty), or no profile kind
/// captured on both.
fn sides_to_judge(
    mut sides: Vec<Result<SideProfiles, CaptureError>>,
    captured: Option<&Capture>,
) -> anyhow::Result<(SideProfiles, SideProfiles)> {
    // Both sides empty because one could not be reached: that side is the one to name.
    if let (Some(c), [Err(_), Err(_)]) = (captured, sides.as_slice()) {
        let unreachable = |name: &str| {
            c.manifest.sides.iter().any(|s| {
                s.side == name && !s.pods.is_empty() && s.pods.iter().all(|p| p.error.is_some())
            })
        };
        if !unreachable(SIDES[0]) && unreachable(SIDES[1]) {
            sides.swap(0, 1);
        }
    }
    let mut sides = sides.into_iter();
    let baseline = sides
        .next()
        .unwrap_or_else(|| Ok(SideProfiles::default()))?;
    let candidate = sides
        .next()
        .unwrap_or_else(|| Ok(SideProfiles::default()))?;
    if captured.is_some()
        && !baseline
            .kinds
            .keys()
            .any(|k| candidate.kinds.contains_key(k))
    {
        return Err(CaptureError::NoCommonKind {
            baseline: baseline.kind_names(),
            candidate: candidate.kind_names(),
        }
        .into());
    }
    Ok((baseline, candidate))
}

/// The comparison and verdict: on the sides as decoded, or, when the run splits or filters
/// by labels, on the label groups read from the profile files (the capture keeps no labels).
fn judge_run(
    args: &RunArgs,
    policy: &Policy,
    inputs: &[SideInput; 2],
    [baseline, candidate]: [SideProfiles; 2],
    [baseline_name, candidate_name]: [String; 2],
    limits: DecodeOptions,
    out: &OutDir,
) -> anyhow::Result<Report> {
    let view = args.judge.label_view();
    let label_rules = policy.rules.iter().any(|r| r.label_filter().is_some());
    if view.is_everything() && !label_rules {
        let group = LabelGroup::whole(baseline, candidate);
        return Ok(judge(policy, &group, baseline_name, candidate_name)?);
    }
    let path = |i: usize| -> anyhow::Result<PathBuf> {
        Ok(match &inputs[i] {
            SideInput::Local(path) => path.clone(),
            SideInput::Live(_) | SideInput::Kube(_) => out.path().join("profiles").join(SIDES[i]),
            SideInput::Archive(_) => {
                refuse_history_with_labels(&inputs[i].describe())?;
                unreachable!("archived sides are refused above")
            }
        })
    };
    let (b, c) = (path(0)?, path(1)?);
    let read = |v: &LabelView| read_groups(&b, &c, limits, v);
    Ok(judge_groups(
        policy,
        &view,
        &read(&view)?,
        &read_rule_views(policy, &view, read),
        baseline_name,
        candidate_name,
    )?)
}

/// What the capture adds to the report: rules of a kind a side lacks are inconclusive (not
/// skipped), a stopped run is marked partial, and the capture's facts and warnings.
fn annotate(
    report: &mut Report,
    policy: &Policy,
    captured: Option<&Capture>,
    partial: Option<&str>,
) {
    if let Some(c) = captured {
        let unavailable: Vec<policy::Unavailable> = c
            .kinds_missing()
            .into_iter()
            .map(|(kind, side, reason)| policy::Unavailable { kind, side, reason })
            .collect();
        if !unavailable.is_empty() {
            report.verdict = policy::mark_unavailable(policy, report.verdict.clone(), &unavailable);
        }
    }
    if let Some(why) = partial {
        report.verdict.summary = format!("partial ({why}): {}", report.verdict.summary);
        report.partial = Some(why.to_owned());
    }
    if let Some(manifest) = captured.map(|c| &c.manifest) {
        report.capture_facts = Some(manifest.facts());
        report.capture = Some(capture::notes_json(manifest));
        report.warnings.extend(manifest.warnings.iter().cloned());
    }
}
