//! Serving QMP over the objects the command line created.

use crate::args::QmpTarget;
use qom::ObjectTree;
use qom_qmp::{
    register_qom_commands, Commands, RegisterError, Server, ServerConfig, ServerError, ServerHandle,
};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why `qom` could not serve QMP.
#[derive(Debug)]
pub enum ServeError {
    /// Building the command table failed (a programming error: two
    /// commands of one name).
    Commands(RegisterError),
    /// The stdio transport failed.
    Stdio(std::io::Error),
    /// The Unix socket could not be set up or served.
    Unix {
        /// The path given with `-qmp unix:PATH`.
        path: String,
        /// What went wrong.
        source: ServerError,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Commands(e) => e.fmt(f),
            ServeError::Stdio(e) => write!(f, "-qmp stdio: {e}"),
            ServeError::Unix { path, source } => write!(f, "-qmp unix:{path}: {source}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Commands(e) => Some(e),
            ServeError::Stdio(e) => Some(e),
            ServeError::Unix { source, .. } => Some(source),
        }
    }
}

impl From<RegisterError> for ServeError {
    fn from(e: RegisterError) -> Self {
        ServeError::Commands(e)
    }
}

/// Where `device_del` sends `DEVICE_DELETED`: the server while it serves
/// (emptied afterwards, as the server's command table holds this).
type EventSink = Arc<Mutex<Option<ServerHandle>>>;

/// The command table of the `qom` binary: the protocol built-ins, the QOM
/// commands, `query-memdev` from the memory backends, and the device
/// commands of qom-devices.
pub fn commands(tree: &Arc<ObjectTree>, events: EventSink) -> Result<Arc<Commands>, RegisterError> {
    let commands = Commands::new();
    register_qom_commands(&commands, tree.clone())?;
    register_device_commands(&commands, tree, events)?;
    let t = tree.clone();
    commands.register("query-memdev", move |args: &Map<String, Value>| {
        let _: NoArgs = qom_qmp::qom_commands::decode(args)?;
        serde_json::to_value(memory_backend::query_memdev(&t))
            .map_err(|e| qom::Error::generic(e.to_string()))
    })?;
    commands.describe("query-memdev", memdev_schema())?;
    let commands = Arc::new(commands);
    qom_qmp::schema::register_query_qmp_schema(&commands)?;
    Ok(commands)
}

/// `query-memdev`'s answer, a list of QEMU's `Memdev`.
fn memdev_schema() -> qom_qmp::schema::CommandSchema {
    use qom::EnumType;
    use qom_qmp::schema::{CommandSchema, ObjectType, SchemaType};
    let memdev = ObjectType::empty()
        .optional("id", SchemaType::Str)
        .required("size", SchemaType::Int)
        .required("merge", SchemaType::Bool)
        .required("dump", SchemaType::Bool)
        .required("prealloc", SchemaType::Bool)
        .required("share", SchemaType::Bool)
        .optional("reserve", SchemaType::Bool)
        .required("host-nodes", SchemaType::array(SchemaType::Int))
        .required(
            "policy",
            SchemaType::enumeration(memory_backend::HostMemPolicy::VALUES),
        );
    CommandSchema::new(ObjectType::empty(), SchemaType::array(memdev.into()))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TypenameArgs {
    typename: String,
}

fn to_json<T: serde::Serialize>(v: T) -> qom::Result<Value> {
    serde_json::to_value(v).map_err(|e| qom::Error::generic(e.to_string()))
}

/// `device_add`, `device_del`, `device-list-properties` and
/// `query-memory-devices`, with their schemas and `DEVICE_DELETED`.
fn register_device_commands(
    commands: &Commands,
    tree: &Arc<ObjectTree>,
    events: EventSink,
) -> Result<(), RegisterError> {
    use qom_qmp::schema::{CommandSchema, ObjectType, SchemaType};
    let t = tree.clone();
    commands.register("device_add", move |args: &Map<String, Value>| {
        let spec = qom_devices::DeviceSpec::from_json(args);
        qom_devices::device_add(&t, &spec, true)?;
        Ok(Value::Object(Map::new()))
    })?;
    let t = tree.clone();
    commands.register("device_del", move |args: &Map<String, Value>| {
        let a: IdArgs = qom_qmp::qom_commands::decode(args)?;
        let deleted = qom_devices::device_del(&t, &a.id)?;
        let server = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(server) = server {
            server.emit_event("DEVICE_DELETED", Some(to_json(&deleted)?));
        }
        Ok(Value::Object(Map::new()))
    })?;
    let t = tree.clone();
    commands.register(
        "device-list-properties",
        move |args: &Map<String, Value>| {
            let a: TypenameArgs = qom_qmp::qom_commands::decode(args)?;
            to_json(qom_devices::device_list_properties(t.types(), &a.typename)?)
        },
    )?;
    let t = tree.clone();
    commands.register("query-memory-devices", move |args: &Map<String, Value>| {
        let _: NoArgs = qom_qmp::qom_commands::decode(args)?;
        to_json(qom_devices::query_memory_devices(&t))
    })?;
    use SchemaType::{Any, Bool, Int, Str};
    let empty = ObjectType::empty;
    commands.describe(
        "device_add",
        CommandSchema::new(
            empty()
                .required("driver", Str)
                .optional("bus", Str)
                .optional("id", Str),
            empty().into(),
        ),
    )?;
    commands.describe(
        "device_del",
        CommandSchema::new(empty().required("id", Str), empty().into()),
    )?;
    let property_info = empty()
        .required("name", Str)
        .required("type", Str)
        .optional("description", Str)
        .optional("default-value", Any);
    commands.describe(
        "device-list-properties",
        CommandSchema::new(
            empty().required("typename", Str),
            SchemaType::array(property_info.into()),
        ),
    )?;
    let dimm = empty()
        .optional("id", Str)
        .required("addr", Int)
        .required("size", Int)
        .required("slot", Int)
        .required("node", Int)
        .required("memdev", Str)
        .required("hotplugged", Bool)
        .required("hotpluggable", Bool);
    let wrap = |data: ObjectType| empty().required("data", data.into());
    let pmem = empty()
        .optional("id", Str)
        .required("memaddr", Int)
        .required("size", Int)
        .required("memdev", Str);
    let virtio_mem = empty()
        .optional("id", Str)
        .required("memaddr", Int)
        .required("requested-size", Int)
        .required("size", Int)
        .required("max-size", Int)
        .required("block-size", Int)
        .required("node", Int)
        .required("memdev", Str);
    let sgx = empty()
        .optional("id", Str)
        .required("memaddr", Int)
        .required("size", Int)
        .required("node", Int)
        .required("memdev", Str);
    let balloon = empty()
        .optional("id", Str)
        .optional("memaddr", Int)
        .required("max-size", Int)
        .optional("memdev", Str);
    // QEMU's union has every kind of memory device; only DIMMs exist here.
    let kinds = [
        "dimm",
        "nvdimm",
        "virtio-pmem",
        "virtio-mem",
        "sgx-epc",
        "hv-balloon",
    ];
    let mut info = empty().required("type", SchemaType::enumeration(&kinds));
    info.tag = Some("type".into());
    info.variants = vec![
        ("dimm".into(), wrap(dimm.clone())),
        ("nvdimm".into(), wrap(dimm)),
        ("virtio-pmem".into(), wrap(pmem)),
        ("virtio-mem".into(), wrap(virtio_mem)),
        ("sgx-epc".into(), wrap(sgx)),
        ("hv-balloon".into(), wrap(balloon)),
    ];
    commands.describe(
        "query-memory-devices",
        CommandSchema::new(empty(), SchemaType::array(info.into())),
    )?;
    commands.declare_event(
        "DEVICE_DELETED",
        empty().optional("device", Str).required("path", Str),
    );
    Ok(())
}

/// How long a socket client's thread polls for the next request after an
/// answer ([`ServerConfig::poll_spin`], off for embedders): 50 µs, which
/// saves a wake-up per round trip for a client with one request in flight
/// and costs at most that much CPU per answer. `QOM_POLL_SPIN_US` sets
/// another value (0 turns it off); `cargo xtask bench qmp --poll-spin`
/// compares the two.
fn poll_spin() -> Duration {
    const DEFAULT_US: u64 = 50;
    let us = std::env::var("QOM_POLL_SPIN_US")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_US);
    Duration::from_micros(us)
}

/// Serves until `quit`, a stop through the server's handle, or the end of
/// input on stdio. `attach` receives the handle before anything is served;
/// when it returns false (a signal came first), nothing is served.
pub fn serve(
    tree: &Arc<ObjectTree>,
    target: &QmpTarget,
    attach: impl FnOnce(ServerHandle) -> bool,
) -> Result<(), ServeError> {
    let config = ServerConfig {
        poll_spin: poll_spin(),
        ..ServerConfig::default()
    };
    let events = EventSink::default();
    let server = Server::with_config(commands(tree, events.clone())?, config);
    *events.lock().unwrap_or_else(|e| e.into_inner()) = Some(server.handle());
    let served = if attach(server.handle()) {
        serve_on(&server, target)
    } else {
        Ok(())
    };
    events.lock().unwrap_or_else(|e| e.into_inner()).take();
    served
}

fn serve_on(server: &Server, target: &QmpTarget) -> Result<(), ServeError> {
    match target {
        QmpTarget::Stdio => server.serve_stdio().map(drop).map_err(ServeError::Stdio),
        QmpTarget::Unix(path) => {
            server
                .serve_unix(path)
                .map(drop)
                .map_err(|source| ServeError::Unix {
                    path: path.clone(),
                    source,
                })
        }
    }
}
