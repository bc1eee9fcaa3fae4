//! The writing side of one client, with a bound on what it may hold.
//!
//! A socket client's messages go through a pending-output buffer that is
//! written without ever blocking the thread that adds to it. The client's
//! own thread (the only one that reads its input) is the one that waits:
//!
//! * after it queues an answer, it waits while more than
//!   [`ServerConfig::max_pending_output`](super::ServerConfig) bytes are
//!   pending, and it reads no input meanwhile, so a client that sends but
//!   never reads holds at most the kernel's socket buffers, the limit plus
//!   one answer, and one partial input message;
//! * events come from other threads (a signal, `quit`, the embedding
//!   program): they are queued and the client's thread is woken to write
//!   them; events may hold up to the limit again, beyond the answers, and
//!   one that would go past it disconnects the client instead, so an
//!   emitter never waits for anyone;
//! * pending output that makes no progress for
//!   [`ServerConfig::write_timeout`](super::ServerConfig) disconnects the
//!   client.
//!
//! Other writers (stdio, [`Server::serve_stream`](super::Server)) are
//! written in place, blocking, as a single client has nobody to stall.

use crate::protocol;
use rustix::event::{poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, Shutdown};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded here is left half-updated by a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writing side of one client, shared with event senders.
pub(super) struct Output {
    sink: Sink,
    negotiated: AtomicBool,
    /// Set after a failed write or a disconnection; nothing more is sent.
    broken: AtomicBool,
}

enum Sink {
    Socket(SocketOut),
    Stream(Mutex<Box<dyn Write + Send>>),
}

struct SocketOut {
    stream: UnixStream,
    /// Wakes the client's thread when an event left bytes pending.
    wake: OwnedFd,
    limit: usize,
    write_timeout: Option<Duration>,
    state: Mutex<Pending>,
}

struct Pending {
    bytes: Vec<u8>,
    /// How many of `bytes` are events, at most (what has been written is
    /// taken from the events first, which errs on the side of the client).
    events: usize,
    /// When the socket last took bytes, or when `bytes` last became
    /// non-empty: the start of the write timeout.
    progress: Instant,
}

/// What made a client's output fail.
fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client gone")
}

impl Output {
    /// Output to any writer, written in place.
    pub(super) fn stream(writer: Box<dyn Write + Send>) -> Output {
        Output {
            sink: Sink::Stream(Mutex::new(writer)),
            negotiated: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        }
    }

    /// Output to a socket, through a pending buffer of about `limit` bytes.
    pub(super) fn socket(
        stream: UnixStream,
        limit: usize,
        write_timeout: Option<Duration>,
    ) -> io::Result<Output> {
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Output {
            sink: Sink::Socket(SocketOut {
                stream,
                wake,
                limit,
                write_timeout,
                state: Mutex::new(Pending {
                    bytes: Vec::new(),
                    events: 0,
                    progress: Instant::now(),
                }),
            }),
            negotiated: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        })
    }

    pub(super) fn set_negotiated(&self, yes: bool) {
        self.negotiated.store(yes, Ordering::Release);
    }

    pub(super) fn is_negotiated(&self) -> bool {
        self.negotiated.load(Ordering::Acquire)
    }

    /// Bytes queued and not yet taken by the socket.
    pub(super) fn pending(&self) -> usize {
        match &self.sink {
            Sink::Socket(s) => lock(&s.state).bytes.len(),
            Sink::Stream(_) => 0,
        }
    }

    /// Marks the output broken; a socket is shut down, which ends the
    /// client's thread at its next read.
    fn fail(&self) {
        self.broken.store(true, Ordering::Release);
        if let Sink::Socket(s) = &self.sink {
            let _ = rustix::net::shutdown(&s.stream, Shutdown::Both);
            // Free it now: the client's thread may take a while to notice.
            let mut p = lock(&s.state);
            p.bytes = Vec::new();
            p.events = 0;
        }
    }

    /// Sends an answer, from the client's own thread: it may wait (see the
    /// module documentation), and it reads no input while it does.
    pub(super) fn send_answer(&self, value: &Value) -> io::Result<()> {
        if self.broken.load(Ordering::Acquire) {
            return Err(gone());
        }
        let s = match &self.sink {
            Sink::Stream(w) => return self.write_in_place(w, value),
            Sink::Socket(s) => s,
        };
        {
            let mut p = lock(&s.state);
            queue(&mut p, value);
        }
        loop {
            let left = self.flush()?;
            if left <= s.limit {
                return Ok(());
            }
            self.wait(s, false)?;
        }
    }

    /// Sends an event, from any thread, without waiting.
    pub(super) fn send_event(&self, value: &Value) -> io::Result<()> {
        if self.broken.load(Ordering::Acquire) {
            return Err(gone());
        }
        let s = match &self.sink {
            Sink::Stream(w) => return self.write_in_place(w, value),
            Sink::Socket(s) => s,
        };
        {
            let mut p = lock(&s.state);
            let before = p.bytes.len();
            queue(&mut p, value);
            p.events += p.bytes.len() - before;
            if p.events > s.limit {
                // The client has not read the limit's worth of events:
                // drop it rather than wait for it or hold more.
                drop(p);
                self.fail();
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "client does not read its output",
                ));
            }
        }
        if self.flush()? > 0 {
            // The client's thread may be waiting for input only: have it
            // wait for the socket to take the rest as well.
            let _ = rustix::io::write(&s.wake, &1u64.to_ne_bytes());
        }
        Ok(())
    }

    fn write_in_place(&self, w: &Mutex<Box<dyn Write + Send>>, value: &Value) -> io::Result<()> {
        let text = protocol::to_wire(value);
        let mut w = lock(w);
        let r = w.write_all(text.as_bytes()).and_then(|()| w.flush());
        if r.is_err() {
            self.broken.store(true, Ordering::Release);
        }
        r
    }

    /// Writes what the socket takes without blocking; returns how many
    /// bytes are still pending.
    fn flush(&self) -> io::Result<usize> {
        let s = match &self.sink {
            Sink::Socket(s) => s,
            Sink::Stream(_) => return Ok(0),
        };
        if self.broken.load(Ordering::Acquire) {
            return Err(gone());
        }
        let mut p = lock(&s.state);
        let mut done = 0;
        let result = loop {
            if done == p.bytes.len() {
                break Ok(());
            }
            match rustix::net::send(
                &s.stream,
                &p.bytes[done..],
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Ok(n) => done += n,
                Err(Errno::AGAIN) => break Ok(()),
                Err(Errno::INTR) => {}
                Err(e) => break Err(io::Error::from(e)),
            }
        };
        if done > 0 {
            p.bytes.drain(..done);
            p.events = p.events.min(p.bytes.len());
            p.progress = Instant::now();
            if p.bytes.is_empty() && p.bytes.capacity() > s.limit {
                // Do not keep a large answer's buffer for an idle client.
                p.bytes = Vec::new();
            }
        }
        let left = p.bytes.len();
        drop(p);
        match result {
            Ok(()) => Ok(left),
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// Waits, in the client's thread, until the socket can take output,
    /// input arrives (if `input` and the pending output is within the
    /// limit), or an event asks for a flush. Fails the output when pending
    /// bytes have made no progress for the write timeout.
    fn wait(&self, s: &SocketOut, input: bool) -> io::Result<()> {
        let (pending, progress) = {
            let p = lock(&s.state);
            (p.bytes.len(), p.progress)
        };
        let mut flags = PollFlags::empty();
        if pending > 0 {
            flags |= PollFlags::OUT;
        }
        if input && pending <= s.limit {
            flags |= PollFlags::IN;
        }
        let timeout = match (pending > 0, s.write_timeout) {
            (true, Some(t)) => {
                let left = t.saturating_sub(progress.elapsed());
                if left.is_zero() {
                    self.fail();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client output blocked for too long",
                    ));
                }
                // A timeout too long to express is no timeout.
                Timespec::try_from(left).ok()
            }
            _ => None,
        };
        let woken = {
            let mut fds = [
                PollFd::new(&s.stream, flags),
                PollFd::new(&s.wake, PollFlags::IN),
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            !fds[1].revents().is_empty()
        };
        if woken {
            let mut n = [0u8; 8];
            let _ = rustix::io::read(&s.wake, &mut n);
        }
        Ok(())
    }
}

/// Appends `value`'s wire form; an empty buffer starts the write timeout.
fn queue(p: &mut Pending, value: &Value) {
    if p.bytes.is_empty() {
        p.progress = Instant::now();
    }
    protocol::write_wire(&mut p.bytes, value).expect("writing to a Vec cannot fail");
}

/// A socket client's reading side. It writes pending output while it
/// waits for input, reads nothing while more than the limit is pending,
/// and before blocking polls without sleeping for up to `spin` (see
/// [`ServerConfig::poll_spin`](super::ServerConfig)).
pub(super) struct SocketReader {
    pub(super) stream: UnixStream,
    pub(super) spin: Duration,
    pub(super) output: std::sync::Arc<Output>,
}

impl SocketReader {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::net::recv(&self.stream, buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) => Ok(Some(n)),
            Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Read for SocketReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = match &self.output.sink {
            Sink::Socket(s) => s,
            Sink::Stream(_) => return Err(io::Error::other("not a socket output")),
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let mut spun = false;
        loop {
            let pending = self.output.flush()?;
            if pending <= s.limit {
                if let Some(n) = self.recv(buf)? {
                    return Ok(n);
                }
                if !spun && pending == 0 && !self.spin.is_zero() {
                    spun = true;
                    let until = Instant::now() + self.spin;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                        if let Some(n) = self.recv(buf)? {
                            return Ok(n);
                        }
                    }
                }
            }
            self.output.wait(s, true)?;
        }
    }
}
