//! Serving QMP over the objects the command line created.

use crate::args::QmpTarget;
use qom::ObjectTree;
use qom_qmp::{
    register_qom_commands, Commands, RegisterError, Server, ServerConfig, ServerError, ServerHandle,
};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
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

/// The command table of the `qom` binary: the protocol built-ins, the QOM
/// commands, and `query-memdev` from the memory backends.
pub fn commands(tree: &Arc<ObjectTree>) -> Result<Arc<Commands>, RegisterError> {
    let commands = Commands::new();
    register_qom_commands(&commands, tree.clone())?;
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
    let server = Server::with_config(commands(tree)?, config);
    if !attach(server.handle()) {
        return Ok(());
    }
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
