//! One series drawn as SVG: each run's level with its interval, the levels between change
//! points, and a marker at each change. Pure: a series in, the file's bytes out.

use std::fmt::Write;

use super::{render, RunFacts, Series};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const MARGIN: f64 = 16.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of `series` over `runs`.
pub fn svg(series: &Series, runs: &[RunFacts]) -> String {
    let max = series
        .points
        .iter()
        .flatten()
        .map(|p| p.upper.max(p.value))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.08;
    let n = runs.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // Points stay off the axes by a margin.
    let x = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + MARGIN + (plot_w - 2.0 * MARGIN) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - (v / max).clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let title = render::series_label(
        &series.function,
        series.profile,
        &series.sample_type,
        series.metric,
    );
    let _ = write!(
        s,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="{LEFT}" y="22" font-size="14" font-weight="bold">{}</text>"##,
        escape(&title)
    );
    // Axes and four value ticks.
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#444"/><line x1="{LEFT}" y1="{0}" x2="{}" y2="{0}" stroke="#444"/>"##,
        TOP + plot_h,
        LEFT + plot_w
    );
    for t in 0..=4 {
        let v = max * t as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{1}" x2="{2}" y2="{1}" stroke="#eee"/><text x="{3}" y="{4}" text-anchor="end" fill="#444">{5}</text>"##,
            LEFT + 1.0,
            y(v),
            LEFT + plot_w,
            LEFT - 6.0,
            y(v) + 4.0,
            escape(&render::value(v, &series.unit))
        );
    }
    // Change markers, labelled with the run's date and commit.
    for seg in series.segments.iter().skip(1) {
        let cx = x(seg.first);
        let label = runs
            .get(seg.first)
            .map(|r| {
                let date = r.started.get(..10).unwrap_or(&r.started);
                match &r.commit {
                    Some(c) => format!("{date} {}", c.get(..7).unwrap_or(c)),
                    None => date.to_owned(),
                }
            })
            .unwrap_or_default();
        let _ = write!(
            s,
            r##"<line x1="{cx}" y1="{TOP}" x2="{cx}" y2="{}" stroke="#c0392b" stroke-dasharray="4 3"/><text x="{cx}" y="{}" text-anchor="middle" fill="#c0392b">{}</text>"##,
            TOP + plot_h,
            TOP - 4.0,
            escape(&label)
        );
    }
    // Levels between changes.
    for seg in &series.segments {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{2}" x2="{}" y2="{2}" stroke="#2c7fb8" stroke-width="2" opacity="0.6"/>"##,
            x(seg.first),
            x(seg.last),
            y(seg.level)
        );
    }
    // Points with their intervals.
    for (i, p) in series.points.iter().enumerate() {
        let Some(p) = p else { continue };
        let cx = x(i);
        let run = runs.get(i).map(|r| r.run_id.as_str()).unwrap_or_default();
        let _ = write!(
            s,
            r##"<line x1="{cx}" y1="{}" x2="{cx}" y2="{}" stroke="#888"/><circle cx="{cx}" cy="{}" r="3.5" fill="#222"><title>{}: {}</title></circle>"##,
            y(p.lower),
            y(p.upper),
            y(p.value),
            escape(run),
            escape(&render::value(p.value, &series.unit))
        );
    }
    // First and last dates under the axis.
    for i in [0, n - 1] {
        if let Some(r) = runs.get(i) {
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" text-anchor="{}" fill="#444">{}</text>"##,
                x(i),
                TOP + plot_h + 18.0,
                if i == 0 { "start" } else { "end" },
                escape(r.started.get(..10).unwrap_or(&r.started))
            );
        }
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">{} runs; bars: 95% intervals; lines: levels between changes</text></svg>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        runs.len()
    );
    s.push('\n');
    s
}

/// A file name for a series' chart: profile, metric and function, in safe characters.
pub fn file_name(series: &Series) -> String {
    let function: String = series
        .function
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!(
        "history-{}-{}-{}-{function}.svg",
        series.profile.name(),
        series.sample_type,
        series.metric.name()
    )
}
