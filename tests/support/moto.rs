//! A real S3-compatible server for the archive tests: moto's server mode (PyPI `moto[server]`),
//! started on a free loopback port and killed when dropped.
//!
//! The test command (scripts/test.sh) installs moto into a virtualenv when missing
//! (`~/.cache/profile-gate/moto-venv`) and exports `MOTO_SERVER`; a missing moto is a failure,
//! never a skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `moto_server` executable: `$MOTO_SERVER`, else the test command's virtualenv, else
/// `moto_server` on PATH.
pub fn moto_server() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/profile-gate/moto-venv/bin/moto_server")),
        )
        .collect();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return found.clone();
    }
    let on_path = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        on_path,
        "moto_server is required for the S3 archive tests: run the test command (scripts/test.sh), which installs moto[server] into ~/.cache/profile-gate/moto-venv, or set MOTO_SERVER"
    );
    PathBuf::from("moto_server")
}

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    addr: String,
}

impl Moto {
    /// Starts moto on a free loopback port and waits (up to 60 s) until it answers.
    ///
    /// The port is found free and then given to moto, so another test's server may take it in
    /// between: moto then exits at start-up, and a new port is tried (three times at most).
    pub fn start() -> Moto {
        let mut last_exit = None;
        for _ in 0..3 {
            match Moto::start_on_a_free_port() {
                Ok(moto) => return moto,
                Err(status) => last_exit = Some(status),
            }
        }
        panic!(
            "moto_server exited at start-up three times, on three ports (last: {})",
            last_exit.expect("three attempts were made")
        );
    }

    /// One start; the exit status when moto exited at start-up.
    fn start_on_a_free_port() -> Result<Moto, std::process::ExitStatus> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
            l.local_addr().unwrap().port()
        };
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let addr = format!("127.0.0.1:{port}");
        let mut moto = Moto {
            child,
            endpoint: format!("http://{addr}"),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(status);
            }
            if moto.request("GET", "/").is_some() {
                return Ok(moto);
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {} within 60 s",
                moto.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One unsigned HTTP/1.0 request; the status line's code, or `None` when nothing answered.
    fn request(&self, method: &str, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).ok()?;
        let head = String::from_utf8_lossy(&buf);
        head.split_whitespace().nth(1)?.parse().ok()
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub fn create_bucket(&self, name: &str) {
        let status = self.request("PUT", &format!("/{name}"));
        assert_eq!(status, Some(200), "creating bucket {name} in moto");
    }

    /// The environment a `gate` process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The same settings as object_store options, for the library.
    pub fn options(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(k, v)| {
                let key = match k {
                    "AWS_DEFAULT_REGION" => "aws_region".to_owned(),
                    other => other.to_ascii_lowercase(),
                };
                (key, v)
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
