//! The command-line cases: a server started with `-object STRING...` in a
//! fresh directory, and what came of it (the properties of every object it
//! made, or its exact stderr and exit status).

use super::server::Server;
use super::transcript::ScratchDir;
use super::OracleError;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The columns of a result file.
pub const COLUMNS: [&str; 6] = [
    "name",
    "objects",
    "outcome",
    "exit_status",
    "stderr",
    "result",
];

/// One case: its name and its `-object` strings (with `{TMP}`).
#[derive(Clone, Debug)]
pub struct Case {
    /// The case's name.
    pub name: String,
    /// Each `-object` argument.
    pub objects: Vec<String>,
}

/// What came of one case, one field per column of [`COLUMNS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// Its `-object` strings joined by ` -object `.
    pub objects: String,
    /// `OK` (greeting), `ERROR` (exited non-zero first), `EXIT0` (exited
    /// with 0 first) or `HANG`.
    pub outcome: String,
    /// The exit status (negative: the signal that ended it).
    pub exit_status: String,
    /// Its stderr, `{TMP}` for the directory and `{PROG}` for the program
    /// name at the start of a line.
    pub stderr: String,
    /// OK: `{id: {property: value}}` as JSON; EXIT0: its stdout.
    pub result: String,
}

/// Reads a case file: `name<TAB>-object string[<TAB>more]`, `#` comments.
pub fn read_cases(text: &str) -> Vec<Case> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split('\t').map(str::to_owned);
            let name = parts.next().unwrap_or_default();
            let mut objects: Vec<String> = parts.collect();
            if objects.is_empty() {
                objects.push(String::new());
            }
            Case { name, objects }
        })
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

fn unesc(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The result file's text: a `#` header line, then one escaped row per
/// outcome.
pub fn write_results(rows: &[Outcome]) -> String {
    let mut s = format!("# {}\n", COLUMNS.join("\t"));
    for r in rows {
        let cols = [
            &r.name,
            &r.objects,
            &r.outcome,
            &r.exit_status,
            &r.stderr,
            &r.result,
        ];
        let line: Vec<String> = cols.iter().map(|c| esc(c)).collect();
        s.push_str(&line.join("\t"));
        s.push('\n');
    }
    s
}

/// Parses a result file written by [`write_results`].
pub fn read_results(text: &str) -> Vec<Outcome> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut f: Vec<String> = l.split('\t').map(unesc).collect();
            f.resize(COLUMNS.len(), String::new());
            Outcome {
                name: f[0].clone(),
                objects: f[1].clone(),
                outcome: f[2].clone(),
                exit_status: f[3].clone(),
                stderr: f[4].clone(),
                result: f[5].clone(),
            }
        })
        .collect()
}

/// Runs one case: `server` (a command speaking QMP on stdio) plus
/// `-object` per string, in a fresh directory under `tmp_root` that holds
/// `f4m` (4 MiB, sparse), `big8m` (8 MiB, sparse) and an empty `d/`.
pub fn run_case(
    case: &Case,
    server: &[String],
    tmp_root: &Path,
    timeout: Duration,
) -> Result<Outcome, OracleError> {
    let dir = ScratchDir::new(tmp_root, "qmpo-cli-")?;
    let tmp = dir.text();
    for (name, size) in [("f4m", 4u64 << 20), ("big8m", 8 << 20)] {
        let p = dir.0.join(name);
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(size))
            .map_err(|e| OracleError::io(&p, e))?;
    }
    std::fs::create_dir(dir.0.join("d")).map_err(|e| OracleError::io(&dir.0, e))?;
    let mut argv = server.to_vec();
    let prog = Path::new(&argv[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for o in &case.objects {
        argv.push("-object".into());
        argv.push(o.replace("{TMP}", &tmp));
    }
    let errpath = dir.0.join(".stderr");
    let mut srv = Server::start(&argv, &dir.0, &errpath)?;
    let (outcome, result) = match drive(&mut srv, timeout) {
        Ok(r) => r,
        Err(OracleError::Timeout(_)) => ("HANG".to_owned(), String::new()),
        Err(e) => return Err(e),
    };
    let rc = srv.stop();
    let err = std::fs::read(&errpath).map_err(|e| OracleError::io(&errpath, e))?;
    let err = String::from_utf8_lossy(&err);
    let mut stderr = String::new();
    for line in err.split_inclusive('\n') {
        match line.strip_prefix(&format!("{prog}:")) {
            Some(rest) => {
                stderr.push_str("{PROG}:");
                stderr.push_str(rest);
            }
            None => stderr.push_str(line),
        }
    }
    Ok(Outcome {
        name: case.name.clone(),
        objects: case.objects.join(" -object "),
        outcome,
        exit_status: rc.to_string(),
        stderr: stderr.replace(&tmp, "{TMP}"),
        result: result.replace(&tmp, "{TMP}"),
    })
}

/// Waits for the greeting or the exit; after a greeting reads back every
/// property of every object under /objects, then quits.
fn drive(srv: &mut Server, timeout: Duration) -> Result<(String, String), OracleError> {
    let deadline = Instant::now() + timeout;
    loop {
        let pending = srv.out.pending().trim_start();
        if pending.starts_with('{') {
            let left = deadline.saturating_duration_since(Instant::now());
            let g = srv.out.next(left.max(Duration::from_millis(100)))?;
            if g.as_ref().is_some_and(|g| g.get("QMP").is_some()) {
                break;
            }
            continue; // an event ahead of the greeting
        }
        if srv.out.at_eof() {
            let rc = srv
                .wait_for(timeout)
                .ok_or_else(|| OracleError::Timeout("no exit".into()))?;
            return Ok(if rc == 0 {
                ("EXIT0".into(), srv.out.pending().to_owned())
            } else {
                ("ERROR".into(), String::new())
            });
        }
        srv.out.fill(deadline)?;
    }
    srv.request(&json!({"execute": "qmp_capabilities"}), timeout)?;
    let children = |v: &Value, want_child: bool| -> Vec<String> {
        let mut names: Vec<String> = v["return"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| {
                x["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("child<") == want_child)
            })
            .filter_map(|x| x["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    let list = srv.request(
        &json!({"execute": "qom-list", "arguments": {"path": "/objects"}}),
        timeout,
    )?;
    let mut objects = Map::new();
    for ch in children(&list, true) {
        let path = format!("/objects/{ch}");
        let props = srv.request(
            &json!({"execute": "qom-list", "arguments": {"path": path}}),
            timeout,
        )?;
        let mut vals = Map::new();
        for p in children(&props, false) {
            let r = srv.request(
                &json!({"execute": "qom-get", "arguments": {"path": path, "property": p}}),
                timeout,
            )?;
            let v = r
                .get("return")
                .or(r.get("error"))
                .cloned()
                .unwrap_or(Value::Null);
            vals.insert(p, v);
        }
        objects.insert(ch, Value::Object(vals));
    }
    srv.request(&json!({"execute": "quit"}), timeout)?;
    while srv.out.next(timeout)?.is_some() {}
    srv.wait_for(timeout);
    Ok(("OK".into(), python_dumps(&Value::Object(objects))))
}

/// The result column's JSON text: keys sorted, `", "` and `": "` between
/// items, non-ASCII escaped (the format of the team's first recordings).
fn python_dumps(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}: {}", ascii_string(k), python_dumps(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(python_dumps).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(s) => ascii_string(s),
        other => other.to_string(),
    }
}

fn ascii_string(s: &str) -> String {
    let mut out = String::new();
    for c in serde_json::to_string(s).expect("strings serialize").chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// How `b` differs from the reference `a`, column by column (`result`
/// compared as JSON after `ignore` removed the listed properties from
/// every object).
pub fn differing_columns(a: &Outcome, b: &Outcome, ignore: &[&str]) -> Vec<&'static str> {
    let mut cols = Vec::new();
    if a.outcome != b.outcome {
        cols.push("outcome");
    }
    if a.exit_status != b.exit_status {
        cols.push("exit_status");
    }
    if a.stderr != b.stderr {
        cols.push("stderr");
    }
    let strip = |r: &str| -> Value {
        match serde_json::from_str::<Value>(r) {
            Ok(Value::Object(mut objs)) => {
                for props in objs.values_mut() {
                    if let Value::Object(p) = props {
                        p.retain(|k, _| !ignore.contains(&k.as_str()));
                    }
                }
                super::json_text::sorted(&Value::Object(objs))
            }
            _ => Value::String(r.to_owned()),
        }
    };
    if strip(&a.result) != strip(&b.result) {
        cols.push("result");
    }
    cols
}
