//! The `thread-context` type: a parked thread whose CPU affinity new
//! threads (a memory backend's preallocation threads) take over.
//!
//! QEMU's `thread-context` creates a thread at `complete` and spawns the
//! preallocation threads from inside it, so they inherit its affinity. Here
//! the context thread exists too (its id is `thread-id`, and `cpu-affinity`
//! reads its real affinity back), and preallocation threads copy its
//! current affinity with `sched_setaffinity` when they start: the same
//! outcome without a thread hop.
//!
//! | property | QOM type | access | meaning |
//! |---|---|---|---|
//! | `cpu-affinity` | `int` (a list of CPU numbers) | read/write | the CPUs threads may run on |
//! | `node-affinity` | `int` (a list of NUMA nodes) | write-only | the CPUs of these nodes (`/sys/devices/system/node/nodeN/cpulist`) |
//! | `thread-id` | `int` | read-only | the context thread's id, -1 before creation |
//!
//! Both affinities may be changed after creation; the change applies to
//! the context thread and to threads started afterwards.

use std::sync::mpsc;
use std::thread::JoinHandle;

use qom::{Error, Object, ObjectRef, ObjectType, Result, TypeRegistry};
use rustix::process::Pid;
use rustix::thread::CpuSet;

use crate::host::strerror;

/// The QOM type name.
pub const TYPE_THREAD_CONTEXT: &str = <ThreadContextState as qom::StaticType>::TYPE_NAME;

/// Which property gave the affinity requested before creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Cpus,
    Nodes,
}

/// The parked context thread; stopped and joined on drop.
#[derive(Debug)]
struct ContextThread {
    tid: Pid,
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl ContextThread {
    fn spawn(name: String) -> Result<ContextThread> {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _ = tid_tx.send(rustix::thread::gettid());
                // Parked until the sender goes away.
                let _ = stop_rx.recv();
            })
            .map_err(|e| Error::generic(format!("cannot create the context thread: {e}")))?;
        let mut thread = ContextThread {
            tid: Pid::INIT,
            stop: Some(stop_tx),
            handle: Some(handle),
        };
        thread.tid = tid_rx
            .recv()
            .map_err(|_| Error::generic("the context thread ended before it started"))?;
        Ok(thread)
    }
}

impl Drop for ContextThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// QEMU declares both affinities as "int" although they take lists.
#[derive(Debug, Default, qom::Object)]
#[qom(
    name = "thread-context",
    interfaces(qom::UserCreatable),
    property(name = "cpu-affinity", ty = Vec<u16>, qom_type = "int",
             get = get_cpu_affinity, set = set_cpu_affinity),
    property(name = "node-affinity", ty = Vec<u16>, qom_type = "int", set = set_node_affinity),
    property(name = "thread-id", ty = i64, qom_type = "int", get = get_thread_id)
)]
struct ThreadContextState {
    /// Requested before creation; applied by `complete`.
    init: Option<(Source, CpuSet)>,
    thread: Option<ContextThread>,
}

type ThreadContextRef<'a> = ObjectRef<'a, ThreadContextState>;

/// Parses a Linux CPU list such as `0-3,8,10-11` (the format of
/// `/sys/devices/system/node/nodeN/cpulist`). Malformed parts are skipped.
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|x| x.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => cpus.push(a),
            (Some(Ok(a)), Some(Ok(b))) if b >= a && b < CpuSet::MAX_CPU => cpus.extend(a..=b),
            _ => {}
        }
    }
    cpus
}

/// The CPUs of NUMA node `node`, from sysfs; empty when the node does not
/// exist (QEMU ignores such nodes too).
pub fn node_cpus(node: u16) -> Vec<usize> {
    std::fs::read_to_string(format!("/sys/devices/system/node/node{node}/cpulist"))
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default()
}

/// The CPU numbers in a set, ascending.
pub fn cpu_list(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}

fn cpus_to_set(cpus: &[usize]) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for &c in cpus {
        if c >= CpuSet::MAX_CPU {
            return Err(Error::generic(format!(
                "Invalid CPU number: {c} (this host supports CPUs 0 to {})",
                CpuSet::MAX_CPU - 1
            )));
        }
        set.set(c);
    }
    Ok(set)
}

/// QEMU's "Setting CPU affinity failed: <strerror>", keeping the errno as
/// the cause.
fn affinity_error(verb: &str, e: rustix::io::Errno) -> Error {
    Error::caused_by(format!("{verb} CPU affinity failed: {}", strerror(e)), e)
}

fn apply(obj: &mut ThreadContextRef<'_>, source: Source, set: CpuSet) -> Result<()> {
    let mut s = obj.state();
    if let Some(t) = &s.thread {
        return rustix::thread::sched_setaffinity(Some(t.tid), &set)
            .map_err(|e| affinity_error("Setting", e));
    }
    if matches!(s.init, Some((old, _)) if old != source) {
        return Err(Error::generic("Mixing CPU and node affinity not supported"));
    }
    s.init = Some((source, set));
    Ok(())
}

fn set_cpu_affinity(obj: &mut ThreadContextRef<'_>, cpus: Vec<u16>) -> Result<()> {
    if cpus.is_empty() {
        return Err(Error::generic("CPU list is empty"));
    }
    let cpus: Vec<usize> = cpus.into_iter().map(usize::from).collect();
    apply(obj, Source::Cpus, cpus_to_set(&cpus)?)
}

fn set_node_affinity(obj: &mut ThreadContextRef<'_>, nodes: Vec<u16>) -> Result<()> {
    if nodes.is_empty() {
        return Err(Error::generic("Node list is empty"));
    }
    let cpus: Vec<usize> = nodes.into_iter().flat_map(node_cpus).collect();
    if cpus.is_empty() {
        return Err(Error::generic("The nodes select no CPUs"));
    }
    apply(obj, Source::Nodes, cpus_to_set(&cpus)?)
}

fn get_cpu_affinity(obj: &mut ThreadContextRef<'_>) -> Result<Vec<u16>> {
    let set = affinity(obj.object())?;
    Ok(cpu_list(&set)
        .into_iter()
        .filter_map(|c| u16::try_from(c).ok())
        .collect())
}

fn get_thread_id(obj: &mut ThreadContextRef<'_>) -> Result<i64> {
    Ok(thread_id(obj.object()).map_or(-1, i64::from))
}

impl qom::ObjectImpl for ThreadContextState {}

impl qom::UserCreatableImpl for ThreadContextState {
    fn complete(obj: &mut ThreadContextRef<'_>) -> Result<()> {
        let id = obj.name().unwrap_or_default();
        // Linux keeps 15 bytes of a thread name.
        let mut name = format!("TC {id}");
        while name.len() > 15 {
            name.pop();
        }
        let thread = ContextThread::spawn(name)?;
        let mut s = obj.state();
        if let Some((_, set)) = s.init.take() {
            rustix::thread::sched_setaffinity(Some(thread.tid), &set)
                .map_err(|e| affinity_error("Setting", e))?;
        }
        s.thread = Some(thread);
        Ok(())
    }
}

/// The affinity threads started in this context get: the context thread's
/// current affinity once the object is created, the requested one before.
/// Fails for objects that are not a `thread-context`, and before creation
/// when no affinity was requested ("Object not initialized yet", as QEMU).
pub fn affinity(obj: &Object) -> Result<CpuSet> {
    let s = obj
        .try_state::<ThreadContextState>()
        .ok_or_else(|| Error::generic(format!("'{}' is not a thread-context", obj.type_name())))?;
    match (&s.thread, &s.init) {
        (Some(t), _) => {
            rustix::thread::sched_getaffinity(Some(t.tid)).map_err(|e| affinity_error("Getting", e))
        }
        (None, Some((_, set))) => Ok(*set),
        (None, None) => Err(Error::generic("Object not initialized yet")),
    }
}

/// The id of the context thread (`thread-id`), once created.
pub fn thread_id(obj: &Object) -> Option<i32> {
    obj.try_state::<ThreadContextState>()?
        .thread
        .as_ref()
        .map(|t| t.tid.as_raw_nonzero().get())
}

/// Registers `thread-context` (user-creatable, parent `object`). Does
/// nothing when the type is already registered.
pub fn register(types: &TypeRegistry) -> Result<()> {
    types.register_once(ThreadContextState::type_info())
}

#[cfg(test)]
mod tests {
    use qom::{ObjectTree, TypeRegistry};
    use serde_json::json;

    /// What introspection shows does not depend on how the type is
    /// declared: recorded from the hand-written registration the derive
    /// replaced.
    #[test]
    fn introspection_is_unchanged() {
        let types = TypeRegistry::with_builtins();
        super::register(&types).unwrap();
        let props = serde_json::to_value(types.list_properties("thread-context").unwrap()).unwrap();
        assert_eq!(
            props,
            json!([
                {"name": "type", "type": "string"},
                {"name": "cpu-affinity", "type": "int"},
                {"name": "node-affinity", "type": "int"},
                {"name": "thread-id", "type": "int"},
            ])
        );
        let help = types.type_help("thread-context").unwrap();
        let tree = ObjectTree::new(types).unwrap();
        tree.object_add_str("thread-context,id=tc").unwrap();
        let listed = serde_json::to_value(tree.qom_list("/objects/tc").unwrap()).unwrap();
        assert_eq!(
            (help, listed),
            (
                "thread-context options:\n  cpu-affinity=<int>\n  node-affinity=<int>\n".to_owned(),
                json!([
                    {"name": "type", "type": "string"},
                    {"name": "cpu-affinity", "type": "int"},
                    {"name": "node-affinity", "type": "int"},
                    {"name": "thread-id", "type": "int"},
                ])
            )
        );
        let e = tree.qom_get("tc", "node-affinity").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Property 'thread-context.node-affinity' is not readable"
        );
        let e = tree.qom_set("tc", "thread-id", &json!(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Property 'thread-context.thread-id' is not writable"
        );
        assert!(tree.qom_get("tc", "thread-id").unwrap().as_i64().unwrap() > 0);
        tree.object_del("tc").unwrap();
    }
}
