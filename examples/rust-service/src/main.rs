//! Example Rust service for Profile Gate: a paced workload of named functions, with a CPU
//! profile from the `pprof` crate served the way Go serves it:
//!
//!   GET /debug/pprof/profile?seconds=N   CPU profile (samples/count, cpu/nanoseconds)
//!
//! Nothing else is served (the crate profiles CPU only; every other path answers 404).
//!
//!   rust-service [--pprof-addr 127.0.0.1:0] [--load 0.25 | --rate R] [--cpu-regress FUNC=FACTOR]...
//!   rust-service --calibrate [--load 0.25]   prints the --rate that makes --load, and exits
//!
//! The first line on stdout is `pprof listening on HOST:PORT`. Planted regressions change the
//! work a request does, not how often requests come, so they cost extra CPU as real ones do.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pprof::protos::Message;

const WORK: [&str; 8] = [
    "compute_checksum",
    "render_page",
    "parse_records",
    "sort_inventory",
    "encode_base64",
    "tokenize_query",
    "score_results",
    "compress_runs",
];

struct Config {
    addr: String,
    load: f64,
    rate: Option<f64>,
    calibrate_only: bool,
    regress: HashMap<String, f64>,
}

fn usage(message: &str) -> ExitCode {
    eprintln!("rust-service: {message}");
    eprintln!(
        "usage: rust-service [--pprof-addr HOST:PORT] [--load CORES | --rate R] [--cpu-regress FUNC=FACTOR]... | --calibrate [--load CORES]"
    );
    eprintln!("FUNC is one of {}", WORK.join(", "));
    ExitCode::from(2)
}

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        addr: "127.0.0.1:0".into(),
        load: 0.25,
        rate: None,
        calibrate_only: false,
        regress: HashMap::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--calibrate" {
            cfg.calibrate_only = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--pprof-addr" => cfg.addr = value,
            "--load" => {
                cfg.load = value.parse().unwrap_or(0.0);
                if !(cfg.load > 0.0 && cfg.load < 1.0) {
                    return Err(format!("--load {value}: a fraction of one core, 0 < L < 1"));
                }
            }
            "--rate" => {
                let rate: f64 = value.parse().unwrap_or(0.0);
                if !(rate > 0.0 && rate.is_finite()) {
                    return Err(format!("--rate {value}: requests per second, above 0"));
                }
                cfg.rate = Some(rate);
            }
            "--cpu-regress" => {
                for part in value.split(',') {
                    let (name, factor) = part
                        .split_once('=')
                        .ok_or_else(|| format!("--cpu-regress {part}: write FUNC=FACTOR"))?;
                    let factor: f64 = factor.parse().unwrap_or(0.0);
                    if !WORK.contains(&name) || factor.is_nan() || factor <= 0.0 {
                        return Err(format!("--cpu-regress {part}: write FUNC=FACTOR"));
                    }
                    cfg.regress.insert(name.to_owned(), factor);
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(cfg)
}

// The work, each a function of its own (never inlined) so that profiles name it.

#[inline(never)]
fn compute_checksum(data: &[u8], rounds: usize) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for _ in 0..rounds {
        for &b in black_box(data) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

#[inline(never)]
fn render_page(items: &[(u32, String, f64)], rounds: usize) -> usize {
    let mut len = 0;
    for _ in 0..rounds {
        let mut html = String::from("<ul>");
        for (id, name, price) in black_box(items) {
            html.push_str(&format!("<li id=\"{id}\">{name}: {price:.2}</li>"));
        }
        html.push_str("</ul>");
        len += html.len();
    }
    len
}

#[inline(never)]
fn parse_records(text: &str, rounds: usize) -> usize {
    let mut n = 0;
    for _ in 0..rounds {
        n += black_box(text)
            .split(';')
            .filter_map(|r| r.split(',').nth(2)?.parse::<f64>().ok())
            .count();
    }
    n
}

#[inline(never)]
fn sort_inventory(items: &[(u32, String, f64)], rounds: usize) -> u32 {
    let mut first = 0;
    for _ in 0..rounds {
        let mut copy = black_box(items).to_vec();
        copy.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
        first += copy[0].0;
    }
    first
}

#[inline(never)]
fn encode_base64(data: &[u8], rounds: usize) -> usize {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut len = 0;
    for _ in 0..rounds {
        let mut out = Vec::with_capacity(data.len() * 4 / 3 + 4);
        for chunk in black_box(data).chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize]);
            }
        }
        len += out.len();
    }
    len
}

#[inline(never)]
fn tokenize_query(text: &str, rounds: usize) -> usize {
    let mut n = 0;
    for _ in 0..rounds {
        n += black_box(text)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| t.len() > 2)
            .map(str::to_lowercase)
            .count();
    }
    n
}

#[inline(never)]
fn score_results(items: &[(u32, String, f64)], rounds: usize) -> f64 {
    let mut best = 0.0f64;
    for r in 0..rounds {
        for (id, name, price) in black_box(items) {
            let score = (price.ln_1p() * f64::from(*id % 7 + 1)).sqrt()
                + name.len() as f64 / (r + 1) as f64;
            best = best.max(score);
        }
    }
    best
}

#[inline(never)]
fn compress_runs(data: &[u8], rounds: usize) -> usize {
    let mut len = 0;
    for _ in 0..rounds {
        let mut out: Vec<(u8, u8)> = Vec::new();
        for &b in black_box(data) {
            match out.last_mut() {
                Some((last, count)) if *last == b / 16 && *count < 255 => *count += 1,
                _ => out.push((b / 16, 1)),
            }
        }
        len += out.len();
    }
    len
}

struct Workload {
    data: Vec<u8>,
    items: Vec<(u32, String, f64)>,
    text: String,
    factors: HashMap<String, f64>,
}

impl Workload {
    fn new(factors: HashMap<String, f64>) -> Workload {
        let data = (0..4096u32).map(|i| (i * 31) as u8).collect();
        let items: Vec<(u32, String, f64)> = (0..200u32)
            .map(|i| (i, format!("item-{i}"), f64::from((i * 7919) % 1000) / 10.0))
            .collect();
        let text = items
            .iter()
            .map(|(id, name, price)| format!("{id},{name},{price}"))
            .collect::<Vec<_>>()
            .join(";");
        Workload {
            data,
            items,
            text,
            factors,
        }
    }

    fn rounds(&self, name: &str, base: f64) -> usize {
        (base * self.factors.get(name).copied().unwrap_or(1.0))
            .round()
            .max(1.0) as usize
    }

    /// One request's worth of work.
    #[inline(never)]
    fn handle_request(&self) -> u64 {
        u64::from(compute_checksum(
            &self.data,
            self.rounds("compute_checksum", 12.0),
        )) + render_page(&self.items, self.rounds("render_page", 3.0)) as u64
            + parse_records(&self.text, self.rounds("parse_records", 3.0)) as u64
            + u64::from(sort_inventory(
                &self.items,
                self.rounds("sort_inventory", 3.0),
            ))
            + encode_base64(&self.data, self.rounds("encode_base64", 4.0)) as u64
            + tokenize_query(&self.text, self.rounds("tokenize_query", 2.0)) as u64
            + score_results(&self.items, self.rounds("score_results", 4.0)) as u64
            + compress_runs(&self.data, self.rounds("compress_runs", 4.0)) as u64
    }
}

/// Requests per second that make about `load` of a core, measured over a second of work.
fn calibrate(load: f64) -> f64 {
    let w = Workload::new(HashMap::new());
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        black_box(w.handle_request());
        n += 1;
    }
    load / (start.elapsed().as_secs_f64() / n as f64)
}

/// Runs requests at `rate` a second, forever, on this thread, each after a random gap (uniform
/// around the mean). Requests in bursts at a fixed period alias with the kernel's timer
/// ticks, on which the profiler's signal is delivered: measured here, one process's profiles
/// then gave compute_checksum from 6% to 47% of its samples, window to window.
fn serve_load(w: Workload, rate: f64) {
    let mean = 1.0 / rate;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut uniform = move || {
        // xorshift64*: enough to break the rhythm, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut next = Instant::now();
    loop {
        next += Duration::from_secs_f64(mean * 2.0 * uniform());
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        black_box(w.handle_request());
    }
}

/// Takes a CPU profile for `seconds` and returns it encoded (uncompressed protobuf).
fn cpu_profile(seconds: u64) -> Result<Vec<u8>, String> {
    let guard = pprof::ProfilerGuardBuilder::default()
        // Go's rate. Faster asks of setitimer more than the kernel's ticks deliver: at 997 Hz
        // about 60 signals a second came, each weighed as a millisecond.
        .frequency(100)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| format!("starting the profiler: {e}"))?;
    std::thread::sleep(Duration::from_secs(seconds));
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("building the report: {e}"))?;
    let profile = report
        .pprof()
        .map_err(|e| format!("encoding the profile: {e}"))?;
    let mut body = Vec::new();
    profile
        .encode(&mut body)
        .map_err(|e| format!("encoding the profile: {e}"))?;
    Ok(body)
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn handle(mut stream: TcpStream, busy: &Mutex<()>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The rest of the request head, up to its blank line.
    let mut header = String::new();
    while reader
        .read_line(&mut header)
        .map(|n| n > 2)
        .unwrap_or(false)
    {
        header.clear();
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/debug/pprof/profile" {
        let body = format!("{path}: not served (this service has /debug/pprof/profile)\n");
        return respond(&mut stream, "404 Not Found", "text/plain", body.as_bytes());
    }
    let seconds = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("seconds="))
        .map_or(Some(30), |s| s.parse::<u64>().ok())
        .filter(|s| (1..=3600).contains(s));
    let Some(seconds) = seconds else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"seconds must be 1-3600\n",
        );
    };
    let Ok(_one_at_a_time) = busy.try_lock() else {
        return respond(
            &mut stream,
            "500 Internal Server Error",
            "text/plain",
            b"a CPU profile is already being taken\n",
        );
    };
    match cpu_profile(seconds) {
        Ok(body) => respond(&mut stream, "200 OK", "application/octet-stream", &body),
        Err(e) => respond(
            &mut stream,
            "500 Internal Server Error",
            "text/plain",
            e.as_bytes(),
        ),
    }
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(message) => return usage(&message),
    };
    let calibrated = calibrate(cfg.load);
    if cfg.calibrate_only {
        println!("{calibrated:.3}");
        return ExitCode::SUCCESS;
    }
    let rate = cfg.rate.unwrap_or(calibrated);
    let listener = match TcpListener::bind(&cfg.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rust-service: listen on {}: {e}", cfg.addr);
            return ExitCode::from(1);
        }
    };
    let workload = Workload::new(cfg.regress);
    std::thread::Builder::new()
        .name("load".into())
        .spawn(move || serve_load(workload, rate))
        .expect("starting the load thread");
    match listener.local_addr() {
        Ok(addr) => println!("pprof listening on {addr}"),
        Err(e) => {
            eprintln!("rust-service: {e}");
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "rust-service: {rate:.1} requests/s (calibrated for --load {}: {calibrated:.1})",
        cfg.load
    );
    let busy = Arc::new(Mutex::new(()));
    for stream in listener.incoming().flatten() {
        let busy = busy.clone();
        std::thread::spawn(move || handle(stream, &busy));
    }
    ExitCode::SUCCESS
}
