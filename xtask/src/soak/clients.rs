//! The three kinds of soak clients: mixers (their own objects, every answer
//! checked), the malformed-input client, and the racer (deletes the
//! mixers' objects under them).

use super::qmp::{clip, error, Qmp};
use anyhow::{bail, Context, Result};
use qom_test_support::XorShift;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

mod malformed;
pub use malformed::malformed;

/// What the clients share.
pub struct Shared {
    pub socket: PathBuf,
    /// Where file backends live (on /dev/shm).
    pub mem_dir: PathBuf,
    pub stop: AtomicBool,
    /// Ids the mixers are about to create or hold, for the racer.
    pub ids: Mutex<BTreeSet<String>>,
    /// The answers that do not depend on the objects' state.
    pub reference: Reference,
    pub cycles: AtomicU64,
    pub racer_hits: AtomicU64,
    pub racer_misses: AtomicU64,
    pub racer_in_use: AtomicU64,
    /// Mixer operations that found their object deleted by the racer.
    pub raced_ops: AtomicU64,
    pub malformed_cases: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Shared {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Answers taken once before the clients start, from objects made for it.
pub struct Reference {
    /// `qom-list` of a complete object, by type, for the ids `ref-ram` and
    /// `ref-file` (see [`Reference::listing`]).
    pub list_ram: Value,
    pub list_file: Value,
    /// `qom-list-properties` answers, by type.
    pub props_ram: Value,
    pub props_file: Value,
}

impl Reference {
    /// Makes one object of each type, lists them, deletes them.
    pub fn take(socket: &Path, mem_dir: &Path) -> Result<Reference> {
        let mut q = Qmp::ready(socket)?;
        let ok = json!({"return": {}});
        q.expect(
            add("ref-ram", "memory-backend-ram", 1 << 20, &[]),
            ok.clone(),
        )?;
        q.expect(
            add(
                "ref-file",
                "memory-backend-file",
                1 << 20,
                &[("mem-path", json!(mem_dir))],
            ),
            ok.clone(),
        )?;
        let list = |q: &mut Qmp, id: &str| -> Result<Value> {
            let a = q.cmd(
                json!({"execute": "qom-list", "arguments": {"path": format!("/objects/{id}")}}),
            )?;
            a.get("return")
                .cloned()
                .with_context(|| format!("qom-list {id}: {a}"))
        };
        let props = |q: &mut Qmp, ty: &str| -> Result<Value> {
            let a =
                q.cmd(json!({"execute": "qom-list-properties", "arguments": {"typename": ty}}))?;
            a.get("return")
                .cloned()
                .with_context(|| format!("qom-list-properties {ty}: {a}"))
        };
        let reference = Reference {
            list_ram: list(&mut q, "ref-ram")?,
            list_file: list(&mut q, "ref-file")?,
            props_ram: props(&mut q, "memory-backend-ram")?,
            props_file: props(&mut q, "memory-backend-file")?,
        };
        for id in ["ref-ram", "ref-file"] {
            q.expect(
                json!({"execute": "object-del", "arguments": {"id": id}}),
                ok.clone(),
            )?;
        }
        Ok(reference)
    }
}

impl Reference {
    /// The `qom-list` answer expected for `id` of type `ty`: children are
    /// named after their owner's id (`ID[0]`).
    fn listing(&self, id: &str, ty: &str) -> Value {
        let (template, ref_id) = if ty == "memory-backend-file" {
            (&self.list_file, "ref-file")
        } else {
            (&self.list_ram, "ref-ram")
        };
        let mut v = template.clone();
        if let Some(entries) = v.as_array_mut() {
            for e in entries {
                if let Some(name) = e["name"].as_str() {
                    if let Some(rest) = name.strip_prefix(ref_id) {
                        e["name"] = json!(format!("{id}{rest}"));
                    }
                }
            }
        }
        v
    }
}

fn add(id: &str, ty: &str, size: u64, extra: &[(&str, Value)]) -> Value {
    let mut args = json!({"qom-type": ty, "id": id, "size": size});
    for (k, v) in extra {
        args[*k] = v.clone();
    }
    json!({"execute": "object-add", "arguments": args})
}

/// One object of a mixer, and what it should look like.
struct Obj {
    id: String,
    ty: &'static str,
    size: u64,
    prealloc: bool,
    share: bool,
    dump: bool,
    /// For file backends: the mem-path given, and whether it names a file
    /// (else it is a directory, and the backend's file is unlinked).
    mem_path: Option<(PathBuf, bool)>,
    /// The racer deleted it: from then on every operation must say so.
    gone: bool,
}

impl Obj {
    fn path(&self) -> String {
        format!("/objects/{}", self.id)
    }

    /// The answer of a path-based command once the object is gone.
    fn path_gone(&self) -> Value {
        error(
            "DeviceNotFound",
            &format!("Device '{}' not found", self.path()),
        )
    }

    /// Checks `answer` against `ok`, or against `gone` (what the command
    /// says once the racer deleted the object). Returns whether it was ok.
    fn check(&mut self, what: &str, answer: Value, ok: &Value, gone: &Value) -> Result<bool> {
        if !self.gone && answer == *ok {
            return Ok(true);
        }
        if answer == *gone {
            self.gone = true;
            return Ok(false);
        }
        if self.gone {
            bail!(
                "{what} {}: expected {gone} (the object was deleted), got {}",
                self.id,
                clip(&answer.to_string())
            );
        }
        bail!(
            "{what} {}: expected {ok} or {gone}, got {}",
            self.id,
            clip(&answer.to_string())
        )
    }

    /// `query-memdev`'s entry for it.
    fn memdev(&self) -> Value {
        json!({
            "id": self.id, "size": self.size, "merge": true, "dump": self.dump,
            "prealloc": self.prealloc, "share": self.share, "reserve": true,
            "host-nodes": [], "policy": "default",
        })
    }
}

/// A mixer: cycles of object-add (a ram and a file backend), qom-get,
/// qom-set, qom-list, qom-list-properties, query-memdev and object-del on
/// its own ids, checking every answer.
pub fn mixer(shared: &Shared, n: usize, seed: u64) -> Result<()> {
    let mut rng = XorShift::new(seed);
    let mut q = Qmp::ready(&shared.socket)?;
    let mut cycle = 0u64;
    while !shared.stopped() {
        let objs = mixer_cycle(shared, &mut q, &mut rng, n, cycle)
            .with_context(|| format!("mixer {n}, cycle {cycle}"))?;
        for o in &objs {
            if let Some((p, true)) = &o.mem_path {
                // QEMU keeps a file it was given by name; the soak does not.
                match std::fs::remove_file(p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", p.display()))
                    }
                    _ => {}
                }
            }
            lock(&shared.ids).remove(&o.id);
        }
        shared.cycles.fetch_add(1, Ordering::Relaxed);
        cycle += 1;
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn mixer_cycle(
    shared: &Shared,
    q: &mut Qmp,
    rng: &mut XorShift,
    n: usize,
    cycle: u64,
) -> Result<Vec<Obj>> {
    let mib = 1u64 << 20;
    let ram = Obj {
        id: format!("m{n}-{cycle}-ram"),
        ty: "memory-backend-ram",
        size: (1 + rng.below(4)) * mib,
        prealloc: rng.below(4) == 0,
        share: false,
        dump: true,
        mem_path: None,
        gone: false,
    };
    let named = rng.coin();
    let file_id = format!("m{n}-{cycle}-file");
    let file = Obj {
        mem_path: Some(if named {
            (shared.mem_dir.join(&file_id), true)
        } else {
            (shared.mem_dir.clone(), false)
        }),
        id: file_id,
        ty: "memory-backend-file",
        size: (1 + rng.below(4)) * mib,
        prealloc: rng.below(4) == 0,
        share: rng.coin(),
        dump: true,
        gone: false,
    };
    let mut objs = vec![ram, file];
    {
        let mut ids = lock(&shared.ids);
        for o in &objs {
            ids.insert(o.id.clone());
        }
    }
    let ok = json!({"return": {}});
    for o in &objs {
        let mut extra = vec![("prealloc", json!(o.prealloc))];
        if let Some((p, _)) = &o.mem_path {
            extra.push(("mem-path", json!(p)));
            extra.push(("share", json!(o.share)));
        }
        q.expect(add(&o.id, o.ty, o.size, &extra), ok.clone())?;
        if let Some((p, true)) = &o.mem_path {
            if !p.exists() {
                bail!("object-add {}: {} does not exist", o.id, p.display());
            }
        }
    }
    for o in objs.iter_mut() {
        let gone = o.path_gone();
        let get = |prop: &str, o: &Obj| json!({"execute": "qom-get", "arguments": {"path": o.path(), "property": prop}});
        let a = q.cmd(get("size", o))?;
        o.check("qom-get size", a, &json!({"return": o.size}), &gone)?;
        let a = q.cmd(get("prealloc", o))?;
        o.check("qom-get prealloc", a, &json!({"return": o.prealloc}), &gone)?;
        if let Some((p, _)) = &o.mem_path {
            let a = q.cmd(get("mem-path", o))?;
            let want = json!({"return": p.to_string_lossy()});
            o.check("qom-get mem-path", a, &want, &gone)?;
        }
        let set = |prop: &str, value: Value, o: &Obj| json!({"execute": "qom-set", "arguments": {"path": o.path(), "property": prop, "value": value}});
        let a = q.cmd(set("dump", json!(false), o))?;
        if o.check("qom-set dump", a, &ok, &gone)? {
            o.dump = false;
        }
        let a = q.cmd(get("dump", o))?;
        o.check("qom-get dump", a, &json!({"return": o.dump}), &gone)?;
        // QEMU's text for size, with its trailing space.
        let locked = error(
            "GenericError",
            &format!("cannot change property size of {} ", o.ty),
        );
        let a = q.cmd(set("size", json!(o.size * 2), o))?;
        o.check("qom-set size", a, &locked, &gone)?;
        let a = q.cmd(json!({"execute": "qom-list", "arguments": {"path": o.path()}}))?;
        let listing = shared.reference.listing(&o.id, o.ty);
        o.check("qom-list", a, &json!({ "return": listing }), &gone)?;
        let props = if o.mem_path.is_some() {
            &shared.reference.props_file
        } else {
            &shared.reference.props_ram
        };
        q.expect(
            json!({"execute": "qom-list-properties", "arguments": {"typename": o.ty}}),
            json!({ "return": props }),
        )?;
    }

    // The lists hold the other clients' objects too: look at ours only.
    let memdevs = q.cmd(json!({"execute": "query-memdev"}))?;
    let memdevs = memdevs["return"]
        .as_array()
        .with_context(|| format!("query-memdev: {}", clip(&memdevs.to_string())))?
        .clone();
    let children = q.cmd(json!({"execute": "qom-list", "arguments": {"path": "/objects"}}))?;
    let children = children["return"]
        .as_array()
        .with_context(|| format!("qom-list /objects: {}", clip(&children.to_string())))?
        .clone();
    for o in objs.iter_mut() {
        let entry = memdevs.iter().find(|m| m["id"] == json!(o.id));
        let child = children.iter().find(|c| c["name"] == json!(o.id));
        match (entry, child) {
            (Some(m), _) if o.gone => {
                bail!("query-memdev lists {} after it was deleted: {m}", o.id)
            }
            (_, Some(c)) if o.gone => {
                bail!("qom-list /objects lists {} after it was deleted: {c}", o.id)
            }
            (Some(m), _) if *m != o.memdev() => {
                bail!(
                    "query-memdev: expected {} for {}, got {m}",
                    o.memdev(),
                    o.id
                )
            }
            (_, Some(c)) if *c != json!({"name": o.id, "type": format!("child<{}>", o.ty)}) => {
                bail!("qom-list /objects: unexpected entry {c}")
            }
            // The racer deleted it between the two queries.
            (Some(_), None) | (None, None) => o.gone = true,
            // Deleted before query-memdev but listed after it: resurrected.
            (None, Some(c)) => bail!(
                "qom-list /objects lists {} that query-memdev did not: {c}",
                o.id
            ),
            (Some(_), Some(_)) => {}
        }
    }

    for o in objs.iter_mut() {
        if let Some((p, true)) = &o.mem_path {
            if !o.gone && !p.exists() {
                bail!("{}: its file {} is gone while it lives", o.id, p.display());
            }
        }
        let a = q.cmd(json!({"execute": "object-del", "arguments": {"id": o.id}}))?;
        let gone = error("GenericError", &format!("object '{}' not found", o.id));
        o.check("object-del", a, &ok, &gone)?;
        if o.gone {
            shared.raced_ops.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(objs)
}

/// The racer: deletes the mixers' ids, just made or about to be, and some
/// that never exist; success, QEMU's "not found" and (for an object still
/// being created) "in use" are the only answers.
pub fn racer(shared: &Shared, seed: u64) -> Result<()> {
    let mut rng = XorShift::new(seed);
    let mut q = Qmp::ready(&shared.socket)?;
    let mut nosuch = 0u64;
    while !shared.stopped() {
        let pick = {
            let ids = lock(&shared.ids);
            let n = ids.len() as u64;
            if n == 0 || rng.below(10) == 0 {
                None
            } else {
                ids.iter().nth(rng.below(n) as usize).cloned()
            }
        };
        let id = pick.unwrap_or_else(|| {
            nosuch += 1;
            format!("nosuch-{nosuch}")
        });
        let a = q.cmd(json!({"execute": "object-del", "arguments": {"id": id}}))?;
        if a == json!({"return": {}}) {
            if id.starts_with("nosuch-") {
                bail!("object-del {id} succeeded on an id nobody made");
            }
            shared.racer_hits.fetch_add(1, Ordering::Relaxed);
        } else if a == error("GenericError", &format!("object '{id}' not found")) {
            shared.racer_misses.fetch_add(1, Ordering::Relaxed);
        } else if a
            == error(
                "GenericError",
                &format!("object '{id}' is in use, can not be deleted"),
            )
        {
            // ObjectTree::object_add: an object being created (prealloc
            // takes a while) is visible under /objects but in use.
            shared.racer_in_use.fetch_add(1, Ordering::Relaxed);
        } else {
            bail!("racer: object-del {id}: got {}", clip(&a.to_string()));
        }
        // Leave the mixers time to use their objects most of the time.
        std::thread::sleep(Duration::from_millis(2 + rng.below(20)));
    }
    Ok(())
}
