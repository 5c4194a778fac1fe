//! Stopping a run: SIGINT, SIGTERM and SIGHUP ask it to stop and keep what it has.
//!
//! GitHub cancelling a job, `docker stop` and a CronJob's deadline send SIGTERM, not Ctrl-C, and
//! in a container the gate may be PID 1, which ignores SIGTERM unless it handles it. So all
//! three signals are handled alike, once per process, on a thread of their own: the first asks
//! the capture to stop (profiles already captured are on disk, and the run reports on them); a
//! second one ends the process at once, for the person who really means it.

use std::sync::OnceLock;

use tokio::sync::watch;

use super::exit;

/// The signals being watched, or why they could not be.
static WATCH: OnceLock<Result<watch::Receiver<bool>, String>> = OnceLock::new();
/// The name of the first stop signal received.
static RECEIVED: OnceLock<&'static str> = OnceLock::new();

/// Starts watching the stop signals (once per process) and returns a receiver that becomes
/// `true` at the first one. Without signal support (an unusual sandbox) the run goes on
/// unstoppable but otherwise intact, with a warning.
pub fn watch() -> Option<watch::Receiver<bool>> {
    let watched = WATCH.get_or_init(|| {
        let (tx, rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("gate-signals".to_owned())
            .spawn(move || watch_signals(tx, ready_tx))
            .map_err(|e| e.to_string())?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(rx),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the signal thread ended".to_owned()),
        }
    });
    match watched {
        Ok(rx) => Some(rx.clone()),
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM/SIGINT/SIGHUP ({e}); a stop signal ends the run without a report");
            None
        }
    }
}

/// The name of the signal that stopped the run (`SIGTERM`, ...), if one did.
pub fn received() -> Option<&'static str> {
    RECEIVED.get().copied()
}

/// The next delivery of a watched signal; never, for one not watched.
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether the signal's disposition, as the gate inherited it, is to ignore it.
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: reads the current action only (no new action is given); `old` is a local.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Runs on its own thread for the life of the process.
fn watch_signals(tx: watch::Sender<bool>, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    runtime.block_on(async move {
        // A signal whoever started the gate ignores (`nohup`, a shell's background job) stays
        // ignored: handling it would turn a hang-up the user guarded against into a stop.
        let watch = |kind: SignalKind, number: libc::c_int| {
            if ignored(number) {
                Ok(None)
            } else {
                signal(kind).map(Some)
            }
        };
        let streams = (|| {
            Ok::<_, std::io::Error>((
                watch(SignalKind::interrupt(), libc::SIGINT)?,
                watch(SignalKind::terminate(), libc::SIGTERM)?,
                watch(SignalKind::hangup(), libc::SIGHUP)?,
            ))
        })();
        let (mut int, mut term, mut hup) = match streams {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        loop {
            let name = tokio::select! {
                Some(_) = recv(&mut int) => "SIGINT",
                Some(_) = recv(&mut term) => "SIGTERM",
                Some(_) = recv(&mut hup) => "SIGHUP",
                else => return,
            };
            if RECEIVED.set(name).is_ok() {
                tracing::warn!(
                    "{name}: stopping; what was captured is kept and reported (a second signal ends the gate at once)"
                );
                let _ = tx.send(true);
            } else {
                eprintln!("gate: {name} again: exiting now; the profiles captured so far are in the output directory");
                std::process::exit(i32::from(exit::INFRASTRUCTURE));
            }
        }
    });
}
