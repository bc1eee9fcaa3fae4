//! Running QMP scenarios against a server (one fresh process each) into a
//! transcript, and comparing two transcripts.

use super::normalise::{self, expand, unexpand_str};
use super::server::Server;
use super::{fs_steps, OracleError};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The request sent after a raw line: every reply before its own belongs to
/// the raw line.
pub const SENTINEL: &str = "__qmpo_sync__";

/// The transcript format's version; the team's first recordings are 1.
pub const HARNESS_VERSION: u64 = 1;

/// How scenarios are run.
pub struct RunOptions {
    /// The server command; `{TMP}` in it is expanded per scenario.
    pub server: Vec<String>,
    /// Where the per-scenario `{TMP}` directories are made (the
    /// `allocated` figures of `stat` steps depend on its file system).
    pub tmp_root: PathBuf,
    /// How long to wait for each message.
    pub timeout: Duration,
}

impl RunOptions {
    /// `server` with the defaults: `{TMP}` under the system temp dir, 30 s
    /// per message.
    pub fn new(server: Vec<String>) -> RunOptions {
        RunOptions {
            server,
            tmp_root: std::env::temp_dir(),
            timeout: Duration::from_secs(30),
        }
    }
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty directory under `root`, removed on drop.
pub(crate) struct ScratchDir(pub(crate) PathBuf);

impl ScratchDir {
    pub(crate) fn new(root: &Path, prefix: &str) -> Result<ScratchDir, OracleError> {
        let n = DIRS.fetch_add(1, Ordering::SeqCst);
        let p = root.join(format!("{prefix}{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| OracleError::io(&p, e))?;
        Ok(ScratchDir(p))
    }

    pub(crate) fn text(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn flags(sc: &Value) -> Vec<&str> {
    sc["flags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Runs `scenarios` (the definitions, a JSON list) and returns the
/// transcript. A scenario that fails in the recorder (a timeout, a server
/// that cannot start) is recorded with its `harness_error`; only an
/// unusable temp root is an error.
pub fn run_scenarios(scenarios: &Value, opts: &RunOptions) -> Result<Value, OracleError> {
    let list = scenarios
        .as_array()
        .ok_or_else(|| OracleError::Setup("scenario definitions are not a list".into()))?;
    let mut out = Vec::new();
    for sc in list {
        out.push(run_scenario(sc, opts)?);
    }
    Ok(json!({
        "format": "qmp-oracle-transcript",
        "harness_version": HARNESS_VERSION,
        "server": opts.server.join(" "),
        "scenarios": out,
    }))
}

/// Runs one scenario in a fresh server process.
pub fn run_scenario(sc: &Value, opts: &RunOptions) -> Result<Value, OracleError> {
    let mut rec = Map::new();
    for k in ["name", "doc", "flags", "setup"] {
        rec.insert(k.into(), sc.get(k).cloned().unwrap_or(Value::Null));
    }
    rec.insert("steps".into(), json!([]));
    let tmp = ScratchDir::new(&opts.tmp_root, "qmpo-")?;
    let work = ScratchDir::new(&std::env::temp_dir(), "qmpo-work-")?;
    let t = tmp.text();
    if let Err(e) = run_in(sc, opts, &t, &work.0, &mut rec) {
        rec.insert("harness_error".into(), json!(e.to_string()));
    }
    Ok(Value::Object(rec))
}

fn run_in(
    sc: &Value,
    opts: &RunOptions,
    tmp: &str,
    work: &Path,
    rec: &mut Map<String, Value>,
) -> Result<(), OracleError> {
    for st in sc["setup"].as_array().into_iter().flatten() {
        fs_steps::run(&expand(st, tmp))?;
    }
    let argv: Vec<String> = opts
        .server
        .iter()
        .map(|a| a.replace("{TMP}", tmp))
        .collect();
    let stderr_path = work.join("stderr.txt");
    let mut server = Server::start(&argv, work, &stderr_path)?;
    let steps = run_steps(sc, opts, tmp, &mut server, rec);
    // stderr is written before the QMP reply that follows it, so all of it
    // is in the file once the last reply has been read
    let err = std::fs::read(&stderr_path).map_err(|e| OracleError::io(&stderr_path, e))?;
    let lines: Vec<Value> = String::from_utf8_lossy(&err)
        .lines()
        .map(|l| json!(unexpand_str(l, tmp)))
        .collect();
    rec.insert("stderr".into(), Value::Array(lines));
    let rc = server.stop();
    if flags(sc).contains(&"process") {
        rec.insert("exit_status".into(), json!(rc));
    }
    steps
}

fn run_steps(
    sc: &Value,
    opts: &RunOptions,
    tmp: &str,
    server: &mut Server,
    rec: &mut Map<String, Value>,
) -> Result<(), OracleError> {
    let timeout = opts.timeout;
    let mut greeting = server.out.next(timeout)?;
    // an event ahead of the greeting depends on timing: skipped
    while greeting.as_ref().is_some_and(|g| g.get("event").is_some()) {
        greeting = server.out.next(timeout)?;
    }
    let flags = flags(sc);
    if flags.contains(&"greeting") {
        let g = greeting.unwrap_or(Value::Null);
        rec.insert("greeting".into(), normalise::greeting_shape(&g));
    }
    for step in sc["steps"].as_array().into_iter().flatten() {
        let Value::Object(step_map) = step else {
            return Err(OracleError::Setup(format!(
                "a step is not an object: {step}"
            )));
        };
        let mut r = step_map.clone();
        if fs_steps::is_fs_step(step) {
            r.insert("result".into(), fs_steps::run(&expand(step, tmp))?);
            push(rec, r);
            continue;
        }
        let (opts_map, req): (Map<String, Value>, Map<String, Value>) = step_map
            .clone()
            .into_iter()
            .partition(|(k, _)| k.starts_with('_'));
        let mut events = Vec::new();
        let mut eof = false;
        let mut r = Map::new();
        if let Some(raw) = req.get("raw") {
            r.insert("raw".into(), raw.clone());
            r.extend(opts_map.clone());
            let line = expand(raw, tmp);
            server.send(line.as_str().unwrap_or_default())?;
            server.send_json(&json!({"execute": SENTINEL, "id": SENTINEL}))?;
            let mut replies = Vec::new();
            loop {
                match server.out.next(timeout)? {
                    None => {
                        replies.push(json!({"_eof": true}));
                        eof = true;
                        break;
                    }
                    Some(m) if m.get("event").is_some() => {
                        events.push(normalise::message(&m, tmp, None, false))
                    }
                    Some(m) if m.get("id") == Some(&json!(SENTINEL)) => break,
                    Some(m) => replies.push(normalise::message(&m, tmp, None, false)),
                }
            }
            if !events.is_empty() {
                r.insert("events".into(), Value::Array(events));
            }
            r.insert("responses".into(), Value::Array(replies));
        } else {
            let req = Value::Object(req);
            r.insert("request".into(), req.clone());
            r.extend(opts_map.clone());
            server.send_json(&expand(&req, tmp))?;
            let names = opts_map.get("_names").and_then(Value::as_array);
            let keep = opts_map.get("_keep_order").and_then(Value::as_bool) == Some(true);
            let resp = loop {
                match server.out.next(timeout)? {
                    None => {
                        eof = true;
                        break json!({"_eof": true});
                    }
                    Some(m) if m.get("event").is_some() => {
                        events.push(normalise::message(&m, tmp, None, false))
                    }
                    Some(m) => break normalise::message(&m, tmp, names.map(Vec::as_slice), keep),
                }
            };
            if !events.is_empty() {
                r.insert("events".into(), Value::Array(events));
            }
            r.insert("response".into(), resp);
        }
        push(rec, r);
        if eof {
            break;
        }
    }
    if flags.contains(&"process") {
        let mut trailing = Vec::new();
        loop {
            match server.out.next(Duration::from_secs(3)) {
                Err(OracleError::Timeout(_)) => {
                    trailing.push(json!({"_no_eof_after_3s": true}));
                    break;
                }
                Err(e) => return Err(e),
                Ok(None) => break,
                Ok(Some(m)) => trailing.push(normalise::message(&m, tmp, None, false)),
            }
        }
        rec.insert("trailing_events".into(), Value::Array(trailing));
        server.wait_for(Duration::from_secs(5));
    }
    Ok(())
}

fn push(rec: &mut Map<String, Value>, step: Map<String, Value>) {
    if let Some(Value::Array(a)) = rec.get_mut("steps") {
        a.push(Value::Object(step));
    }
}

/// The keys of a recorded step that hold what the server answered.
const RESULT_KEYS: [&str; 4] = ["response", "responses", "events", "result"];

/// How one scenario of B differs from the same scenario of A (the
/// reference): empty when they match. Error texts are compared too;
/// stderr is not (the team's harness reports it as a note only).
pub fn compare_scenario(a: &Value, b: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    for key in [
        "harness_error",
        "greeting",
        "exit_status",
        "trailing_events",
    ] {
        if a.get(key) != b.get(key) {
            diffs.push(format!("{key}: A={:?} B={:?}", a.get(key), b.get(key)));
        }
    }
    let empty = Vec::new();
    let sa = a["steps"].as_array().unwrap_or(&empty);
    let sb = b["steps"].as_array().unwrap_or(&empty);
    if sa.len() != sb.len() {
        diffs.push(format!("step count: A={} B={}", sa.len(), sb.len()));
    }
    for (i, (x, y)) in sa.iter().zip(sb).enumerate() {
        let strip = |v: &Value| -> Value {
            let mut v = v.clone();
            if let Value::Object(m) = &mut v {
                m.retain(|k, _| !RESULT_KEYS.contains(&k.as_str()));
            }
            v
        };
        if strip(x) != strip(y) {
            diffs.push(format!(
                "step {i}: request differs (scenario definitions out of sync): {}",
                strip(y)
            ));
            continue;
        }
        for key in RESULT_KEYS {
            if x.get(key) != y.get(key) {
                diffs.push(format!(
                    "step {i} {}: {key}\n      A: {}\n      B: {}",
                    strip(x),
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    diffs
}

/// Compares every scenario of `reference` with the same one of `other`:
/// the names that differ, each with its differences, in the reference's
/// order, and the number that matched.
pub fn compare(reference: &Value, other: &Value) -> (usize, Vec<(String, Vec<String>)>) {
    let empty = Vec::new();
    let theirs = other["scenarios"].as_array().unwrap_or(&empty);
    let mut matched = 0;
    let mut differ = Vec::new();
    for sa in reference["scenarios"].as_array().unwrap_or(&empty) {
        let name = sa["name"].as_str().unwrap_or_default().to_owned();
        let diffs = match theirs.iter().find(|s| s["name"] == sa["name"]) {
            None => vec!["missing".to_owned()],
            Some(sb) => compare_scenario(sa, sb),
        };
        if diffs.is_empty() {
            matched += 1;
        } else {
            differ.push((name, diffs));
        }
    }
    (matched, differ)
}
