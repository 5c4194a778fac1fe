//! Progress of a capture: a bar on a terminal, nothing otherwise (log lines come from
//! `tracing`), and a stderr writer for `tracing` that keeps log lines from tearing the bar.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Receives progress events from the engine. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// The windows are about to start: `requests` requests over `pods` pods in `windows`
    /// windows.
    fn started(&self, requests: u64, pods: usize, windows: u32) {
        let _ = (requests, pods, windows);
    }
    /// Window `window` (from 1) of `windows` has started.
    fn window_started(&self, window: u32, windows: u32) {
        let _ = (window, windows);
    }
    /// One request ended, with `bytes` of body; `ok` when it gave a usable profile.
    fn request_done(&self, bytes: u64, ok: bool) {
        let _ = (bytes, ok);
    }
    /// The capture is over.
    fn finished(&self) {}
}

/// No progress display (quiet mode, or log lines only).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// An indicatif progress bar on standard error: profiles done, window, pods, bytes.
#[derive(Debug)]
pub struct BarProgress {
    bar: ProgressBar,
    state: Mutex<BarState>,
}

#[derive(Debug, Default)]
struct BarState {
    window: u32,
    windows: u32,
    pods: usize,
    bytes: u64,
    failed: u64,
}

/// The bar that log lines must not tear, if one is shown.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

impl BarProgress {
    /// A bar drawn on standard error; log lines written through [`StderrWriter`] appear above
    /// it while it is shown.
    pub fn new() -> BarProgress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message("checking the pods");
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut active) = ACTIVE_BAR.lock() {
            *active = Some(bar.clone());
        }
        BarProgress {
            bar,
            state: Mutex::new(BarState::default()),
        }
    }

    fn refresh(&self) {
        if let Ok(s) = self.state.lock() {
            let failed = if s.failed > 0 {
                format!(", {} failed", s.failed)
            } else {
                String::new()
            };
            self.bar.set_message(format!(
                "window {}/{} · {} pods · {:.1} MiB{failed}",
                s.window,
                s.windows,
                s.pods,
                s.bytes as f64 / (1u64 << 20) as f64
            ));
        }
    }
}

impl Default for BarProgress {
    fn default() -> Self {
        BarProgress::new()
    }
}

impl Progress for BarProgress {
    fn started(&self, requests: u64, pods: usize, windows: u32) {
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} capture [{bar:30}] {pos}/{len} profiles  {msg}  {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_length(requests);
        if let Ok(mut s) = self.state.lock() {
            s.pods = pods;
            s.windows = windows;
        }
        self.refresh();
    }

    fn window_started(&self, window: u32, windows: u32) {
        if let Ok(mut s) = self.state.lock() {
            s.window = window;
            s.windows = windows;
        }
        self.refresh();
    }

    fn request_done(&self, bytes: u64, ok: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.bytes += bytes;
            s.failed += u64::from(!ok);
        }
        self.bar.inc(1);
        self.refresh();
    }

    fn finished(&self) {
        self.bar.finish_and_clear();
        if let Ok(mut active) = ACTIVE_BAR.lock() {
            *active = None;
        }
    }
}

impl Drop for BarProgress {
    fn drop(&mut self) {
        self.finished();
    }
}

/// Log output as it may reach a terminal: C0 control characters other than line feed, tab
/// and escape become U+FFFD, so a carriage return in a hostile pod name cannot overwrite the
/// line. Escape stays for the formatter's own colours; the formatter already escapes it (and
/// bell, backspace, C1 controls) inside messages. C0 bytes never occur inside a multi-byte
/// UTF-8 character, so bytes can be mapped one by one.
fn printable_log(buf: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let unsafe_byte = |b: u8| b < 0x20 && !matches!(b, b'\n' | b'\t' | 0x1b);
    if !buf.iter().any(|&b| unsafe_byte(b)) {
        return buf.into();
    }
    let mut out = Vec::with_capacity(buf.len() + 8);
    for &b in buf {
        if unsafe_byte(b) {
            out.extend_from_slice("\u{fffd}".as_bytes());
        } else {
            out.push(b);
        }
    }
    out.into()
}

/// A `tracing_subscriber` writer to standard error that suspends the progress bar while a
/// line is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;

    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter
    }
}

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE_BAR.lock().ok().and_then(|b| b.clone());
        let line = printable_log(buf);
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().lock().write_all(&line))?,
            None => std::io::stderr().lock().write_all(&line)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::printable_log;

    #[test]
    fn log_lines_keep_colours_and_line_breaks_but_not_carriage_returns() {
        let line = b"\x1b[33m WARN\x1b[0m pod web-\r\x0b\x00ok\tleft out\n";
        assert_eq!(
            String::from_utf8(printable_log(line).into_owned()).unwrap(),
            "\x1b[33m WARN\x1b[0m pod web-\u{fffd}\u{fffd}\u{fffd}ok\tleft out\n"
        );
        let plain = "ünïcode stays whole\n".as_bytes();
        assert!(matches!(
            printable_log(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
