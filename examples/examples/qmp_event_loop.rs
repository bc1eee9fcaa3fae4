//! A QMP server inside a VMM's own event loop: one thread, one `poll(2)`
//! over the listening socket, every client and whatever else the VMM waits
//! for, and no thread of the QMP library's own.
//!
//! `qom_qmp::Server` runs a thread per client, which suits a separate
//! management process. A VMM that already has an event loop uses the two
//! pieces below it instead: a [`JsonStream`] per connection splits the
//! bytes that arrive into messages, and a [`Session`] per connection
//! answers each message (handshake, validation, dispatch to the command
//! table). Both are plain values: the loop decides when to read and when
//! to write.
//!
//! ```sh
//! cargo run -p qom-examples --example qmp_event_loop -- /tmp/vmm.sock
//! # elsewhere: any QMP client, e.g. qmp-shell /tmp/vmm.sock, or
//! printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-memdev"}' \
//!     '{"execute":"quit"}' | socat - UNIX-CONNECT:/tmp/vmm.sock
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qom::ObjectTree;
use qom_qmp::protocol::{event, shutdown_event_data, to_wire, Action};
use qom_qmp::{register_qom_commands, Commands, JsonStream, ProtocolConfig, Session};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use serde_json::Value;

/// One QMP connection as the loop keeps it.
struct Client {
    stream: UnixStream,
    parser: JsonStream,
    session: Session,
    /// Bytes not yet written (the socket was full).
    pending: Vec<u8>,
    /// The peer closed its side, or an error ended the connection.
    gone: bool,
}

impl Client {
    fn new(stream: UnixStream, commands: &Arc<Commands>) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        let session = Session::new(commands.clone(), ProtocolConfig::default());
        let mut client = Client {
            stream,
            parser: JsonStream::new(),
            session,
            pending: Vec::new(),
            gone: false,
        };
        let greeting = client.session.greeting();
        client.queue(&greeting);
        Ok(client)
    }

    fn queue(&mut self, message: &Value) {
        self.pending.extend_from_slice(to_wire(message).as_bytes());
    }

    /// Writes what the socket takes now; the rest waits for `POLLOUT`.
    fn flush(&mut self) {
        while !self.pending.is_empty() && !self.gone {
            match self.stream.write(&self.pending) {
                Ok(0) => self.gone = true,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.gone = true,
            }
        }
    }

    /// Reads what arrived and answers every complete message. Returns
    /// true when one of them was a successful `quit`; the reply to it is
    /// then held back in `quit_reply` so that the `SHUTDOWN` event goes
    /// out first, as QEMU sends it.
    fn serve_input(&mut self, quit_reply: &mut Option<Value>) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.gone = true;
                    break;
                }
                Ok(n) => {
                    for message in self.parser.feed(&buf[..n]) {
                        let reply = self.session.handle(message);
                        if reply.action == Action::Quit {
                            *quit_reply = Some(reply.response);
                            return true;
                        }
                        self.queue(&reply.response);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.gone = true;
                    break;
                }
            }
        }
        false
    }
}

/// The QMP part of a VMM's event loop.
pub struct QmpLoop {
    listener: UnixListener,
    commands: Arc<Commands>,
    clients: Vec<Client>,
}

impl QmpLoop {
    /// Serves `commands` on `listener`.
    pub fn new(listener: UnixListener, commands: Arc<Commands>) -> io::Result<QmpLoop> {
        listener.set_nonblocking(true)?;
        Ok(QmpLoop {
            listener,
            commands,
            clients: Vec::new(),
        })
    }

    /// One turn: waits at most `timeout` for a socket to be ready, then
    /// accepts, reads, answers and writes without blocking. Returns false
    /// once a client's `quit` has been answered: every negotiated client
    /// got `SHUTDOWN` first, and the loop should end.
    ///
    /// A VMM would put its own descriptors (eventfds, the KVM vCPU exit
    /// pipe, timers) into the same `poll` set; the timeout stands in for
    /// them here.
    pub fn turn(&mut self, timeout: Duration) -> io::Result<bool> {
        let ready = {
            let mut fds = Vec::with_capacity(1 + self.clients.len());
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
            for c in &self.clients {
                let mut flags = PollFlags::IN;
                if !c.pending.is_empty() {
                    flags |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&c.stream, flags));
            }
            let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            });
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
            fds.iter()
                .map(|f| !f.revents().is_empty())
                .collect::<Vec<bool>>()
        };
        if ready[0] {
            loop {
                match self.listener.accept() {
                    Ok((stream, _)) => self.clients.push(Client::new(stream, &self.commands)?),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut quit_reply = None;
        let mut quitter = None;
        for (i, client) in self.clients.iter_mut().enumerate() {
            if ready.get(i + 1) == Some(&true) && client.serve_input(&mut quit_reply) {
                quitter = Some(i);
                break;
            }
        }
        if let (Some(i), Some(reply)) = (quitter, quit_reply) {
            let shutdown = event("SHUTDOWN", Some(shutdown_event_data()));
            for c in self
                .clients
                .iter_mut()
                .filter(|c| c.session.is_negotiated())
            {
                c.queue(&shutdown);
            }
            self.clients[i].queue(&reply);
            self.drain(Duration::from_secs(2));
            return Ok(false);
        }
        for c in &mut self.clients {
            c.flush();
        }
        self.clients.retain(|c| !c.gone);
        Ok(true)
    }

    /// Sends what is still queued before the loop ends, for at most
    /// `limit` (a client that stopped reading does not hold the VMM up).
    fn drain(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            for c in &mut self.clients {
                c.flush();
            }
            if self.clients.iter().all(|c| c.gone || c.pending.is_empty()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends an event to every client past the handshake (a VMM's own
    /// events: a device that changed state, a guest that panicked...).
    pub fn emit(&mut self, name: &str, data: Option<Value>) {
        let message = event(name, data);
        for c in self
            .clients
            .iter_mut()
            .filter(|c| c.session.is_negotiated())
        {
            c.queue(&message);
        }
    }
}

/// The VMM's objects and the QMP commands that answer from them: the
/// `qom-*` commands and `query-memdev`.
fn vmm_commands() -> Result<(Arc<ObjectTree>, Arc<Commands>), Box<dyn std::error::Error>> {
    let types = qom::TypeRegistry::with_builtins();
    memory_backend_ram::register(&types)?;
    memory_backend_file::register(&types)?;
    let tree = Arc::new(ObjectTree::new(types)?);
    tree.object_add_str("memory-backend-ram,id=ram0,size=64M")?;
    let commands = Commands::new();
    register_qom_commands(&commands, tree.clone())?;
    let t = tree.clone();
    commands.register("query-memdev", move |_| {
        serde_json::to_value(memory_backend::query_memdev(&t))
            .map_err(|e| qom::Error::generic(e.to_string()))
    })?;
    Ok((tree, Arc::new(commands)))
}

fn run(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (_tree, commands) = vmm_commands()?;
    let listener = UnixListener::bind(path)?;
    eprintln!("QMP on {}; the VMM ticks every 500 ms", path.display());
    let mut qmp = QmpLoop::new(listener, commands)?;
    let mut ticks = 0u64;
    let mut last_tick = Instant::now();
    while qmp.turn(Duration::from_millis(100))? {
        // The VMM's own work, between two turns of the same loop.
        if last_tick.elapsed() >= Duration::from_millis(500) {
            last_tick = Instant::now();
            ticks += 1;
        }
    }
    eprintln!("quit after {ticks} ticks");
    std::fs::remove_file(path)?;
    Ok(())
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/qom-vmm.sock".to_owned());
    if let Err(e) = run(Path::new(&path)) {
        eprintln!("qmp_event_loop: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::{BufRead, BufReader};

    struct Peer {
        lines: std::io::Lines<BufReader<UnixStream>>,
        stream: UnixStream,
    }

    impl Peer {
        fn connect(path: &Path) -> Peer {
            let stream = UnixStream::connect(path).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let lines = BufReader::new(stream.try_clone().unwrap()).lines();
            Peer { lines, stream }
        }
        fn send(&mut self, text: &str) {
            self.stream.write_all(text.as_bytes()).unwrap();
        }
        fn next(&mut self) -> Value {
            let line = self.lines.next().expect("a line").expect("read in time");
            serde_json::from_str(&line).unwrap()
        }
    }

    #[test]
    fn one_thread_serves_two_clients_until_quit() {
        let dir = std::env::temp_dir().join(format!("qom-ex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmp.sock");
        let _ = std::fs::remove_file(&path);
        let (tree, commands) = vmm_commands().unwrap();
        let mut qmp = QmpLoop::new(UnixListener::bind(&path).unwrap(), commands).unwrap();
        let t = tree.clone();
        let vmm = std::thread::spawn(move || {
            let mut announced = false;
            while qmp.turn(Duration::from_millis(20)).unwrap() {
                // The VMM's own event, once it sees the new backend.
                if !announced && t.object("ram1").is_some() {
                    qmp.emit("X-RAM-ADDED", Some(json!({"id": "ram1"})));
                    announced = true;
                }
            }
        });

        let mut a = Peer::connect(&path);
        let mut b = Peer::connect(&path);
        assert!(a.next()["QMP"].is_object());
        assert!(b.next()["QMP"].is_object());
        // Before the handshake: QEMU's error, and no events.
        b.send(r#"{"execute": "query-memdev", "id": 1}"#);
        assert_eq!(b.next()["error"]["class"], "CommandNotFound");
        a.send("{'execute': 'qmp_capabilities'}\n");
        assert_eq!(a.next(), json!({"return": {}}));
        // Messages split across writes, and two in one write.
        a.send(r#"{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram","#);
        a.send(r#" "id": "ram1", "size": 1048576}, "id": "add"}{"execute": "query-memdev", "id": "q"}"#);
        assert_eq!(a.next(), json!({"return": {}, "id": "add"}));
        // The reply to query-memdev and the VMM's event, in whichever
        // order the two turns produced them.
        let (x, y) = (a.next(), a.next());
        let (memdev, event) = if x.get("event").is_some() {
            (y, x)
        } else {
            (x, y)
        };
        assert_eq!(memdev["id"], "q");
        assert_eq!(memdev["return"].as_array().unwrap().len(), 2);
        assert_eq!(event["event"], "X-RAM-ADDED");
        assert_eq!(event["data"], json!({"id": "ram1"}));
        assert!(tree.object("ram1").is_some());

        b.send(r#"{"execute": "qmp_capabilities"}"#);
        assert_eq!(b.next(), json!({"return": {}}));
        b.send(r#"{"execute": "quit", "id": "bye"}"#);
        let shutdown = b.next();
        assert_eq!(shutdown["event"], "SHUTDOWN");
        assert_eq!(b.next(), json!({"return": {}, "id": "bye"}));
        assert_eq!(a.next()["event"], "SHUTDOWN");
        vmm.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
