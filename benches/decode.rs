//! Decode speed and memory: `gate diff` of a profile against itself, beside the floor of
//! reading it (gunzip and a zero-copy walk over every sample), beside decoding it into owned
//! prost messages, and beside `go tool pprof`, on two profiles: `large.cpu.pb.gz` (a real 240 s
//! Go CPU profile from google/pprof's test data) and a heap profile of 250,000 distinct stacks
//! written here (Go's four heap sample types, 20,000 functions, stacks 8-32 frames deep).
//!
//! Run with `cargo bench --bench decode`. Each command runs as its own process under
//! `/usr/bin/time`, so peak RSS is measured the same way for all; CPU time (user + system) is
//! read from `getrusage(RUSAGE_CHILDREN)` around each run, in microseconds. The commands run in
//! turn, one run each per round, and ratios are also given round by round, so that the
//! machine's drift falls on all of them alike. Prints tables and
//! the ratios the targets are stated in; asserts nothing about time (figures go to
//! BENCHMARKS.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use profile_gate::profile::proto;

const RUNS: usize = 7;
/// Distinct stacks in the generated heap profile.
const HEAP_STACKS: usize = 250_000;

fn main() {
    // Re-executed as the baselines: read both files once each, as `gate diff` must.
    if let Ok(file) = std::env::var("GATE_BENCH_SCAN") {
        let bytes = std::fs::read(&file).expect("reading the profile");
        for _ in 0..2 {
            let r = profile_gate::profile::scan(&bytes, Default::default()).expect("scanning");
            std::hint::black_box(r);
        }
        return;
    }
    if let Ok(file) = std::env::var("GATE_BENCH_DECODE_ONLY") {
        let bytes = std::fs::read(&file).expect("reading the profile");
        for _ in 0..2 {
            let p = profile_gate::profile::decode(&bytes, Default::default()).expect("decoding");
            std::hint::black_box(p);
        }
        return;
    }
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is needed (Debian package `time`)"
    );
    let large = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/third_party/google-pprof/large.cpu.pb.gz");
    assert!(large.exists(), "{} is missing", large.display());
    let heap = write_heap_profile();
    let go_ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !go_ok {
        eprintln!("go not found: the go tool pprof rows are skipped");
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
    bench(
        &format!(
            "large.cpu.pb.gz ({:.1} MB gzipped, 20,431 samples)",
            size(&large)
        ),
        &large,
        true,
        go_ok,
    );
    bench(
        &format!(
            "heap profile, {HEAP_STACKS} distinct stacks ({:.1} MB gzipped)",
            size(&heap)
        ),
        &heap,
        false,
        go_ok,
    );
}

/// One table: every command on one file (against itself), then the ratios.
fn bench(title: &str, file: &Path, all_rows: bool, go_ok: bool) {
    let f = file.to_str().unwrap();
    let me = std::env::current_exe().unwrap();
    let gate = || Command::new(env!("CARGO_BIN_EXE_gate"));
    let mut commands: Vec<(&str, Command)> = Vec::new();
    let mut scan = Command::new(&me);
    scan.env("GATE_BENCH_SCAN", f);
    commands.push(("gunzip + zero-copy scan (x2)", scan));
    let mut decode = Command::new(&me);
    decode.env("GATE_BENCH_DECODE_ONLY", f);
    commands.push(("gunzip + prost decode (x2)", decode));
    let mut json = gate();
    json.args(["diff", "--format", "json", f, f]);
    commands.push(("gate diff (--format json)", json));
    if all_rows {
        // A label filter that keeps every sample: the same work plus reading every sample's
        // labels, so the two rows show what the label-aware path costs.
        let mut labels = gate();
        labels.args([
            "diff",
            "--format",
            "json",
            "--tag-ignore",
            "no-such-key=x",
            f,
            f,
        ]);
        commands.push(("gate diff --tag-ignore (labels read)", labels));
        let mut text = gate();
        text.args(["diff", f, f]);
        commands.push(("gate diff (text)", text));
    }
    if go_ok {
        let mut pprof = Command::new("go");
        pprof
            .args(["tool", "pprof", "-top", &format!("-diff_base={f}"), f])
            .env("PPROF_BINARY_PATH", "/nonexistent");
        commands.push(("go tool pprof -top -diff_base", pprof));
        if all_rows {
            let mut top = Command::new("go");
            top.args(["tool", "pprof", "-top", f])
                .env("PPROF_BINARY_PATH", "/nonexistent");
            commands.push(("go tool pprof -top", top));
        }
    }
    let rows = measure_in_rounds(commands);

    println!("\n{title}: median of {RUNS} runs, each a fresh process, the commands in turn");
    println!(
        "{:<38} {:>9} {:>9} {:>12}",
        "command", "wall ms", "CPU ms", "max RSS MiB"
    );
    for (name, m) in &rows {
        println!(
            "{name:<38} {:>9.1} {:>9.1} {:>12.1}",
            m.wall * 1e3,
            m.cpu * 1e3,
            m.rss_kib as f64 / 1024.0
        );
    }
    let get = |n: &str| rows.iter().find(|(name, _)| *name == n).map(|(_, m)| m);
    let (Some(g), Some(s)) = (
        get("gate diff (--format json)"),
        get("gunzip + zero-copy scan (x2)"),
    ) else {
        return;
    };
    println!(
        "gate diff: {:.2}x the CPU of gunzip + zero-copy scan (target: at most 2x; round by round {:.2}x), {:.2}x its memory",
        g.cpu / s.cpu,
        paired_ratio(g, s),
        g.rss_kib as f64 / s.rss_kib as f64
    );
    if let Some(p) = get("go tool pprof -top -diff_base") {
        println!(
            "go tool pprof -top -diff_base: {:.1}x the CPU of gate diff (target: at least 30x; round by round {:.1}x), {:.1}x the wall time, {:.2}x the memory",
            p.cpu / g.cpu,
            paired_ratio(p, g),
            p.wall / g.wall,
            p.rss_kib as f64 / g.rss_kib as f64
        );
    }
}

/// Medians of one command's runs, and its CPU run by run.
#[derive(Debug, Clone)]
struct Measured {
    /// Wall seconds (from `/usr/bin/time`, 10 ms resolution).
    wall: f64,
    /// User + system CPU seconds of the process and its children.
    cpu: f64,
    /// Peak resident set, KiB.
    rss_kib: u64,
    /// CPU seconds of each round's run, in round order.
    cpu_runs: Vec<f64>,
}

/// The median over rounds of `a`'s CPU over `b`'s in the same round: a ratio that holds when
/// the machine's speed drifts between rounds (it moved ratios by 10-20% between reruns when
/// each command ran its runs in one block).
fn paired_ratio(a: &Measured, b: &Measured) -> f64 {
    let mut ratios: Vec<f64> = a
        .cpu_runs
        .iter()
        .zip(&b.cpu_runs)
        .map(|(x, y)| x / y)
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Runs every command once per round, in turn, for `RUNS` rounds: a slow spell of the
/// machine then falls on every command alike.
fn measure_in_rounds(commands: Vec<(&str, Command)>) -> Vec<(&str, Measured)> {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); commands.len()];
    for _ in 0..RUNS {
        for ((_, cmd), runs) in commands.iter().zip(&mut runs) {
            runs.push(run_once(cmd));
        }
    }
    commands
        .into_iter()
        .zip(runs)
        .map(|((name, _), runs)| (name, Measured::of(&runs)))
        .collect()
}

/// One run's wall seconds, CPU seconds and peak RSS (KiB).
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
}

impl Measured {
    fn of(runs: &[Run]) -> Measured {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut rss: Vec<u64> = runs.iter().map(|r| r.rss_kib).collect();
        rss.sort();
        Measured {
            wall: median(runs.iter().map(|r| r.wall).collect()),
            cpu: median(runs.iter().map(|r| r.cpu).collect()),
            rss_kib: rss[rss.len() / 2],
            cpu_runs: runs.iter().map(|r| r.cpu).collect(),
        }
    }
}

/// CPU seconds of every child waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and reads nothing else.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// One run of a command under `/usr/bin/time`.
fn run_once(cmd: &Command) -> Run {
    let out = std::env::temp_dir().join(format!("gate-bench-time-{}", std::process::id()));
    let before = children_cpu();
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
    let cpu = children_cpu() - before;
    // gate diff exits 0 on a self-comparison; anything above 1 is a failure to report.
    assert!(
        status.code().unwrap_or(99) <= 1,
        "{:?} failed: {status}",
        cmd.get_program()
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let last = text.lines().last().unwrap_or("");
    let mut it = last.split_whitespace();
    Run {
        wall: it
            .next()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN),
        cpu,
        rss_kib: it.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
    }
}

/// Writes a Go-shaped heap profile of [`HEAP_STACKS`] distinct stacks under `target/` and
/// returns its path: 20,000 functions in 200 packages, one location per function, stacks of
/// 8-32 frames drawn from a fixed seed (so every run measures the same file).
fn write_heap_profile() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("heap-{HEAP_STACKS}.pb.gz"));
    let mut strings: Vec<Vec<u8>> = vec![Vec::new()];
    let mut s = |text: &str| {
        strings.push(text.as_bytes().to_vec());
        strings.len() as i64 - 1
    };
    let vt = |t: i64, u: i64| proto::ValueType { r#type: t, unit: u };
    let (count, bytes) = (s("count"), s("bytes"));
    let sample_type = vec![
        vt(s("alloc_objects"), count),
        vt(s("alloc_space"), bytes),
        vt(s("inuse_objects"), count),
        vt(s("inuse_space"), bytes),
    ];
    let period_type = Some(vt(s("space"), bytes));
    const FUNCTIONS: u64 = 20_000;
    let file = s("service.go");
    let mut function = Vec::new();
    let mut location = Vec::new();
    for id in 1..=FUNCTIONS {
        let name = s(&format!(
            "example.com/service/pkg{}.(*worker{}).step{}",
            id % 200,
            id % 37,
            id
        ));
        function.push(proto::Function {
            id,
            name,
            system_name: name,
            filename: file,
            start_line: 10,
        });
        location.push(proto::Location {
            id,
            mapping_id: 0,
            address: 0x40_0000 + id * 16,
            line: vec![proto::Line {
                function_id: id,
                line: 12,
                column: 0,
            }],
            is_folded: false,
        });
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // SplitMix64: a fixed sequence, so the file is the same on every run.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let sample = (0..HEAP_STACKS)
        .map(|_| {
            let depth = 8 + (next() % 25) as usize;
            let location_id = (0..depth).map(|_| 1 + next() % FUNCTIONS).collect();
            let objects = 1 + (next() % 64) as i64;
            let size = objects * (16 << (next() % 8));
            proto::Sample {
                location_id,
                value: vec![objects, size, objects / 2, size / 2],
                label: Vec::new(),
            }
        })
        .collect();
    let profile = proto::Profile {
        sample_type,
        sample,
        mapping: Vec::new(),
        location,
        function,
        string_table: strings,
        drop_frames: 0,
        keep_frames: 0,
        time_nanos: 1_700_000_000_000_000_000,
        duration_nanos: 0,
        period_type,
        period: 524_288,
        comment: Vec::new(),
        default_sample_type: 0,
        doc_url: 0,
    };
    let raw = prost::Message::encode_to_vec(&profile);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    path
}
