//! A server process speaking QMP on its stdin/stdout, and the reader that
//! splits its output into JSON values with a timeout per value.

use super::OracleError;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One running server: started with `argv`, its stderr going to a file.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its standard output, as JSON values.
    pub out: Reader,
}

impl Server {
    /// Starts `argv` in `cwd` (its own process group, so that a terminal's
    /// Ctrl-C reaches the recorder only), stderr written to `stderr`.
    pub fn start(argv: &[String], cwd: &Path, stderr: &Path) -> Result<Server, OracleError> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| OracleError::Setup("empty server command".into()))?;
        let err = File::create(stderr).map_err(|e| OracleError::io(stderr, e))?;
        let mut child = Command::new(prog)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| OracleError::io(Path::new(prog), e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Server {
            child,
            stdin,
            out: Reader::new(stdout),
        })
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) -> Result<(), OracleError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| OracleError::Protocol("stdin already closed".into()))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| OracleError::Protocol(format!("writing to the server: {e}")))
    }

    /// Sends `req` as one line of JSON.
    pub fn send_json(&mut self, req: &Value) -> Result<(), OracleError> {
        self.send(&req.to_string())
    }

    /// Sends `req` and returns the first reply that is not an event.
    pub fn request(&mut self, req: &Value, timeout: Duration) -> Result<Value, OracleError> {
        self.send_json(req)?;
        loop {
            match self.out.next(timeout)? {
                Some(m) if m.get("event").is_some() => continue,
                Some(m) => return Ok(m),
                None => return Ok(json!({"_eof": true})),
            }
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code().unwrap_or_else(|| -st.signal().unwrap_or(0)));
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes its stdin, kills it if it is still running and returns its
    /// exit status (negative: the signal that ended it).
    pub fn stop(mut self) -> i32 {
        self.stdin = None;
        if let Some(code) = self.wait_for(Duration::ZERO) {
            return code;
        }
        let _ = self.child.kill();
        let st = self.child.wait().expect("waiting for a child we started");
        st.code().unwrap_or_else(|| -st.signal().unwrap_or(0))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Splits a byte stream into JSON values as they complete; text that is
/// not JSON comes back line by line as `{"_non_json": line}`.
pub struct Reader {
    chunks: Receiver<Vec<u8>>,
    buf: String,
    eof: bool,
    _thread: JoinHandle<()>,
}

impl Reader {
    fn new(mut src: impl Read + Send + 'static) -> Reader {
        let (tx, rx) = channel();
        let thread = std::thread::spawn(move || {
            let mut b = vec![0u8; 65536];
            loop {
                let n = src.read(&mut b).unwrap_or(0);
                if tx.send(b[..n].to_vec()).is_err() || n == 0 {
                    return;
                }
            }
        });
        Reader {
            chunks: rx,
            buf: String::new(),
            eof: false,
            _thread: thread,
        }
    }

    /// Everything received and not yet returned as a value.
    pub fn pending(&self) -> &str {
        &self.buf
    }

    /// True once the stream has ended.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Waits until more bytes arrive or the stream ends.
    pub fn fill(&mut self, deadline: Instant) -> Result<(), OracleError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.chunks.recv_timeout(left) {
            Ok(c) if c.is_empty() => self.eof = true,
            Ok(c) => self.buf.push_str(&String::from_utf8_lossy(&c)),
            Err(RecvTimeoutError::Disconnected) => self.eof = true,
            Err(RecvTimeoutError::Timeout) => {
                return Err(OracleError::Timeout("no message in time".into()))
            }
        }
        Ok(())
    }

    fn try_parse(&mut self) -> Option<Value> {
        let s = self.buf.trim_start();
        if s.is_empty() {
            self.buf.clear();
            return None;
        }
        let mut it = serde_json::Deserializer::from_str(s).into_iter::<Value>();
        match it.next() {
            Some(Ok(v)) => {
                let end = it.byte_offset();
                self.buf = s[end..].to_owned();
                Some(v)
            }
            Some(Err(e)) if !e.is_eof() && !s.starts_with(['{', '[']) => {
                let nl = s.find('\n')?;
                let line = s[..nl].trim_end_matches('\r').to_owned();
                self.buf = s[nl + 1..].to_owned();
                Some(json!({ "_non_json": line }))
            }
            _ => None,
        }
    }

    /// The next value; `None` at the end of the stream.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Value>, OracleError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.try_parse() {
                return Ok(Some(v));
            }
            if self.eof {
                return Ok(None);
            }
            self.fill(deadline)?;
        }
    }
}
