//! Decode speed and memory: `gate diff` on `large.cpu.pb.gz` against itself, beside
//! `go tool pprof -top -diff_base` on the same files and beside bare inflate + decode.
//!
//! Run with `cargo bench --bench decode`. Each tool runs as its own process under
//! `/usr/bin/time`, so wall time and peak RSS are measured the same way for all three.
//! Prints a table; asserts nothing about time (figures go to BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNS: usize = 7;

fn main() {
    // Re-executed as the bare inflate + decode baseline: decode both files once, as diff must.
    if let Ok(file) = std::env::var("GATE_BENCH_DECODE_ONLY") {
        let bytes = std::fs::read(&file).expect("reading the profile");
        for _ in 0..2 {
            let p = profile_gate::profile::decode(&bytes, Default::default()).expect("decoding");
            std::hint::black_box(p);
        }
        return;
    }
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/third_party/google-pprof/large.cpu.pb.gz");
    assert!(file.exists(), "{} is missing", file.display());
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is needed (Debian package `time`)"
    );
    let f = file.to_str().unwrap();
    let me = std::env::current_exe().unwrap();

    let mut rows = Vec::new();
    let mut decode_only = Command::new(&me);
    decode_only.env("GATE_BENCH_DECODE_ONLY", f);
    rows.push((
        "inflate + decode (x2, no aggregation)",
        measure(decode_only),
    ));
    let mut gate = Command::new(env!("CARGO_BIN_EXE_gate"));
    gate.args(["diff", "--format", "json", f, f]);
    rows.push(("gate diff large large (--format json)", measure(gate)));
    // A label filter that keeps every sample: the same work plus reading every sample's
    // labels, so the two rows show what the label-aware path costs.
    let mut gate_labels = Command::new(env!("CARGO_BIN_EXE_gate"));
    gate_labels.args([
        "diff",
        "--format",
        "json",
        "--tag-ignore",
        "no-such-key=x",
        f,
        f,
    ]);
    rows.push((
        "gate diff ... --tag-ignore (labels read)",
        measure(gate_labels),
    ));
    let mut gate_text = Command::new(env!("CARGO_BIN_EXE_gate"));
    gate_text.args(["diff", f, f]);
    rows.push(("gate diff large large (text)", measure(gate_text)));
    let go_ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if go_ok {
        let mut pprof = Command::new("go");
        pprof
            .args(["tool", "pprof", "-top", &format!("-diff_base={f}"), f])
            .env("PPROF_BINARY_PATH", "/nonexistent");
        rows.push(("go tool pprof -top -diff_base", measure(pprof)));
        let mut top = Command::new("go");
        top.args(["tool", "pprof", "-top", f])
            .env("PPROF_BINARY_PATH", "/nonexistent");
        rows.push(("go tool pprof -top", measure(top)));
    } else {
        eprintln!("go not found: go tool pprof rows skipped");
    }

    println!(
        "large.cpu.pb.gz (1.2 MB gzipped, 2.4 MB raw), median of {RUNS} runs, each a fresh process"
    );
    println!("{:<40} {:>10} {:>12}", "command", "wall ms", "max RSS MiB");
    for (name, (wall, rss)) in &rows {
        println!(
            "{name:<40} {:>10.1} {:>12.1}",
            wall * 1e3,
            *rss as f64 / 1024.0
        );
    }
    let get = |n: &str| {
        rows.iter()
            .find(|(name, _)| name.starts_with(n))
            .map(|(_, m)| *m)
    };
    if let (Some(g), Some(p), Some(d)) = (
        get("gate diff large large (--format"),
        get("go tool pprof -top -diff_base"),
        get("inflate"),
    ) {
        println!(
            "gate diff vs pprof -diff_base: {:.1}x faster, {:.2}x the memory; vs bare inflate+decode: {:.2}x the time",
            p.0 / g.0,
            g.1 as f64 / p.1 as f64,
            g.0 / d.0
        );
    }
}

/// Median wall seconds and median peak RSS (KiB) of a command over `RUNS` runs.
fn measure(cmd: Command) -> (f64, u64) {
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    let out = std::env::temp_dir().join(format!("gate-bench-time-{}", std::process::id()));
    for _ in 0..RUNS {
        let status = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%e %M")
            .arg("-o")
            .arg(&out)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running /usr/bin/time");
        // gate diff exits 0 on a self-comparison; anything above 1 is a failure to report.
        assert!(
            status.code().unwrap_or(99) <= 1,
            "{:?} failed: {status}",
            cmd.get_program()
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let last = text.lines().last().unwrap_or("");
        let mut it = last.split_whitespace();
        walls.push(
            it.next()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN),
        );
        rss.push(it.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0));
    }
    let _ = std::fs::remove_file(&out);
    walls.sort_by(f64::total_cmp);
    rss.sort();
    (walls[RUNS / 2], rss[RUNS / 2])
}
