//! Change points: binary segmentation of each tested series' log levels, a margin test per
//! split, Bonferroni over the splits of a series and Benjamini-Hochberg across the series of
//! one false-discovery family.

use std::collections::HashMap;

use super::series::BuiltSeries;
use super::{Change, RunSummary, Segment, SeriesMetric, MIN_SEGMENT};
use crate::compare::stats;
use crate::policy::is_own_code;
use crate::profile::ProfileKind;

/// A change with the index of its series.
pub(crate) struct Found {
    /// Index of the series in the slice given to [`find`].
    pub series: usize,
    /// The change.
    pub change: Change,
}

/// The present points of a series, weighted.
struct Points {
    /// Run index of each present point.
    runs: Vec<usize>,
    y: Vec<f64>,
    w: Vec<f64>,
    shares: Vec<Option<f64>>,
    absent: Vec<bool>,
}

impl Points {
    fn of(s: &BuiltSeries) -> Points {
        let mut p = Points {
            runs: Vec::new(),
            y: Vec::new(),
            w: Vec::new(),
            shares: Vec::new(),
            absent: Vec::new(),
        };
        for (i, l) in s.logs.iter().enumerate() {
            if let Some((y, v)) = l {
                p.runs.push(i);
                p.y.push(*y);
                p.w.push(1.0 / (v + s.tau2).max(1e-12));
                p.shares.push(s.shares[i]);
                p.absent.push(s.absent[i]);
            }
        }
        p
    }

    /// Weighted mean and total weight of points `lo..hi`.
    fn level(&self, lo: usize, hi: usize) -> (f64, f64) {
        let w: f64 = self.w[lo..hi].iter().sum();
        let wy: f64 = self.w[lo..hi]
            .iter()
            .zip(&self.y[lo..hi])
            .map(|(w, y)| w * y)
            .sum();
        (wy / w, w)
    }

    fn share(&self, lo: usize, hi: usize) -> Option<f64> {
        let known: Vec<f64> = self.shares[lo..hi].iter().flatten().copied().collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
    }
}

/// The split of `lo..hi` with the strongest evidence of a shift beyond `ln_threshold`, and
/// its p-value times the number of splits tried.
fn best_split(
    p: &Points,
    lo: usize,
    hi: usize,
    ln_threshold: f64,
    min_abs_change: f64,
) -> Option<(usize, f64)> {
    if hi - lo < 2 * MIN_SEGMENT {
        return None;
    }
    let splits = (lo + MIN_SEGMENT..=hi - MIN_SEGMENT).count();
    let mut best: Option<(usize, f64)> = None;
    for k in lo + MIN_SEGMENT..=hi - MIN_SEGMENT {
        if let (Some(before), Some(after)) = (p.share(lo, k), p.share(k, hi)) {
            if (after - before).abs() < min_abs_change {
                continue;
            }
        }
        let (mb, wb) = p.level(lo, k);
        let (ma, wa) = p.level(k, hi);
        let se = (1.0 / wb + 1.0 / wa).sqrt();
        let z = ((ma - mb).abs() - ln_threshold) / se;
        // Either way: twice the one-sided tail. Normal, not Student's t: each point's
        // variance is its events' (known) plus the runs' noise, which is pooled over many
        // series and never taken below that pool.
        let pv = (2.0 * stats::normal_sf(z)).min(1.0);
        if best.is_none_or(|(_, b)| pv < b) {
            best = Some((k, pv));
        }
    }
    best.map(|(k, pv)| (k, (pv * splits as f64).min(1.0)))
}

/// Splits `lo..hi` again and again while a split's p-value is at most `cutoff`; returns the
/// boundaries found with their p-values.
fn segment(
    p: &Points,
    lo: usize,
    hi: usize,
    ln_threshold: f64,
    min_abs_change: f64,
    cutoff: f64,
    out: &mut Vec<(usize, f64)>,
) {
    if let Some((k, pv)) = best_split(p, lo, hi, ln_threshold, min_abs_change) {
        if pv <= cutoff {
            out.push((k, pv));
            segment(p, lo, k, ln_threshold, min_abs_change, cutoff, out);
            segment(p, k, hi, ln_threshold, min_abs_change, cutoff, out);
        }
    }
}

/// Finds every change point; sets each series' segments.
pub(crate) fn find(built: &mut [BuiltSeries], runs: &[RunSummary]) -> Vec<Found> {
    let points: Vec<Points> = built.iter().map(Points::of).collect();
    // First splits of every tested series, by false-discovery family.
    let mut families: HashMap<u64, Vec<(usize, f64)>> = HashMap::new();
    for (i, s) in built.iter().enumerate() {
        let Some(t) = s.series.threshold else {
            continue;
        };
        let p = &points[i];
        let pv = best_split(p, 0, p.y.len(), (1.0 + t).ln(), s.min_abs_change)
            .map(|(_, pv)| pv)
            .unwrap_or(1.0);
        families.entry(s.fdr.to_bits()).or_default().push((i, pv));
    }
    let mut cutoffs: HashMap<usize, f64> = HashMap::new();
    for (fdr, members) in &families {
        let fdr = f64::from_bits(*fdr);
        let raw: Vec<f64> = members.iter().map(|m| m.1).collect();
        let adjusted = stats::benjamini_hochberg(&raw);
        let cutoff = members
            .iter()
            .zip(&adjusted)
            .filter(|(_, a)| **a <= fdr)
            .map(|(m, _)| m.1)
            .fold(f64::NAN, f64::max);
        if cutoff.is_nan() {
            continue;
        }
        for m in members {
            cutoffs.insert(m.0, cutoff);
        }
    }
    let mut found = Vec::new();
    for (i, s) in built.iter_mut().enumerate() {
        let p = &points[i];
        let mut bounds = Vec::new();
        if let (Some(&cutoff), Some(t)) = (cutoffs.get(&i), s.series.threshold) {
            segment(
                p,
                0,
                p.y.len(),
                (1.0 + t).ln(),
                s.min_abs_change,
                cutoff,
                &mut bounds,
            );
        }
        bounds.sort_by_key(|b| b.0);
        let mut edges: Vec<usize> = vec![0];
        edges.extend(bounds.iter().map(|b| b.0));
        edges.push(p.y.len());
        s.series.segments = edges
            .windows(2)
            .filter(|e| e[1] > e[0])
            .map(|e| Segment {
                first: p.runs[e[0]],
                last: p.runs[e[1] - 1],
                level: p.level(e[0], e[1]).0.exp(),
            })
            .collect();
        for (j, &(k, pv)) in bounds.iter().enumerate() {
            let lo = edges[j];
            let hi = edges[j + 2];
            found.push(Found {
                series: i,
                change: change(s, p, (lo, k, hi), pv, runs),
            });
        }
    }
    found
}

/// The change at boundary `k` between the segments `lo..k` and `k..hi`.
fn change(
    s: &BuiltSeries,
    p: &Points,
    (lo, k, hi): (usize, usize, usize),
    p_value: f64,
    runs: &[RunSummary],
) -> Change {
    let (mb, wb) = p.level(lo, k);
    let (ma, wa) = p.level(k, hi);
    let d = ma - mb;
    let se = (1.0 / wb + 1.0 / wa).sqrt();
    let q = stats::normal_quantile(1.0 - s.fdr / 2.0);
    let run = &runs[p.runs[k]];
    let function = s.series.metric != SeriesMetric::Total;
    Change {
        function: s.series.function.clone(),
        named_at: None,
        profile: s.series.profile,
        sample_type: s.series.sample_type.clone(),
        metric: s.series.metric,
        run_id: run.run_id.clone(),
        run_index: p.runs[k],
        started: run.started.clone(),
        commit: run.commit.clone(),
        ratio: d.exp(),
        lower: (d - q * se).exp(),
        upper: (d + q * se).exp(),
        confidence: 1.0 - s.fdr,
        p_value,
        before: mb.exp(),
        after: ma.exp(),
        unit: s.series.unit.clone(),
        share_before: p.share(lo, k).filter(|_| function),
        share_after: p.share(k, hi).filter(|_| function),
        threshold: s.series.threshold.unwrap_or(0.0),
        new: p.absent[lo..k].iter().all(|a| *a),
        depth: s.series.depth,
    }
}

/// Names each function's change at the service's own code: itself when it is, else the
/// deepest own function whose cumulative value changed at the same run the same way (a
/// library leaf that got slower is named at the caller that asks more of it).
pub(crate) fn name_at_own_code(changes: &mut [Change], built: &[BuiltSeries]) {
    struct Caller {
        run: usize,
        profile: ProfileKind,
        sample_type: String,
        up: bool,
        depth: f64,
        function: String,
    }
    let depth: HashMap<(ProfileKind, &str, &str), f64> = built
        .iter()
        .filter(|s| s.series.metric == SeriesMetric::Cum)
        .map(|s| {
            let key = (
                s.series.profile,
                s.series.sample_type.as_str(),
                s.series.function.as_str(),
            );
            (key, s.series.depth)
        })
        .collect();
    let callers: Vec<Caller> = changes
        .iter()
        .filter(|c| c.metric == SeriesMetric::Cum && is_own_code(&c.function))
        .map(|c| Caller {
            run: c.run_index,
            profile: c.profile,
            sample_type: c.sample_type.clone(),
            up: c.ratio > 1.0,
            depth: depth
                .get(&(c.profile, c.sample_type.as_str(), c.function.as_str()))
                .copied()
                .unwrap_or(0.0),
            function: c.function.clone(),
        })
        .collect();
    for c in changes.iter_mut() {
        if c.metric == SeriesMetric::Total {
            continue;
        }
        if is_own_code(&c.function) {
            c.named_at = Some(c.function.clone());
            continue;
        }
        let up = c.ratio > 1.0;
        c.named_at = callers
            .iter()
            .filter(|k| {
                k.run == c.run_index
                    && k.profile == c.profile
                    && k.sample_type == c.sample_type
                    && k.up == up
            })
            // Deepest: the nearest the leaf, i.e. the smallest distance from it.
            .min_by(|a, b| a.depth.total_cmp(&b.depth))
            .map(|k| k.function.clone());
    }
}
