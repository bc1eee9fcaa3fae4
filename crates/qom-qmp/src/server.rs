//! Transports: stdio and Unix sockets, one thread per client.
//!
//! A [`Server`] owns the shared state of all its connections: the command
//! table, the list of connected clients (for events) and the stop flag. Any
//! number of transports may run at once (each `serve_*` call blocks its
//! thread); a `quit` from any client, or [`ServerHandle::stop`], ends all of
//! them.
//!
//! Differences from QEMU worth knowing:
//! * QEMU keeps running when `-qmp stdio` reaches end of input; here
//!   [`Server::serve_stdio`] returns [`StopReason::EndOfInput`] so that the
//!   caller can exit.
//! * QEMU's `-qmp unix:` socket serves one client at a time; here every
//!   connection is served at once, each with its own handshake.
//! * QEMU queues a client's output without bound; here a socket client that
//!   does not read its output stops being read from, and is disconnected
//!   when its output stays blocked (see [`ServerConfig::max_pending_output`]
//!   and [`ServerConfig::write_timeout`]).

mod output;
mod socket_file;
mod stdin;

use crate::commands::Commands;
use crate::json_stream::{JsonStream, Limits};
use crate::protocol::{self, Action, ProtocolConfig, Session};
use output::{Output, SocketReader};
use serde_json::Value;
use socket_file::io_err;
pub use socket_file::{bind_unix, BoundSocket, ServerError};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use stdin::StdinReader;

/// Settings of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Greeting contents.
    pub protocol: ProtocolConfig,
    /// Bounds on one input message.
    pub limits: Limits,
    /// How long a socket client's pending output may make no progress
    /// before the client is dropped. `None`: no bound.
    pub write_timeout: Option<Duration>,
    /// Bytes of output a socket client may have pending (beyond what the
    /// kernel's socket buffer holds) before the server stops reading its
    /// requests until it reads its answers; one answer may go beyond it.
    /// Events may queue as much again on top; an event that would go past
    /// that disconnects the client rather than wait for it, so that nobody
    /// else is stalled. What the server holds for one client's output is
    /// thus at most twice this plus its largest answer.
    pub max_pending_output: usize,
    /// Most socket clients served at once; further connections are closed
    /// right away.
    pub max_clients: usize,
    /// After answering, how long a socket client's thread keeps polling for
    /// the next request without sleeping. A client with one request in
    /// flight usually sends the next one within microseconds; catching it
    /// without a sleep and a wake-up saves a wake-up per round trip, at the
    /// price of up to this much CPU time after every answer (idle clients
    /// never spin longer than this). Zero, the default, turns it off: an
    /// embedder opts in when QMP latency matters more than CPU (the `qom`
    /// binary uses 50 µs; docs/benchmarks.md has the figures).
    pub poll_spin: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            protocol: ProtocolConfig::default(),
            limits: Limits::default(),
            write_timeout: Some(Duration::from_secs(10)),
            max_pending_output: 1 << 20,
            max_clients: 128,
            poll_spin: Duration::ZERO,
        }
    }
}

/// Why a `serve_*` call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A client executed `quit`.
    Quit,
    /// The input of a single-connection transport (stdio) ended.
    EndOfInput,
    /// [`ServerHandle::stop`] was called.
    Stopped,
}

struct Client {
    output: Arc<Output>,
    /// For socket clients: a second handle used to shut the socket down.
    socket: Option<UnixStream>,
}

struct Shared {
    commands: Arc<Commands>,
    config: ServerConfig,
    stopped: AtomicBool,
    quit: AtomicBool,
    next_id: AtomicU64,
    /// By connection order, so that events go out in that order.
    clients: Mutex<BTreeMap<u64, Client>>,
    /// Addresses of listeners to poke so that a blocked accept returns.
    listeners: Mutex<Vec<SocketAddr>>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded here is left half-updated by a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for c in lock(&self.clients).values() {
            if let Some(s) = &c.socket {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        for addr in lock(&self.listeners).iter() {
            // Wake the accept loop; it sees the flag and leaves.
            let _ = UnixStream::connect_addr(addr);
        }
    }

    fn emit(&self, name: &str, data: Option<Value>) {
        let msg = protocol::event(name, data);
        let outputs: Vec<Arc<Output>> = lock(&self.clients)
            .values()
            .map(|c| c.output.clone())
            .collect();
        for o in outputs {
            if o.is_negotiated() {
                let _ = o.send_event(&msg);
            }
        }
    }

    fn add_client(&self, output: Arc<Output>, socket: Option<UnixStream>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.clients).insert(id, Client { output, socket });
        id
    }

    fn remove_client(&self, id: u64) {
        lock(&self.clients).remove(&id);
    }

    /// Serve one connection until it ends, the server stops, or `quit`.
    fn run_client(&self, mut reader: impl Read, output: Arc<Output>) -> io::Result<StopReason> {
        let mut session = Session::new(self.commands.clone(), self.config.protocol.clone());
        output.send_answer(&session.greeting())?;
        let mut stream = JsonStream::with_limits(self.config.limits);
        let mut buf = vec![0u8; 16 * 1024];
        let mut messages = Vec::new();
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return Ok(self.stop_reason());
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(StopReason::EndOfInput),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.stopped.load(Ordering::Acquire) => {
                    drop(e);
                    return Ok(self.stop_reason());
                }
                Err(e) => return Err(e),
            };
            stream.feed_into(&buf[..n], &mut messages);
            for m in messages.drain(..) {
                if self.stopped.load(Ordering::Acquire) {
                    return Ok(self.stop_reason());
                }
                let reply = session.handle(m);
                output.set_negotiated(session.is_negotiated());
                match reply.action {
                    Action::Continue => output.send_answer(&reply.response)?,
                    Action::Quit => {
                        self.emit("SHUTDOWN", Some(protocol::shutdown_event_data()));
                        let sent = output.send_answer(&reply.response);
                        self.quit.store(true, Ordering::Release);
                        self.stop();
                        sent?;
                        return Ok(StopReason::Quit);
                    }
                }
            }
        }
    }

    fn stop_reason(&self) -> StopReason {
        if self.quit.load(Ordering::Acquire) {
            StopReason::Quit
        } else {
            StopReason::Stopped
        }
    }
}

/// A cheap, clonable handle on a running server.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl ServerHandle {
    /// Stop serving: listeners stop accepting, socket clients are
    /// disconnected, the socket file is removed, and
    /// [`Server::serve_stdio`] returns even if no more input comes (a
    /// command already running finishes first). A transport given to
    /// [`Server::serve_stream`] notices at its next input.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Whether the server was stopped (by [`stop`](Self::stop) or `quit`).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Whether a client executed `quit`.
    pub fn quit_requested(&self) -> bool {
        self.shared.quit.load(Ordering::Acquire)
    }

    /// Send an event to every client that has completed the handshake.
    pub fn emit_event(&self, name: &str, data: Option<Value>) {
        self.shared.emit(name, data);
    }

    /// Number of connected clients (of all transports).
    pub fn client_count(&self) -> usize {
        lock(&self.shared.clients).len()
    }

    /// The most output bytes any one client has waiting in the server
    /// (not counting the kernel's socket buffers), to watch the bound of
    /// [`ServerConfig::max_pending_output`].
    pub fn max_pending_output(&self) -> usize {
        lock(&self.shared.clients)
            .values()
            .map(|c| c.output.pending())
            .max()
            .unwrap_or(0)
    }
}

/// A QMP server over a shared command table.
///
/// ```no_run
/// use qom_qmp::{Commands, Server};
/// use std::sync::Arc;
///
/// let server = Server::new(Arc::new(Commands::new()));
/// let reason = server.serve_stdio().expect("stdio");
/// println!("stopped: {reason:?}");
/// ```
pub struct Server {
    shared: Arc<Shared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Server {
    /// A server with the default [`ServerConfig`].
    pub fn new(commands: Arc<Commands>) -> Self {
        Self::with_config(commands, ServerConfig::default())
    }

    /// A server with the given settings.
    pub fn with_config(commands: Arc<Commands>, config: ServerConfig) -> Self {
        Server {
            shared: Arc::new(Shared {
                commands,
                config,
                stopped: AtomicBool::new(false),
                quit: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
                clients: Mutex::new(BTreeMap::new()),
                listeners: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A handle to stop the server or send events from other threads.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// The command table.
    pub fn commands(&self) -> &Arc<Commands> {
        &self.shared.commands
    }

    /// Serve one client on standard input and output, in this thread, until
    /// end of input, `quit` or a stop. A stop ends it even while it waits for
    /// input: standard input is polled together with a wake-up socket that
    /// [`ServerHandle::stop`] shuts down.
    pub fn serve_stdio(&self) -> io::Result<StopReason> {
        let (waker, wake) = UnixStream::pair()?;
        let reader = StdinReader {
            stdin: io::stdin(),
            wake,
        };
        self.serve_reader(reader, io::stdout(), Some(waker))
    }

    /// Serve one client over any byte streams, in this thread. Returns when
    /// `reader` reaches end of input, on `quit`, or on a stop noticed at the
    /// next input.
    pub fn serve_stream<R, W>(&self, reader: R, writer: W) -> io::Result<StopReason>
    where
        R: Read,
        W: Write + Send + 'static,
    {
        self.serve_reader(reader, writer, None)
    }

    /// Serve one client over byte streams; `closer`, if any, is shut down by
    /// a stop (as a socket client's second handle is), which is what wakes a
    /// reader that watches its peer.
    fn serve_reader<R, W>(
        &self,
        reader: R,
        writer: W,
        closer: Option<UnixStream>,
    ) -> io::Result<StopReason>
    where
        R: Read,
        W: Write + Send + 'static,
    {
        let output = Arc::new(Output::stream(Box::new(writer)));
        // stop() sets the flag before it looks at the clients, under the
        // same lock add_client takes: either it shuts `closer` down, or
        // run_client sees the flag before its first read.
        let id = self.shared.add_client(output.clone(), closer);
        let r = self.shared.run_client(reader, output);
        self.shared.remove_client(id);
        r
    }

    /// Serve one connected socket in this thread (for example one end of a
    /// `UnixStream::pair()`). [`ServerHandle::stop`] disconnects it.
    pub fn serve_unix_stream(&self, stream: UnixStream) -> io::Result<StopReason> {
        serve_socket(&self.shared, stream)
    }

    /// Create a socket at `path` (see [`bind_unix`]) and serve it until
    /// `quit` or a stop; the socket file is removed afterwards.
    pub fn serve_unix(&self, path: impl AsRef<Path>) -> Result<StopReason, ServerError> {
        let path = path.as_ref();
        let bound = bind_unix(path)?;
        self.serve_bound(bound)
            .map_err(io_err(format!("serving {}", path.display())))
    }

    /// Serve a socket made by [`bind_unix`] until `quit` or a stop, one
    /// thread per client; the socket file is removed afterwards.
    pub fn serve_bound(&self, bound: BoundSocket) -> io::Result<StopReason> {
        let (listener, path) = bound.into_parts();
        self.serve_listener(listener, Some(path))
    }

    /// Serve a listener bound by the caller until `quit` or a stop, one
    /// thread per client. If the listener has a path, the socket file is
    /// removed afterwards. (For a socket made by [`bind_unix`], use
    /// [`serve_bound`](Self::serve_bound): its listener was bound under a
    /// temporary name, so it does not know its final path.)
    pub fn serve_unix_listener(&self, listener: UnixListener) -> io::Result<StopReason> {
        let path = listener.local_addr()?.as_pathname().map(Path::to_path_buf);
        self.serve_listener(listener, path)
    }

    fn serve_listener(
        &self,
        listener: UnixListener,
        path: Option<PathBuf>,
    ) -> io::Result<StopReason> {
        let shared = &self.shared;
        // Remember how to wake accept(): the final path if known (the bound
        // name may be a temporary one), else the bound address.
        let wake = match &path {
            Some(p) => SocketAddr::from_pathname(p)?,
            None => listener.local_addr()?,
        };
        let identity = path
            .as_ref()
            .and_then(|p| fs::metadata(p).ok())
            .map(|m| (m.dev(), m.ino()));
        lock(&shared.listeners).push(wake);
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        let result = loop {
            if shared.stopped.load(Ordering::Acquire) {
                break Ok(shared.stop_reason());
            }
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12)) => {
                    // Out of descriptors or memory: shed load, keep serving.
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => break Err(e),
            };
            if shared.stopped.load(Ordering::Acquire) {
                break Ok(shared.stop_reason());
            }
            threads.retain(|t| !t.is_finished());
            if threads.len() >= shared.config.max_clients {
                continue; // dropping the stream closes it
            }
            let worker = shared.clone();
            let spawned = thread::Builder::new()
                .name("qmp-client".into())
                .spawn(move || {
                    let _ = serve_socket(&worker, stream);
                });
            if let Ok(t) = spawned {
                threads.push(t);
            }
        };
        shared.stop();
        drop(listener);
        for t in threads {
            let _ = t.join();
        }
        if let (Some(p), Some(id)) = (&path, identity) {
            // Remove the socket file only if it is still ours.
            if let Ok(m) = fs::symlink_metadata(p) {
                if (m.dev(), m.ino()) == id {
                    let _ = fs::remove_file(p);
                }
            }
        }
        result
    }
}

fn serve_socket(shared: &Arc<Shared>, stream: UnixStream) -> io::Result<StopReason> {
    let closer = stream.try_clone()?;
    let output = Arc::new(Output::socket(
        stream.try_clone()?,
        shared.config.max_pending_output,
        shared.config.write_timeout,
    )?);
    let reader = SocketReader {
        stream,
        spin: shared.config.poll_spin,
        output: output.clone(),
    };
    let id = shared.add_client(output.clone(), Some(closer));
    if shared.stopped.load(Ordering::Acquire) {
        shared.remove_client(id);
        return Ok(shared.stop_reason());
    }
    let r = shared.run_client(reader, output);
    shared.remove_client(id);
    r
}
