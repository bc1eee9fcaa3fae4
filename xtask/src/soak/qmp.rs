//! A small QMP client for the soak test: one request at a time, every
//! read bounded by a timeout (a timeout is a hang, hence a failure).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long any answer may take before the server counts as hung.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The request that closes a stretch of raw input: its answer, which
/// carries this id, marks the end of the answers to that input.
const SYNC_ID: &str = "soak-sync";

/// One connection.
pub struct Qmp {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects and reads the greeting; does not negotiate.
    pub fn connect(path: &Path) -> Result<Qmp> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to {}", path.display()))?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
        let reader = BufReader::new(stream.try_clone()?);
        let mut q = Qmp { stream, reader };
        let greeting = q.recv()?;
        if greeting["QMP"]["capabilities"] != json!(["oob"]) {
            bail!("unexpected greeting {greeting}");
        }
        Ok(q)
    }

    /// Connects and negotiates.
    pub fn ready(path: &Path) -> Result<Qmp> {
        let mut q = Qmp::connect(path)?;
        q.expect(
            json!({"execute": "qmp_capabilities"}),
            json!({"return": {}}),
        )?;
        Ok(q)
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .context("writing to the server")
    }

    /// The next message; a timeout or the end of the connection fails.
    pub fn recv(&mut self) -> Result<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => bail!("the server closed the connection"),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("no answer within {ANSWER_TIMEOUT:?}: the server hangs")
            }
            Err(e) => return Err(e).context("reading from the server"),
        }
        if !line.ends_with("\r\n") {
            bail!("answer not terminated by CR LF: {}", clip(&line));
        }
        serde_json::from_str(&line).with_context(|| format!("answer is not JSON: {}", clip(&line)))
    }

    /// Sends one request and returns the next message.
    pub fn cmd(&mut self, request: Value) -> Result<Value> {
        let mut text = serde_json::to_vec(&request)?;
        text.push(b'\n');
        self.send_raw(&text)?;
        let answer = self.recv()?;
        if answer.get("event").is_some() {
            bail!("unexpected event {answer}");
        }
        Ok(answer)
    }

    /// Sends one request and checks that the answer is `expected`.
    pub fn expect(&mut self, request: Value, expected: Value) -> Result<()> {
        let what = clip(&request.to_string());
        let answer = self.cmd(request)?;
        if answer != expected {
            bail!(
                "{what}: expected {expected}, got {}",
                clip(&answer.to_string())
            );
        }
        Ok(())
    }

    /// Sends `raw` and a closing request; returns every message that came
    /// before the closing request's answer.
    pub fn raw_step(&mut self, raw: &[u8]) -> Result<Vec<Value>> {
        let mut bytes = raw.to_vec();
        bytes.push(b'\n');
        bytes.extend_from_slice(
            json!({"execute": "query-memdev", "id": SYNC_ID})
                .to_string()
                .as_bytes(),
        );
        bytes.push(b'\n');
        self.send_raw(&bytes)?;
        let mut out = Vec::new();
        loop {
            let m = self.recv()?;
            if m.get("id") == Some(&json!(SYNC_ID)) {
                if m.get("return").is_none() {
                    bail!("the closing query-memdev failed: {m}");
                }
                return Ok(out);
            }
            out.push(m);
        }
    }
}

/// `{"error": {"class": CLASS, "desc": DESC}}`.
pub fn error(class: &str, desc: &str) -> Value {
    json!({"error": {"class": class, "desc": desc}})
}

/// At most 200 characters of `s`, for messages.
pub fn clip(s: &str) -> String {
    let s = s.trim_end();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}... ({} bytes)", &s[..i], s.len()),
        None => s.to_owned(),
    }
}
