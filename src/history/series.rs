//! The points of every series of one profile kind: per run, each pod's value per second (or
//! as it is, for snapshots), averaged over pods, normalised across runs, with its variance.

use rustc_hash::FxHashMap;

use super::{HistoryOptions, Point, RunSummary, Series, SeriesMetric};
use crate::compare::stats;
use crate::compare::summary::SampleTypeSummary;
use crate::policy::{is_own_code, Metric, Normalize, Rule};
use crate::profile::ProfileKind;

/// Functions with at least this many events in every run anchor the median-ratio size factors.
const ANCHOR_MIN_EVENTS: f64 = 5.0;
/// Mean events a run a function series needs to be tested.
const MIN_TESTED_EVENTS: f64 = 10.0;
/// Share of the anchors left out at each end of their log ratios (edgeR's default).
const ANCHOR_TRIM: f64 = 0.3;
/// Fewer anchors than this and runs are normalised by their totals instead.
const ANCHOR_MIN_FUNCTIONS: usize = 5;
/// A run without any event of a function is taken to have half an event's worth: the log of
/// zero has no level, and half an event is what the run could have missed.
const ABSENT_EVENTS: f64 = 0.5;
/// Events a series needs in every run for its run-to-run noise to count towards the pool.
const POOL_MIN_EVENTS: f64 = 20.0;
/// The median of a squared standard normal: turns a median of squares into a variance.
const MEDIAN_CHI2_1: f64 = 0.454_936_423_119_572_7;

/// A series with what the change search needs beside it.
#[derive(Debug, Clone)]
pub(crate) struct BuiltSeries {
    /// The series as shown.
    pub series: Series,
    /// Per run: the log level and its own variance (without the runs' extra).
    pub logs: Vec<Option<(f64, f64)>>,
    /// Per run: the share of the total (functions).
    pub shares: Vec<Option<f64>>,
    /// Per run: true when the function had no event in that run.
    pub absent: Vec<bool>,
    /// Per run: the sampled events behind the point.
    pub events: Vec<f64>,
    /// The runs' extra variance on the log scale.
    pub tau2: f64,
    /// False discovery rate of the rule's family.
    pub fdr: f64,
    /// Smallest share change that counts (functions).
    pub min_abs_change: f64,
}

/// One metric's sums over a run's pods.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    sum: f64,
    sum_sq: f64,
    /// Sum of value^2 / events: the sampling variance of the sum.
    sampling: f64,
    events: f64,
}

impl Sums {
    fn add(&mut self, value: f64, events: f64) {
        self.sum += value;
        self.sum_sq += value * value;
        if events > 0.0 {
            self.sampling += value * value / events;
        }
        self.events += events;
    }

    /// Mean over `n` pods and the variance of that mean: the larger of sampling noise and the
    /// spread between pods.
    fn level(&self, n: usize, exact: bool) -> (f64, f64) {
        let n = n as f64;
        let mean = self.sum / n;
        let sampling = if exact { 0.0 } else { self.sampling / (n * n) };
        let spread = if n >= 2.0 {
            ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0) / n
        } else {
            0.0
        };
        (mean, sampling.max(spread))
    }
}

#[derive(Debug, Clone, Default)]
struct FunctionSums {
    flat: Sums,
    cum: Sums,
    depth: f64,
    depth_pods: f64,
}

/// One run's sums for one sample type.
struct RunSums {
    pods: usize,
    exact: bool,
    total: Sums,
    functions: FxHashMap<u32, FunctionSums>,
}

/// The sample types a kind is analysed by, as named: its main one and every one a rule reads.
pub(crate) fn wanted_sample_types(
    kind: ProfileKind,
    rules: &[Rule],
) -> impl Iterator<Item = &str> + '_ {
    std::iter::once(kind.main_sample_type()).chain(
        rules
            .iter()
            .filter(move |r| r.profile == kind)
            .map(Rule::sample_type),
    )
}

/// The sample types analysed for a kind among those its profiles have.
fn sample_types(kind: ProfileKind, names: &[&str], rules: &[Rule]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in wanted_sample_types(kind, rules) {
        if let Some((_, name)) = kind.find_sample_type(w, names.iter().copied()) {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// The first rule that tests this series: same profile, metric and sample type, selecting
/// the function, with a threshold and no label filter (a summary keeps no labels).
fn rule_for<'a>(
    rules: &'a [Rule],
    kind: ProfileKind,
    sample_type: &str,
    metric: SeriesMetric,
    function: Option<&str>,
) -> Option<&'a Rule> {
    let want = match metric {
        SeriesMetric::Flat => Metric::Flat,
        SeriesMetric::Cum => Metric::Cum,
        SeriesMetric::Total => Metric::Total,
    };
    rules.iter().find(|r| {
        r.profile == kind
            && r.metric == want
            && r.max_increase.is_some()
            && r.labels.is_empty()
            && r.ignore_labels.is_empty()
            && kind
                .find_sample_type(r.sample_type(), std::iter::once(sample_type))
                .is_some()
            && function.is_none_or(|f| r.selects(f))
    })
}

/// Every series of one kind.
pub(crate) fn build(
    runs: &[RunSummary],
    kind: ProfileKind,
    options: &HistoryOptions,
    notes: &mut Vec<String>,
) -> Vec<BuiltSeries> {
    let Some(first) = runs
        .iter()
        .filter_map(|r| r.kinds.get(&kind))
        .flat_map(|pods| pods.first())
        .next()
    else {
        return Vec::new();
    };
    let names: Vec<&str> = first
        .sample_types
        .iter()
        .map(|s| s.sample_type.name.as_str())
        .collect();
    let mut out = Vec::new();
    for st in sample_types(kind, &names, &options.policy.rules) {
        out.extend(build_sample_type(runs, kind, &st, options, notes));
    }
    out
}

fn build_sample_type(
    runs: &[RunSummary],
    kind: ProfileKind,
    st: &str,
    options: &HistoryOptions,
    notes: &mut Vec<String>,
) -> Vec<BuiltSeries> {
    let gathered = gather(runs, kind, st);
    if gathered.untimed {
        notes.push(format!(
            "some {} profiles have no duration: their values are taken as they are, not per second",
            kind.name()
        ));
    }
    let per_run = &gathered.per_run;
    let rules = &options.policy.rules;
    let defaults = &options.policy.defaults;
    let blank = |metric: SeriesMetric, function: &str| Series {
        profile: kind,
        sample_type: st.to_owned(),
        unit: gathered.unit.clone(),
        metric,
        function: function.to_owned(),
        own_code: false,
        rule: None,
        threshold: None,
        run_noise: 0.0,
        depth: 0.0,
        points: Vec::new(),
        segments: Vec::new(),
    };

    // Totals: per second, as the policy's total rules read them.
    let totals: Vec<Option<(f64, f64, f64)>> = per_run
        .iter()
        .map(|r| {
            r.as_ref().map(|r| {
                let (mean, var) = r.total.level(r.pods, r.exact);
                (mean, var, r.total.events)
            })
        })
        .collect();
    let rule = rule_for(rules, kind, st, SeriesMetric::Total, None);
    let total = finish(
        Series {
            rule: rule.map(|r| r.name.clone()),
            threshold: rule.and_then(|r| r.max_increase),
            ..blank(SeriesMetric::Total, "total")
        },
        PointData {
            logs: totals
                .iter()
                .map(|t| t.map(|(m, v, _)| log_point(m, v, 0.0)))
                .collect(),
            shares: vec![None; runs.len()],
            absent: vec![false; runs.len()],
            events: totals
                .iter()
                .map(|t| t.map(|t| t.2).unwrap_or(0.0))
                .collect(),
        },
        rule.map(|r| r.settings.fdr).unwrap_or(defaults.fdr),
        0.0,
    );

    let names = &gathered.names;
    let (log_size, fell_back) = size_factors(defaults.normalize, per_run, &totals, names.len());
    if fell_back {
        notes.push(format!(
            "{}: too few functions sampled in every run for median-ratio normalisation; functions are normalised by the runs' totals",
            super::render::profile_label(kind, st)
        ));
    }
    let levels = RunLevels {
        totals: &totals,
        log_size: &log_size,
        // Half an event's worth of the run's level, per pod: where a function had no event.
        floors: totals
            .iter()
            .map(|t| match t {
                Some((mean, _, events)) if *events > 0.0 => ABSENT_EVENTS * mean / events,
                _ => f64::MIN_POSITIVE,
            })
            .collect(),
    };

    let mut functions: Vec<BuiltSeries> = Vec::new();
    for (f, name) in names.iter().enumerate() {
        // `--functions` chooses the series; every function still anchors the normalisation.
        if options
            .functions
            .as_ref()
            .is_some_and(|g| !g.is_match(name))
        {
            continue;
        }
        let depth = mean_depth(per_run, f as u32);
        for metric in [SeriesMetric::Flat, SeriesMetric::Cum] {
            let rule = rule_for(rules, kind, st, metric, Some(name));
            let settings = rule.map(|r| &r.settings).unwrap_or(defaults);
            let data = function_data(per_run, f as u32, metric, &levels);
            let threshold = rule
                .and_then(|r| r.max_increase)
                .or(options.threshold)
                .filter(|_| data.testable(settings.min_share));
            let rule_name = threshold.map(|_| {
                rule.map(|r| r.name.clone())
                    .unwrap_or_else(|| "--threshold".to_owned())
            });
            functions.push(finish(
                Series {
                    own_code: is_own_code(name),
                    rule: rule_name,
                    threshold,
                    depth,
                    ..blank(metric, name)
                },
                data,
                settings.fdr,
                settings.min_abs_change,
            ));
        }
    }
    pool_run_noise(&mut functions);
    let mut out = vec![total];
    out.extend(functions);
    out
}

/// One sample type's numbers, run by run.
struct Gathered<'a> {
    /// Per run: its pods' sums, `None` where the run has no profile of the kind.
    per_run: Vec<Option<RunSums>>,
    /// Every function seen, in order of first appearance; ids index it.
    names: Vec<&'a str>,
    /// The unit of a point: per second but for snapshots.
    unit: String,
    /// Whether some profile had no duration (its values then taken as they are).
    untimed: bool,
}

/// Sums every run's pods of `kind` for sample type `st`, per second but for snapshots.
fn gather<'a>(runs: &'a [RunSummary], kind: ProfileKind, st: &str) -> Gathered<'a> {
    let snapshot = kind.is_snapshot();
    let mut names: Vec<&str> = Vec::new();
    let mut index: FxHashMap<&str, u32> = FxHashMap::default();
    let mut unit = String::new();
    let mut untimed = false;
    let per_run: Vec<Option<RunSums>> = runs
        .iter()
        .map(|run| {
            let pods = run.kinds.get(&kind)?;
            let mut sums = RunSums {
                pods: 0,
                exact: false,
                total: Sums::default(),
                functions: FxHashMap::default(),
            };
            for pod in pods {
                let Some(s) = pod.sample_types.iter().find(|s| s.sample_type.name == st) else {
                    continue;
                };
                let rate = if snapshot {
                    1.0
                } else if pod.seconds > 0.0 {
                    1.0 / pod.seconds
                } else {
                    untimed = true;
                    1.0
                };
                if unit.is_empty() {
                    unit = s.sample_type.unit.clone();
                }
                add_pod(&mut sums, s, rate, &mut names, &mut index);
            }
            (sums.pods > 0).then_some(sums)
        })
        .collect();
    Gathered {
        per_run,
        names,
        unit: if snapshot { unit } else { format!("{unit}/s") },
        untimed,
    }
}

/// A function's mean distance from the leaf over every run's pods.
fn mean_depth(per_run: &[Option<RunSums>], f: u32) -> f64 {
    let (sum, pods) = per_run
        .iter()
        .flatten()
        .filter_map(|r| r.functions.get(&f))
        .fold((0.0, 0.0), |(d, n), fs| (d + fs.depth, n + fs.depth_pods));
    if pods > 0.0 {
        sum / pods
    } else {
        0.0
    }
}

/// What a function's points are measured against, per run.
struct RunLevels<'a> {
    /// The run's total: mean, variance, events.
    totals: &'a [Option<(f64, f64, f64)>],
    /// The run's size factor (log) and its variance.
    log_size: &'a [(f64, f64)],
    /// The level a function with no event in the run is taken at.
    floors: Vec<f64>,
}

/// A series' numbers, run by run.
struct PointData {
    /// The log level and its own variance.
    logs: Vec<Option<(f64, f64)>>,
    /// The share of the total (functions).
    shares: Vec<Option<f64>>,
    /// Whether the function had no event.
    absent: Vec<bool>,
    /// The sampled events behind the point.
    events: Vec<f64>,
}

impl PointData {
    /// Independent filtering (as DESeq2 does): a series with too few events to ever show a
    /// shift beyond the threshold is not tested, so it does not dilute the false-discovery
    /// correction of those that can. The filter (events over all runs) does not depend on
    /// where a change is, so it does not bias the tests it keeps.
    fn testable(&self, min_share: f64) -> bool {
        let known = self.logs.iter().flatten().count().max(1) as f64;
        self.shares
            .iter()
            .flatten()
            .filter(|&&s| s >= min_share)
            .count()
            >= super::MIN_SEGMENT
            && self.events.iter().sum::<f64>() / known >= MIN_TESTED_EVENTS
    }
}

/// Function `f`'s points of `metric`, normalised by each run's size factor.
fn function_data(
    per_run: &[Option<RunSums>],
    f: u32,
    metric: SeriesMetric,
    levels: &RunLevels<'_>,
) -> PointData {
    let n = per_run.len();
    let mut data = PointData {
        logs: Vec::with_capacity(n),
        shares: Vec::with_capacity(n),
        absent: Vec::with_capacity(n),
        events: Vec::with_capacity(n),
    };
    for (i, r) in per_run.iter().enumerate() {
        let Some(r) = r else {
            data.logs.push(None);
            data.shares.push(None);
            data.absent.push(false);
            data.events.push(0.0);
            continue;
        };
        let sums = r
            .functions
            .get(&f)
            .map(|fs| match metric {
                SeriesMetric::Cum => fs.cum,
                _ => fs.flat,
            })
            .unwrap_or_default();
        let (mean, var) = sums.level(r.pods, r.exact);
        let total = levels.totals[i].map(|t| t.0).unwrap_or(0.0);
        let (log_factor, factor_var) = levels.log_size[i];
        let scale = (-log_factor).exp();
        let (y, v) = log_point(mean * scale, var * scale * scale, levels.floors[i] * scale);
        data.logs.push(Some((y, v + factor_var)));
        data.shares.push((total > 0.0).then(|| mean / total));
        data.absent.push(sums.events <= 0.0 && mean <= 0.0);
        data.events.push(sums.events);
    }
    data
}

/// Adds one pod's numbers to its run's sums.
fn add_pod<'a>(
    sums: &mut RunSums,
    s: &'a SampleTypeSummary,
    rate: f64,
    names: &mut Vec<&'a str>,
    index: &mut FxHashMap<&'a str, u32>,
) {
    sums.pods += 1;
    sums.exact = s.exact;
    sums.total.add(s.total * rate, s.total_events);
    for f in &s.functions {
        let id = *index.entry(f.name.as_str()).or_insert_with(|| {
            names.push(f.name.as_str());
            (names.len() - 1) as u32
        });
        let e = sums.functions.entry(id).or_default();
        e.flat.add(f.flat * rate, f.flat_events);
        e.cum.add(f.cum * rate, f.cum_events);
        e.depth += f.depth;
        e.depth_pods += 1.0;
    }
    // A function a pod did not have is a zero in that pod: the spread between pods counts it
    // through `sum_sq` and `sum` over every pod of the run.
}

/// The log of a level and the variance of that log (delta method); a level below the floor
/// (no event) sits at the floor with the variance of half an event.
fn log_point(mean: f64, var: f64, floor: f64) -> (f64, f64) {
    if mean > floor && mean > 0.0 {
        (mean.ln(), var / (mean * mean))
    } else {
        (floor.max(f64::MIN_POSITIVE).ln(), 1.0 / ABSENT_EVENTS)
    }
}

/// Per run, the log size factor that makes functions comparable across runs, and its
/// variance, by the policy's normalisation. For median-ratio: over the functions sampled in
/// every run, each one's log level against its mean log level, the trimmed mean of those
/// (edgeR's TMM: the 30% most extreme either way left out, so a function that changed does not
/// move the others; the rest weighted by their events, so a function of six events does not
/// count as much as one of six hundred), falling back (and saying so with `true`) to the log
/// total against the mean log total. For rate: none.
fn size_factors(
    method: Normalize,
    per_run: &[Option<RunSums>],
    totals: &[Option<(f64, f64, f64)>],
    n_functions: usize,
) -> (Vec<(f64, f64)>, bool) {
    if method == Normalize::Rate {
        return (vec![(0.0, 0.0); per_run.len()], false);
    }
    let present: Vec<&RunSums> = per_run.iter().flatten().collect();
    let level = |r: &RunSums, f: u32| -> Option<(f64, f64)> {
        let s = r.functions.get(&f)?;
        (s.flat.events >= ANCHOR_MIN_EVENTS && s.flat.sum > 0.0)
            .then(|| ((s.flat.sum / r.pods as f64).ln(), s.flat.events))
    };
    // (function, mean log level, mean events)
    let anchors: Vec<(u32, f64, f64)> = (0..n_functions as u32)
        .filter_map(|f| {
            let levels: Option<Vec<(f64, f64)>> = present.iter().map(|r| level(r, f)).collect();
            let levels = levels?;
            let n = levels.len().max(1) as f64;
            let mean = |i: fn(&(f64, f64)) -> f64| levels.iter().map(i).sum::<f64>() / n;
            Some((f, mean(|l| l.0), mean(|l| l.1) * n))
        })
        .collect();
    let median_ratio = method == Normalize::MedianRatio;
    if median_ratio && anchors.len() >= ANCHOR_MIN_FUNCTIONS {
        let factors = per_run
            .iter()
            .map(|r| match r {
                Some(r) => {
                    let mut ratios: Vec<(f64, f64)> = anchors
                        .iter()
                        .filter_map(|&(f, g, all_events)| {
                            level(r, f).map(|(l, e)| (l - g, 1.0 / (1.0 / e + 1.0 / all_events)))
                        })
                        .collect();
                    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let trim = (ratios.len() as f64 * ANCHOR_TRIM) as usize;
                    let kept = &ratios[trim..ratios.len() - trim];
                    let weight: f64 = kept.iter().map(|k| k.1).sum();
                    if weight > 0.0 {
                        (
                            kept.iter().map(|k| k.0 * k.1).sum::<f64>() / weight,
                            1.0 / weight,
                        )
                    } else {
                        (0.0, 0.0)
                    }
                }
                None => (0.0, 0.0),
            })
            .collect();
        return (factors, false);
    }
    let logs: Vec<Option<(f64, f64)>> = totals
        .iter()
        .map(|t| t.and_then(|(m, v, _)| (m > 0.0).then(|| (m.ln(), v / (m * m)))))
        .collect();
    let known: Vec<f64> = logs.iter().flatten().map(|l| l.0).collect();
    let mean = known.iter().sum::<f64>() / known.len().max(1) as f64;
    let factors = logs
        .iter()
        .map(|l| l.map(|(l, v)| (l - mean, v)).unwrap_or((0.0, 0.0)))
        .collect();
    (factors, median_ratio)
}

/// The runs' extra variance on the log scale from successive differences: each difference
/// has variance v_i + v_{i+1} + 2 tau^2; the median of the squares (not their mean) so that a
/// level shift, one large difference, does not count as noise. `None` with fewer than three
/// differences.
pub(crate) fn own_tau2(logs: &[Option<(f64, f64)>]) -> Option<f64> {
    let present: Vec<(f64, f64)> = logs.iter().flatten().copied().collect();
    if present.len() < 4 {
        return None;
    }
    let squares: Vec<f64> = present
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).powi(2))
        .collect();
    let own: Vec<f64> = present.windows(2).map(|w| w[0].1 + w[1].1).collect();
    let spread = stats::median(&squares)? / MEDIAN_CHI2_1;
    Some(((spread - stats::median(&own)?) / 2.0).max(0.0))
}

/// Never below the median over the tested series of the same metric: a series of eight runs
/// can look quiet by chance, and a quiet-looking series is where a false change hides.
fn pool_run_noise(series: &mut [BuiltSeries]) {
    for metric in [SeriesMetric::Flat, SeriesMetric::Cum] {
        let tested = |s: &&BuiltSeries| s.series.metric == metric && s.series.threshold.is_some();
        // Measured where counts are large enough for the log's variance to be 1 / events: a
        // series of a few events, or none, swings by more than that and would read as noise
        // between runs.
        let well_sampled = |s: &&BuiltSeries| {
            s.events
                .iter()
                .zip(&s.logs)
                .all(|(e, l)| l.is_none() || *e >= POOL_MIN_EVENTS)
        };
        let mut own: Vec<f64> = series
            .iter()
            .filter(tested)
            .filter(well_sampled)
            .map(|s| s.tau2)
            .collect();
        if own.is_empty() {
            own = series.iter().filter(tested).map(|s| s.tau2).collect();
        }
        let Some(pooled) = stats::median(&own) else {
            continue;
        };
        for s in series.iter_mut().filter(|s| s.series.metric == metric) {
            if pooled > s.tau2 {
                s.tau2 = pooled;
                s.series.run_noise = pooled.sqrt();
                s.series.points = points(&s.logs, &s.shares, s.tau2, &s.events);
            }
        }
    }
}

/// The points shown: level and a 95% interval from its own variance and the runs'.
fn points(
    logs: &[Option<(f64, f64)>],
    shares: &[Option<f64>],
    tau2: f64,
    events: &[f64],
) -> Vec<Option<Point>> {
    let z = stats::normal_quantile(0.975);
    logs.iter()
        .enumerate()
        .map(|(i, l)| {
            let (y, v) = (*l)?;
            let half = z * (v + tau2).sqrt();
            Some(Point {
                value: y.exp(),
                lower: (y - half).exp(),
                upper: (y + half).exp(),
                share: shares.get(i).copied().flatten(),
                events: events.get(i).copied().unwrap_or(0.0),
            })
        })
        .collect()
}

/// A series with its points, and what the change search needs of it; the runs' extra noise
/// is the series' own (see [`pool_run_noise`] for the floor applied later).
fn finish(mut series: Series, data: PointData, fdr: f64, min_abs_change: f64) -> BuiltSeries {
    let tau2 = own_tau2(&data.logs).unwrap_or(0.0);
    series.run_noise = tau2.sqrt();
    series.points = points(&data.logs, &data.shares, tau2, &data.events);
    BuiltSeries {
        series,
        logs: data.logs,
        shares: data.shares,
        absent: data.absent,
        events: data.events,
        tau2,
        fdr,
        min_abs_change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_noise_ignores_one_level_shift_and_measures_steady_spread() {
        // Eight quiet runs with a 2x shift in the middle: the shift is not noise.
        let shifted: Vec<Option<(f64, f64)>> = (0..8)
            .map(|i| {
                Some((
                    if i < 4 { 0.0 } else { 2f64.ln() } + 0.01 * (i % 2) as f64,
                    0.0,
                ))
            })
            .collect();
        assert!(own_tau2(&shifted).unwrap() < 0.001);
        // Alternating +-10%: the differences are 20% apart, a run noise of about 14%.
        let noisy: Vec<Option<(f64, f64)>> = (0..9)
            .map(|i| Some((if i % 2 == 0 { 0.1 } else { -0.1 }, 0.0)))
            .collect();
        let tau = own_tau2(&noisy).unwrap().sqrt();
        assert!(tau > 0.15 && tau < 0.25, "{tau}");
        assert_eq!(own_tau2(&[Some((0.0, 0.0)); 3]), None);
    }
}
