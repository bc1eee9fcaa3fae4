//! SIGTERM, SIGINT and SIGHUP end `qom` the way they end QEMU: every QMP
//! client gets a `SHUTDOWN` event with reason `host-signal`, the objects
//! are torn down (so `discard-data=on` releases the file's blocks), the
//! socket file is removed, and the exit status is 128 plus the signal
//! number. A second signal exits at once, without any of that.
//!
//! No signal handler is installed: the three signals are blocked in every
//! thread (the mask is set before any thread is started, and threads
//! inherit it), and one thread of ours takes them with `sigwait`, so the
//! work runs as ordinary code and nothing here is `unsafe`. Blocking them
//! everywhere also matters for speed: a handled signal is delivered to some
//! thread of the kernel's choice, and a thread inside a long system call
//! (a preallocation populating a gigabyte, say) only runs the handler once
//! the call returns, which would delay a second signal by seconds.
//!
//! Who does what, and in which order:
//! 1. The signal thread records the signal, sends the event to the clients
//!    that completed the handshake (each write is flushed before `emit_event`
//!    returns), then asks the server to stop.
//! 2. The stop makes every transport return to the main thread: the socket
//!    listener joins its client threads (a command already running ends
//!    first) and removes the socket file; the stdio transport wakes from its
//!    wait for input.
//! 3. The main thread, and only it, tears the objects down once nothing
//!    serves them any more, and then returns the status.
//!
//! So the event goes out before any object is torn down, and the teardown
//! is over before the process exits. The signal also cancels every
//! preallocation (see `progress`), so a long one does not hold the
//! shutdown up: the object-add it belongs to fails and leaves nothing. While
//! objects are still being created from `-object`, a signal takes effect
//! when the object being created is done (complete or failed); what was
//! created is torn down and nothing is served.

use nix::sys::signal::{SigSet, Signal};
use qom_qmp::ServerHandle;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// The signals that shut `qom` down.
const SHUTDOWN_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

#[derive(Default)]
struct State {
    /// The first shutdown signal received.
    signal: Option<i32>,
    /// The server to notify and stop, while one is serving.
    server: Option<ServerHandle>,
}

/// The shutdown state shared by the main thread and the signal thread.
pub struct Shutdown {
    state: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is two plain fields, never left half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The exit status for a signal: QEMU exits with 128 plus its number (143
/// for SIGTERM), as a shell reports a process killed by it.
pub fn exit_status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// The data of the `SHUTDOWN` event QEMU sends when a signal ends it.
fn event_data() -> serde_json::Value {
    serde_json::json!({"guest": false, "reason": "host-signal"})
}

impl Shutdown {
    /// Blocks the shutdown signals and starts the thread that takes them.
    /// Must run before any other thread is started: a thread that does not
    /// block them would get the default action (death) instead.
    pub fn install(prog: &str) -> io::Result<Shutdown> {
        let mut set = SigSet::empty();
        for s in SHUTDOWN_SIGNALS {
            set.add(s);
        }
        set.thread_block().map_err(io::Error::from)?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let prog = prog.to_owned();
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                match set.wait() {
                    Ok(signal) => on_signal(&prog, &shared, signal as i32),
                    // sigwait fails only for an invalid set; nothing to retry.
                    Err(e) => {
                        eprintln!("{prog}: waiting for signals: {e}");
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            // Nobody would take them: let them kill as before.
            let _ = set.thread_unblock();
            return Err(e);
        }
        Ok(Shutdown { state })
    }

    /// Makes `server` the one a signal stops. Returns false, and keeps
    /// nothing, when a signal came already: then there is nothing to serve.
    pub fn attach(&self, server: ServerHandle) -> bool {
        let mut st = lock(&self.state);
        if st.signal.is_some() {
            return false;
        }
        st.server = Some(server);
        true
    }

    /// Serving is over: forget the server (its command table holds the
    /// object tree, which is about to be torn down).
    pub fn detach(&self) {
        lock(&self.state).server = None;
    }

    /// The first shutdown signal received so far.
    pub fn received(&self) -> Option<i32> {
        lock(&self.state).signal
    }
}

fn on_signal(prog: &str, state: &Mutex<State>, signal: i32) {
    let server = {
        let mut st = lock(state);
        if st.signal.is_some() {
            None
        } else {
            st.signal = Some(signal);
            Some(st.server.clone())
        }
    };
    match server {
        None => {
            // The operator insists: no event, no teardown, no cleanup.
            eprintln!("{prog}: terminating on signal {signal} during shutdown, at once");
            std::process::exit(i32::from(exit_status(signal)));
        }
        Some(server) => {
            // QEMU's wording when it does not know who sent the signal.
            eprintln!("{prog}: terminating on signal {signal}");
            crate::progress::cancel();
            if let Some(server) = server {
                server.emit_event("SHUTDOWN", Some(event_data()));
                server.stop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_128_plus_the_signal() {
        assert_eq!(exit_status(Signal::SIGTERM as i32), 143);
        assert_eq!(exit_status(Signal::SIGINT as i32), 130);
        assert_eq!(exit_status(Signal::SIGHUP as i32), 129);
    }

    #[test]
    fn event_data_matches_qemu() {
        assert_eq!(
            serde_json::to_string(&event_data()).unwrap_or_default(),
            r#"{"guest":false,"reason":"host-signal"}"#
        );
    }
}
