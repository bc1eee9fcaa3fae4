//! The command table.
//!
//! [`Commands::new`] starts with the four commands that belong to the
//! protocol itself: `qmp_capabilities`, `query-version`, `query-commands`
//! and `quit`. Anything else is registered by other crates with
//! [`Commands::register`]: a name and a handler that receives the request's
//! `arguments` object and returns the `return` value or a [`qom::Error`],
//! whose class and text become the QMP error.
//!
//! Handlers validate their own arguments. Decoding them into a
//! `#[serde(deny_unknown_fields)]` struct with
//! [`qom_commands::decode`](crate::qom_commands::decode) gives QEMU's
//! messages (`Parameter 'path' is missing`, `Parameter 'x' is unexpected`,
//! `Invalid parameter type for 'path', expected: string`), as the QOM
//! commands do.

use crate::schema::{self, CommandSchema, ObjectType};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// A command implementation: arguments in, `return` value or error out.
pub type Handler = Arc<dyn Fn(&Map<String, Value>) -> Result<Value, qom::Error> + Send + Sync>;

/// The protocol's own commands, implemented by the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Capabilities,
    QueryVersion,
    QueryCommands,
    Quit,
}

/// One entry of the table.
#[derive(Clone)]
pub(crate) enum Entry {
    Builtin(Builtin),
    Handler(Handler),
}

/// Why a command could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// A command of this name is already in the table.
    Duplicate(String),
    /// The name is empty or contains characters a QMP command name cannot have.
    InvalidName(String),
    /// A schema was given for a command that is not in the table.
    NotFound(String),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Duplicate(n) => write!(f, "command '{n}' is already registered"),
            RegisterError::InvalidName(n) => write!(f, "'{n}' is not a valid command name"),
            RegisterError::NotFound(n) => write!(f, "command '{n}' is not registered"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Computes a command's schema when `query-qmp-schema` is asked, for
/// commands whose arguments depend on the registry (`object-add`).
pub type SchemaFn = Arc<dyn Fn() -> Result<CommandSchema, qom::Error> + Send + Sync>;

/// A declared schema: fixed, or computed at call time.
#[derive(Clone)]
enum SchemaSource {
    Fixed(CommandSchema),
    Computed(SchemaFn),
}

/// The set of commands a server offers. Shared between connections
/// (wrap it in an `Arc`); commands may be added at any time.
pub struct Commands {
    table: RwLock<BTreeMap<String, Entry>>,
    /// What `query-qmp-schema` reports per command; commands missing here
    /// are reported as [`CommandSchema::undeclared`].
    schemas: RwLock<BTreeMap<String, SchemaSource>>,
    /// The events the server may send, with their `data`.
    events: RwLock<BTreeMap<String, ObjectType>>,
}

impl fmt::Debug for Commands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commands")
            .field("names", &self.names())
            .finish()
    }
}

impl Default for Commands {
    fn default() -> Self {
        Self::new()
    }
}

impl Commands {
    /// A table holding the built-in commands `qmp_capabilities`,
    /// `query-version`, `query-commands` and `quit`.
    pub fn new() -> Self {
        let mut table = BTreeMap::new();
        for (name, b) in [
            ("qmp_capabilities", Builtin::Capabilities),
            ("query-version", Builtin::QueryVersion),
            ("query-commands", Builtin::QueryCommands),
            ("quit", Builtin::Quit),
        ] {
            table.insert(name.to_owned(), Entry::Builtin(b));
        }
        let mut events = BTreeMap::new();
        // The session sends it for `quit`.
        events.insert("SHUTDOWN".to_owned(), schema::shutdown_event());
        Commands {
            table: RwLock::new(table),
            schemas: RwLock::new(BTreeMap::new()),
            events: RwLock::new(events),
        }
    }

    /// Declares what a registered command takes and answers, for
    /// `query-qmp-schema`.
    pub fn describe(&self, name: &str, schema: CommandSchema) -> Result<(), RegisterError> {
        self.set_schema(name, SchemaSource::Fixed(schema))
    }

    /// Like [`describe`](Self::describe), with a schema computed each time
    /// `query-qmp-schema` is asked.
    pub fn describe_with<F>(&self, name: &str, schema: F) -> Result<(), RegisterError>
    where
        F: Fn() -> Result<CommandSchema, qom::Error> + Send + Sync + 'static,
    {
        self.set_schema(name, SchemaSource::Computed(Arc::new(schema)))
    }

    fn set_schema(&self, name: &str, source: SchemaSource) -> Result<(), RegisterError> {
        if !self.contains(name) {
            return Err(RegisterError::NotFound(name.to_owned()));
        }
        self.schemas
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), source);
        Ok(())
    }

    /// Declares an event the server may send, with the members of its
    /// `data`; a later declaration of the same name replaces the earlier.
    pub fn declare_event(&self, name: &str, data: ObjectType) {
        self.events
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), data);
    }

    /// The declared events, sorted by name.
    pub fn events(&self) -> Vec<(String, ObjectType)> {
        let events = self.events.read().unwrap_or_else(|e| e.into_inner());
        events.iter().map(|(n, d)| (n.clone(), d.clone())).collect()
    }

    /// The schema of a command: the built-ins' own, the declared one, or
    /// [`CommandSchema::undeclared`].
    pub fn schema(&self, name: &str) -> Result<CommandSchema, qom::Error> {
        let source = self
            .schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        match source {
            Some(SchemaSource::Fixed(s)) => Ok(s),
            // Called without the lock held: the closure may take its own.
            Some(SchemaSource::Computed(f)) => f(),
            None => Ok(schema::builtin_schema(name).unwrap_or_else(CommandSchema::undeclared)),
        }
    }

    /// Add a command. Names are what QMP clients put in `execute`: ASCII
    /// letters, digits, `-` and `_`. A name already present (including the
    /// built-ins) is refused.
    ///
    /// ```
    /// use qom_qmp::Commands;
    /// use serde_json::json;
    ///
    /// let cmds = Commands::new();
    /// cmds.register("x-echo", |args| Ok(json!(args))).unwrap();
    /// assert!(cmds.contains("x-echo"));
    /// assert!(cmds.register("quit", |_| Ok(json!({}))).is_err());
    /// ```
    pub fn register<F>(&self, name: &str, handler: F) -> Result<(), RegisterError>
    where
        F: Fn(&Map<String, Value>) -> Result<Value, qom::Error> + Send + Sync + 'static,
    {
        self.register_handler(name, Arc::new(handler))
    }

    /// [`register`](Self::register) for a handler that is already an `Arc`.
    pub fn register_handler(&self, name: &str, handler: Handler) -> Result<(), RegisterError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(RegisterError::InvalidName(name.to_owned()));
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.contains_key(name) {
            return Err(RegisterError::Duplicate(name.to_owned()));
        }
        table.insert(name.to_owned(), Entry::Handler(handler));
        Ok(())
    }

    /// Whether a command of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// All command names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The handler registered under `name`, to run it from elsewhere or
    /// wrap it in another table (a filter in front of `object-add`, for
    /// instance). `None` for an unknown name and for the protocol's
    /// built-ins, which the session runs itself.
    ///
    /// ```
    /// use qom_qmp::Commands;
    /// use serde_json::{json, Map};
    ///
    /// let cmds = Commands::new();
    /// cmds.register("x-echo", |args| Ok(json!(args))).unwrap();
    /// let echo = cmds.handler("x-echo").unwrap();
    /// assert_eq!(echo(&Map::new()).unwrap(), json!({}));
    /// assert!(cmds.handler("quit").is_none());
    /// ```
    pub fn handler(&self, name: &str) -> Option<Handler> {
        match self.lookup(name)? {
            Entry::Handler(h) => Some(h),
            Entry::Builtin(_) => None,
        }
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<Entry> {
        self.read().get(name).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        // A panicking writer cannot leave the map inconsistent (insert is
        // the only mutation), so a poisoned lock is still usable.
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        let c = Commands::new();
        assert_eq!(
            c.names(),
            [
                "qmp_capabilities",
                "query-commands",
                "query-version",
                "quit"
            ]
        );
        assert_eq!(
            c.register("bad name", |_| Ok(Value::Null)),
            Err(RegisterError::InvalidName("bad name".into()))
        );
        c.register("x", |_| Ok(Value::Null)).unwrap();
        assert_eq!(
            c.register("x", |_| Ok(Value::Null)),
            Err(RegisterError::Duplicate("x".into()))
        );
    }
}
