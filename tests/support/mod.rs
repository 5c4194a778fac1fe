//! Shared helpers: paths, the `gate` binary, the example Go service, and `go tool pprof`.

#![allow(dead_code)]

pub mod fake_apiserver;
pub mod moto;
pub mod tls;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The third-party pprof fixtures in `../shared/fixtures`.
pub fn fixtures() -> PathBuf {
    let dir = repo().join("../shared/fixtures/third_party/google-pprof");
    assert!(
        dir.is_dir(),
        "{} is missing: the shared fixtures must sit beside the repository",
        dir.display()
    );
    dir
}

/// The `gate` binary under test.
pub fn gate() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("gate").expect("the gate binary is built")
}

/// The `go` toolchain. The test command installs it; a missing Go is a failure, never a skip.
pub fn go() -> PathBuf {
    let go = std::env::var_os("GO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "go".into());
    let ok = Command::new(&go)
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "Go is required for these tests (run the test command from README.md, which installs golang-go)");
    go
}

/// Builds the example Go service once per test run and returns its path.
pub fn go_service_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-service/go-service");
        let status = Command::new("bash")
            .arg(repo().join("examples/go-service/build.sh"))
            .arg(&out)
            .env("GO", go())
            .stdout(Stdio::null())
            .status()
            .expect("running examples/go-service/build.sh");
        assert!(status.success(), "building the example Go service failed");
        out
    })
}

/// The example Go service's `-rate` for a CPU load (cores), calibrated on this machine: pass it
/// to every process of a comparison so a regression flag is not calibrated away.
pub fn calibrated_rate(load: &str) -> String {
    let out = Command::new(go_service_binary())
        .args(["-calibrate", "-load", load])
        .output()
        .expect("calibrating the example service");
    assert!(out.status.success(), "calibration failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds the example Rust service once per test run (`examples/rust-service/build.sh`, its
/// own target folder) and returns its path.
pub fn rust_service_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rust-service/rust-service");
        let status = Command::new("bash")
            .arg(repo().join("examples/rust-service/build.sh"))
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("running examples/rust-service/build.sh");
        assert!(status.success(), "building the example Rust service failed");
        out
    })
}

/// A running example-service process (the Go, Node.js or Rust one), killed when
/// dropped.
pub struct ExampleService {
    child: Child,
    /// `127.0.0.1:PORT` of its pprof server.
    pub addr: String,
}

impl ExampleService {
    /// Starts the service on a free loopback port with extra flags, and waits until it serves.
    pub fn start(args: &[&str]) -> ExampleService {
        let mut command = Command::new(go_service_binary());
        command.args(["-pprof-addr", "127.0.0.1:0"]).args(args);
        ExampleService::spawn(command)
    }

    /// Starts the example Node.js service (`examples/node-service`, whose dependency the test
    /// command installs) on a free loopback port with extra flags.
    pub fn start_node(args: &[&str]) -> ExampleService {
        let dir = repo().join("examples/node-service");
        assert!(
            dir.join("node_modules/@datadog/pprof").is_dir(),
            "examples/node-service has no node_modules: run the test command from README.md (it runs npm ci there)"
        );
        let mut command = Command::new("node");
        command
            .arg(dir.join("server.js"))
            .args(["--pprof-addr", "127.0.0.1:0"])
            .args(args);
        ExampleService::spawn(command)
    }

    /// Starts the example Rust service (`examples/rust-service`, built once per test run) on
    /// a free loopback port with extra flags.
    pub fn start_rust(args: &[&str]) -> ExampleService {
        let mut command = Command::new(rust_service_binary());
        command.args(["--pprof-addr", "127.0.0.1:0"]).args(args);
        ExampleService::spawn(command)
    }

    /// Spawns a service that prints `pprof listening on ADDR` first, and waits for that line.
    fn spawn(mut command: Command) -> ExampleService {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the example service");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the example service printed its address within 30 s");
        let addr = line
            .trim()
            .strip_prefix("pprof listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the example service: {line:?}"))
            .to_owned();
        ExampleService { child, addr }
    }

    /// The base URL of its pprof endpoints.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Fetches a path from the service with a bounded wait.
    pub fn get(&self, path: &str, timeout: Duration) -> Vec<u8> {
        http_get(&self.addr, path, timeout)
    }
}

impl Drop for ExampleService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET (the server closes the connection after the body).
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect(addr).expect("connecting to the Go service");
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("reading the response");
    assert!(
        Instant::now() <= deadline + Duration::from_secs(1),
        "response took too long"
    );
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response with headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "GET {path}: {head}"
    );
    buf[split + 4..].to_vec()
}

/// One row of `go tool pprof -top`: flat and cum in the profile's own units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopRow {
    /// Flat value.
    pub flat: f64,
    /// Cumulative value.
    pub cum: f64,
    /// Half of the last printed digit: how far rounding may move the value.
    pub rounding: f64,
}

/// Runs `go tool pprof -top` for one sample type and parses every row.
pub fn pprof_top(file: &Path, sample_index: &str) -> HashMap<String, TopRow> {
    pprof_top_with(file, sample_index, &[])
}

/// [`pprof_top`] with extra options, e.g. `-tagfocus=route=/checkout`.
pub fn pprof_top_with(file: &Path, sample_index: &str, extra: &[&str]) -> HashMap<String, TopRow> {
    let out = Command::new(go())
        .args([
            "tool",
            "pprof",
            "-top",
            "-nodefraction=0",
            "-nodecount=1000000",
        ])
        .args(extra)
        .arg(format!("-sample_index={sample_index}"))
        .arg(file)
        .env("PPROF_BINARY_PATH", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("running go tool pprof");
    assert!(
        out.status.success(),
        "go tool pprof failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = HashMap::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.trim_start().starts_with("flat") && line.contains("cum%") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 {
            continue;
        }
        let (flat, r1) = parse_measure(fields[0]);
        let (cum, r2) = parse_measure(fields[3]);
        let name = fields[5..].join(" ");
        // pprof marks frames it saw inlined; the function is the same.
        let name = [" (inline)", " (partial-inline)"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name)
            .to_owned();
        rows.insert(
            name,
            TopRow {
                flat,
                cum,
                rounding: r1.max(r2),
            },
        );
    }
    rows
}

/// Parses a pprof measurement such as `1.28s`, `512.02kB`, `10ms` or `20517` into base units
/// (nanoseconds, bytes, counts), with half of its last printed digit.
fn parse_measure(s: &str) -> (f64, f64) {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .unwrap_or_else(|_| panic!("unparsable pprof value {s:?}"));
    let factor = match unit {
        "" => 1.0,
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "mins" => 60e9,
        "hrs" => 3600e9,
        "B" => 1.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024f64.powi(4),
        other => panic!("unknown pprof unit {other:?} in {s:?}"),
    };
    let decimals = num.split('.').nth(1).map(str::len).unwrap_or(0);
    let half_digit = 0.5 * 10f64.powi(-(decimals as i32)) * factor;
    (value * factor, half_digit)
}

/// Serialises tests that run example-service processes: on two cores, several such tests at
/// once starve each other's processes, and the profiles stop measuring what the flags plant.
pub fn exclusive_cpu() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ExampleService {
    /// Kills the process now (the pod "dies"); dropping it afterwards is harmless.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address where nothing listens, for the whole test run.
///
/// The port stays bound without listening (and without `SO_REUSEADDR`), so connections to it
/// are refused and no other server, nor an outgoing connection's source port, can take it over:
/// a port merely released was once taken by another test's server between the release and the
/// connect, and a "dead" pod answered (CI of stop 30).
pub fn refused_addr() -> String {
    static HELD: std::sync::Mutex<Vec<tokio::net::TcpSocket>> = std::sync::Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("creating a socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("binding a loopback port");
    let addr = socket.local_addr().unwrap().to_string();
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(socket);
    addr
}

/// What a [`FakeServer`] does with its `n`-th request (from 0) for `path`.
pub enum Reply {
    /// Sends these bytes (a whole HTTP response) and closes the connection.
    Bytes(Vec<u8>),
    /// Keeps the connection open and never answers.
    Stall,
}

/// A tiny HTTP server on a loopback port, run by a thread; stopped when dropped.
pub struct FakeServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Serves every request with `reply(n, path)`.
    pub fn start(reply: impl Fn(usize, &str) -> Reply + Send + 'static) -> FakeServer {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let mut n = 0;
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                            match stream.read(&mut byte) {
                                Ok(1) => head.push(byte[0]),
                                _ => break,
                            }
                        }
                        let line = String::from_utf8_lossy(&head).into_owned();
                        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                        // Read a request's body (an upload) before answering: a reply to a
                        // half-read request would end in a reset, not in the reply.
                        let length: u64 = line
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse().ok())
                            .unwrap_or(0);
                        let _ =
                            std::io::copy(&mut (&mut stream).take(length), &mut std::io::sink());
                        match reply(n, &path) {
                            Reply::Bytes(bytes) => {
                                let _ = stream.write_all(&bytes);
                            }
                            Reply::Stall => held.push(stream),
                        }
                        n += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers every request with the same whole HTTP response.
    pub fn fixed(response: &'static [u8]) -> FakeServer {
        FakeServer::start(move |_, _| Reply::Bytes(response.to_vec()))
    }

    /// Accepts connections and never answers.
    pub fn stalled() -> FakeServer {
        FakeServer::start(|_, _| Reply::Stall)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP 200 response carrying `body` as a binary download.
pub fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Far beyond any `gate` run in these tests: one still running then has hung.
pub const HANG: Duration = Duration::from_secs(150);

/// The result of one `gate` invocation.
pub struct Run {
    /// The exit code (-1 if killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Standard output as JSON (`--format json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON on stdout ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:.1}s\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )?;
        // Last, so a failure's tail (all that CI logs keep) says what every rule decided: a
        // rule that held with functions undecided names the likeliest to have moved, which is
        // what a missed regression's failure needs to show.
        if let Ok(report) = serde_json::from_str::<serde_json::Value>(&self.stdout) {
            write!(f, "\n--- verdict: {}", report["verdict"]["summary"])?;
            for rule in report["verdict"]["rules"].as_array().into_iter().flatten() {
                if rule["status"] != "skipped" {
                    write!(f, "\n{}: {}", rule["status"], rule["explanation"])?;
                }
            }
            // And the noise each comparison measured, which sets how wide those intervals are.
            for comparison in report["comparisons"].as_array().into_iter().flatten() {
                let first = &comparison["sample_types"][0];
                write!(
                    f,
                    "\nnoise of {} {}: dispersion {} from {} functions (small functions {}), windows {}x, events {} / {}",
                    comparison["kind"],
                    first["sample_type"]["name"],
                    first["noise"]["dispersion"],
                    first["noise"]["dispersion_functions"],
                    first["noise"]["small_function_dispersion"],
                    first["noise"]["window_dispersion"],
                    first["total"]["baseline_events"],
                    first["total"]["candidate_events"],
                )?;
            }
        }
        Ok(())
    }
}

/// Runs `gate` with `args`, bounded by [`HANG`].
pub fn run_gate(args: &[String]) -> Run {
    let started = Instant::now();
    let out = gate()
        .args(args)
        .timeout(HANG)
        .output()
        .expect("running gate");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    assert!(run.elapsed < HANG, "gate hung: {run}");
    run
}
