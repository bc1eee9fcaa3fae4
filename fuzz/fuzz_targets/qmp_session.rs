//! A whole QMP session: arbitrary bytes as one client's input to
//! `Server::serve_stream`, over an `ObjectTree` with the built-in types
//! and the memory backends (ram, memfd, shm, file), as `qom` serves it.
//!
//! Checked after every input:
//! * the output is the greeting and one well-formed reply per input
//!   message, in order, each echoing that message's `id` (so no id is
//!   ever answered twice), and nothing after the reply to `quit`;
//! * `/objects` holds exactly the objects whose `object-add` succeeded
//!   minus those whose `object-del` succeeded;
//! * after teardown (every object deleted, the tree dropped) no mapping
//!   or descriptor refers to the target's directory, and the directory
//!   holds only files that a successful `object-add` named.
//!
//! To keep one input cheap and harmless, `object-add` and `qom-set` pass
//! through a filter: sizes are capped at 2 MiB, preallocation threads at
//! 4, at most 8 objects live at once, and `mem-path` is moved into a
//! directory of this process under /dev/shm.
//!
//! `QOM_FUZZ_TRACE=1` prints each session's output (to replay an input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use qom::{ObjectTree, TypeRegistry};
use qom_qmp::{register_qom_commands, Commands, JsonStream, Server};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

const MAX_SIZE: u64 = 2 << 20;
const MAX_THREADS: u64 = 4;
const MAX_OBJECTS: usize = 8;

/// This process's directory for backing files, removed at exit.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = PathBuf::from(format!("/dev/shm/qom-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).expect("create the fuzz directory in /dev/shm");
        extern "C" fn remove_dir() {
            let _ = std::fs::remove_dir_all(format!("/dev/shm/qom-fuzz-{}", std::process::id()));
        }
        // SAFETY: registers a plain function without arguments.
        unsafe { libc::atexit(remove_dir) };
        d
    })
}

/// One registry for all runs: classes are built once, as in a server.
fn types() -> Arc<TypeRegistry> {
    static TYPES: OnceLock<Arc<TypeRegistry>> = OnceLock::new();
    TYPES
        .get_or_init(|| {
            let types = TypeRegistry::with_builtins();
            memory_backend_ram::register(&types).expect("register ram backends");
            memory_backend_file::register(&types).expect("register memory-backend-file");
            Arc::new(types)
        })
        .clone()
}

/// What the filter saw succeed.
#[derive(Default)]
struct Ledger {
    /// Ids of live objects, in creation order.
    live: Vec<String>,
    /// File names in `dir()` that a successful `object-add` named.
    named: BTreeSet<String>,
}

/// Caps a property value that could make one input costly or reach
/// outside the target's directory.
fn tame(name: &str, value: &mut Value) {
    match (name, &*value) {
        ("size" | "align" | "offset", Value::Number(n)) => {
            // Clamped, not wrapped: a page multiple stays one.
            if n.as_u64().is_some_and(|v| v > MAX_SIZE) {
                *value = Value::from(MAX_SIZE);
            }
        }
        ("prealloc-threads", Value::Number(n)) => {
            if n.as_u64().is_some_and(|v| v > MAX_THREADS) {
                *value = Value::from(MAX_THREADS);
            }
        }
        ("mem-path", Value::String(p)) => {
            // Letters and digits of the last component, or the directory
            // itself (an unnamed temporary file) when none are left.
            let base: String = p
                .rsplit('/')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(12)
                .collect();
            let path = if base.is_empty() {
                dir().to_path_buf()
            } else {
                dir().join(base)
            };
            *value = Value::String(path.display().to_string());
        }
        _ => {}
    }
}

fn named_file(args: &Map<String, Value>) -> Option<String> {
    let path = Path::new(args.get("mem-path")?.as_str()?);
    (path != dir()).then(|| path.file_name()?.to_str().map(str::to_owned))?
}

/// The table `qom` serves (see qom-cli's serve.rs), with the filter in
/// front of `object-add`, `object-del` and `qom-set`.
fn commands(tree: &Arc<ObjectTree>, ledger: &Arc<Mutex<Ledger>>) -> Arc<Commands> {
    let inner = Commands::new();
    register_qom_commands(&inner, tree.clone()).expect("register qom commands");
    let t = tree.clone();
    inner
        .register("query-memdev", move |_| {
            serde_json::to_value(memory_backend::query_memdev(&t))
                .map_err(|e| qom::Error::generic(e.to_string()))
        })
        .expect("register query-memdev");
    let inner = Arc::new(inner);

    let outer = Commands::new();
    for name in inner.names() {
        let Some(handler) = inner.handler(&name) else {
            continue;
        };
        let ledger = ledger.clone();
        let wrapped: qom_qmp::Handler = match name.as_str() {
            "object-add" => Arc::new(move |args: &Map<String, Value>| {
                let mut args = args.clone();
                for (k, v) in args.iter_mut() {
                    tame(k, v);
                }
                let mut ledger = ledger.lock().unwrap();
                if ledger.live.len() >= MAX_OBJECTS {
                    return Err(qom::Error::generic("fuzz: too many objects"));
                }
                let r = handler(&args);
                if r.is_ok() {
                    let id = args.get("id").and_then(Value::as_str);
                    let id = id.expect("object-add succeeded without a string id");
                    ledger.live.push(id.to_owned());
                    ledger.named.extend(named_file(&args));
                }
                r
            }),
            "object-del" => Arc::new(move |args: &Map<String, Value>| {
                let r = handler(args);
                if r.is_ok() {
                    let id = args.get("id").and_then(Value::as_str);
                    let id = id.expect("object-del succeeded without a string id");
                    let mut ledger = ledger.lock().unwrap();
                    let before = ledger.live.len();
                    ledger.live.retain(|l| l != id);
                    assert_eq!(ledger.live.len() + 1, before, "deleted {id:?}, not added");
                }
                r
            }),
            "qom-set" => Arc::new(move |args: &Map<String, Value>| {
                let mut args = args.clone();
                let property = args
                    .get("property")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let (Some(p), Some(v)) = (property, args.get_mut("value")) {
                    tame(&p, v);
                }
                handler(&args)
            }),
            _ => handler,
        };
        outer.register_handler(&name, wrapped).expect("re-register");
        let (inner, key) = (inner.clone(), name.clone());
        outer
            .describe_with(&name, move || inner.schema(&key))
            .expect("describe");
    }
    let outer = Arc::new(outer);
    qom_qmp::schema::register_query_qmp_schema(&outer).expect("register query-qmp-schema");
    outer
}

/// Client input in pieces whose sizes `seed` decides.
struct Pieces<'a> {
    rest: &'a [u8],
    rng: u32,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rng = self.rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (((self.rng >> 16) % 64) as usize + 1)
            .min(self.rest.len())
            .min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn children(tree: &ObjectTree) -> BTreeSet<String> {
    tree.qom_list("/objects")
        .expect("qom-list /objects")
        .into_iter()
        .filter(|p| p.qom_type.starts_with("child<"))
        .map(|p| p.name)
        .collect()
}

/// Whatever under `dir()` the process still maps or holds open.
fn references_to_dir() -> Vec<String> {
    let d = dir().display().to_string();
    let mut found: Vec<String> = std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&d))
        .map(str::to_owned)
        .collect();
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if target.starts_with(&d) {
                    found.push(format!("fd {:?} -> {}", fd.file_name(), target.display()));
                }
            }
        }
    }
    found
}

fn check_replies(input: &[u8], output: &[u8]) {
    let text = std::str::from_utf8(output).expect("QMP output is ASCII");
    let mut lines = text.split_terminator("\r\n");
    let greeting: Value = serde_json::from_str(lines.next().expect("a greeting")).unwrap();
    assert!(
        greeting.get("QMP").is_some(),
        "first line is not the greeting"
    );
    let mut replies = Vec::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        if v.get("event").is_none() {
            replies.push(v);
        }
    }
    let messages = JsonStream::new().feed(input);
    for (i, reply) in replies.iter().enumerate() {
        let m = messages
            .get(i)
            .unwrap_or_else(|| panic!("reply {i} to no message: {reply}"));
        let members: Vec<&String> = reply
            .as_object()
            .expect("a reply is an object")
            .keys()
            .collect();
        let outcome = members
            .iter()
            .filter(|k| ["return", "error"].contains(&k.as_str()))
            .count();
        assert_eq!(outcome, 1, "{reply}");
        let want_id = m.as_ref().ok().and_then(|v| v.get("id"));
        assert_eq!(reply.get("id"), want_id, "reply {i} {reply} to {m:?}");
    }
    let quit = messages.iter().zip(&replies).position(|(m, r)| {
        let execute = m
            .as_ref()
            .ok()
            .and_then(|v| v.get("execute"))
            .and_then(Value::as_str);
        execute == Some("quit") && r.get("return").is_some()
    });
    let expected = quit.map_or(messages.len(), |q| q + 1);
    assert_eq!(
        replies.len(),
        expected,
        "{} messages, {} replies",
        messages.len(),
        replies.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let [seed, input @ ..] = data else {
        return;
    };
    let dir = dir();
    let tree = Arc::new(ObjectTree::new(types()).expect("tree"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let server = Server::new(commands(&tree, &ledger));
    let sink = Sink::default();
    let reader = Pieces {
        rest: input,
        rng: u32::from(*seed),
    };
    server
        .serve_stream(reader, sink.clone())
        .expect("in-memory streams do not fail");
    drop(server);

    // QOM_FUZZ_TRACE=1 shows the session when replaying an input.
    static TRACE: OnceLock<bool> = OnceLock::new();
    if *TRACE.get_or_init(|| std::env::var_os("QOM_FUZZ_TRACE").is_some()) {
        eprintln!("{}", String::from_utf8_lossy(&sink.0.lock().unwrap()));
    }
    check_replies(input, &sink.0.lock().unwrap());

    let live = ledger.lock().unwrap().live.clone();
    let want: BTreeSet<String> = live.iter().cloned().collect();
    assert_eq!(
        children(&tree),
        want,
        "/objects against the successful adds and deletes"
    );

    // Teardown: newest first, so that what links to an object goes before it.
    let mut pending = live;
    while let Some(id) = pending.pop() {
        if let Err(e) = tree.object_del(&id) {
            panic!("object-del {id}: {e}");
        }
    }
    assert!(children(&tree).is_empty());
    assert_eq!(Arc::strong_count(&tree), 1, "the tree outlived its server");
    drop(tree);

    let refs = references_to_dir();
    assert!(refs.is_empty(), "after teardown: {refs:#?}");
    let named = std::mem::take(&mut ledger.lock().unwrap().named);
    for entry in std::fs::read_dir(dir)
        .expect("read the fuzz directory")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            named.contains(&name),
            "{name} left behind in {}",
            dir.display()
        );
        let _ = std::fs::remove_file(entry.path());
    }
});
