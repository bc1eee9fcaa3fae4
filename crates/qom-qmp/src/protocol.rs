//! The QMP envelope: greeting, capabilities handshake, request validation,
//! replies and events, and the per-connection [`Session`] that ties them to
//! a [`Commands`] table.
//!
//! Everything here is transport-free: a session takes parsed input (from a
//! [`JsonStream`](crate::json_stream::JsonStream)) and produces the JSON
//! values to send back. [`to_wire`] renders a value the way QEMU writes it.

use crate::commands::{Builtin, Commands, Entry};
use crate::json_stream::Message;
use serde_json::{json, Map, Value};
use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The text QEMU puts in place of CommandNotFound errors before the handshake.
pub const EXPECTING_NEGOTIATION: &str =
    "Expecting capabilities negotiation with 'qmp_capabilities'";
/// The error text of a second `qmp_capabilities`.
pub const NEGOTIATION_COMPLETE: &str =
    "Capabilities negotiation is already complete, command ignored";

/// The version a server reports in its greeting and in `query-version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Micro (patch) version.
    pub micro: u64,
    /// Free-form package string; QEMU upstream reports `""`.
    pub package: String,
}

impl Default for VersionInfo {
    /// This crate's own version, with an empty package string.
    fn default() -> Self {
        let mut parts = env!("CARGO_PKG_VERSION")
            .split(['.', '-', '+'])
            .map(|p| p.parse::<u64>().unwrap_or(0));
        VersionInfo {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
            micro: parts.next().unwrap_or(0),
            package: String::new(),
        }
    }
}

impl VersionInfo {
    /// The `VersionInfo` JSON object of QEMU's schema.
    pub fn to_json(&self) -> Value {
        json!({
            "qemu": {"micro": self.micro, "minor": self.minor, "major": self.major},
            "package": self.package,
        })
    }
}

/// A QMP capability that a server can offer in its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Out-of-band execution (`exec-oob`). Offering it lets clients send
    /// `exec-oob`; since no command here runs out of band, such requests get
    /// QEMU's `The command X does not support OOB`.
    Oob,
}

impl Capability {
    /// All capabilities, in QEMU's order.
    pub const ALL: [Capability; 1] = [Capability::Oob];

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Oob => "oob",
        }
    }

    /// Parse a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What a session announces about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolConfig {
    /// The version in the greeting and in `query-version`.
    pub version: VersionInfo,
    /// The capabilities offered in the greeting. The default offers `oob`,
    /// as QEMU 10 does on `-qmp stdio` and on Unix sockets; an empty list
    /// gives `"capabilities": []`.
    pub capabilities: Vec<Capability>,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            version: VersionInfo::default(),
            capabilities: vec![Capability::Oob],
        }
    }
}

/// The greeting a server sends when a client connects:
/// `{"QMP": {"version": VERSION, "capabilities": [...]}}`.
pub fn greeting(version: &VersionInfo, capabilities: &[Capability]) -> Value {
    let caps: Vec<Value> = capabilities
        .iter()
        .map(|c| Value::from(c.as_str()))
        .collect();
    json!({"QMP": {"version": version.to_json(), "capabilities": caps}})
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command name (`execute`, or `exec-oob` when [`oob`](Self::oob)).
    pub command: String,
    /// The `arguments` object (empty when absent).
    pub arguments: Map<String, Value>,
    /// The `id` member, to be echoed in the reply.
    pub id: Option<Value>,
    /// Whether the command came as `exec-oob`.
    pub oob: bool,
}

/// A request that failed validation: what was wrong and the `id` to echo
/// (QEMU echoes the id even then, when the input was an object).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// The `id` member of the input, if any.
    pub id: Option<Value>,
    /// QEMU's text for the problem; the class is always GenericError.
    pub message: String,
}

impl RequestError {
    /// The problem as an error of the object model (a GenericError).
    pub fn to_error(&self) -> qom::Error {
        qom::Error::Generic(self.message.clone())
    }
}

/// Validate one input value as a QMP request, with QEMU's messages.
/// `allow_oob` says whether `exec-oob` is a known member (the client enabled
/// the `oob` capability). Members are checked in input order.
///
/// ```
/// use qom_qmp::protocol::parse_request;
/// use serde_json::json;
///
/// let e = parse_request(json!({"execute": "x", "id": 7, "bogus": 1}), false).unwrap_err();
/// assert_eq!(e.message, "QMP input member 'bogus' is unexpected");
/// assert_eq!(e.id, Some(json!(7)));
/// ```
pub fn parse_request(input: Value, allow_oob: bool) -> Result<Request, RequestError> {
    let Value::Object(mut dict) = input else {
        return Err(RequestError {
            id: None,
            message: "QMP input must be a JSON object".into(),
        });
    };
    let id = dict.get("id").cloned();
    let fail = |message: String| RequestError {
        id: id.clone(),
        message,
    };
    let mut exec_key: Option<&str> = None;
    for (key, value) in &dict {
        match key.as_str() {
            k @ ("execute" | "exec-oob") if k == "execute" || allow_oob => {
                if !value.is_string() {
                    return Err(fail(format!("QMP input member '{k}' must be a string")));
                }
                if let Some(prev) = exec_key {
                    return Err(fail(format!(
                        "QMP input member '{k}' clashes with '{prev}'"
                    )));
                }
                exec_key = Some(if k == "execute" {
                    "execute"
                } else {
                    "exec-oob"
                });
            }
            "arguments" => {
                if !value.is_object() {
                    return Err(fail(
                        "QMP input member 'arguments' must be an object".into(),
                    ));
                }
            }
            "id" => {}
            other => return Err(fail(format!("QMP input member '{other}' is unexpected"))),
        }
    }
    let Some(exec_key) = exec_key else {
        return Err(fail("QMP input lacks member 'execute'".into()));
    };
    let command = match dict.remove(exec_key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let arguments = match dict.remove("arguments") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(Request {
        command,
        arguments,
        id,
        oob: exec_key == "exec-oob",
    })
}

/// `{"return": VALUE, "id": ID}` (no `id` member when `id` is `None`).
pub fn return_response(value: Value, id: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("return".into(), value);
    if let Some(id) = id {
        m.insert("id".into(), id);
    }
    Value::Object(m)
}

/// `{"id": ID, "error": {"class": CLASS, "desc": TEXT}}` for an error.
pub fn error_response(error: &qom::Error, id: Option<Value>) -> Value {
    error_response_parts(error.class().as_str(), &error.to_string(), id)
}

/// [`error_response`] from a class name and a description.
pub fn error_response_parts(class: &str, desc: &str, id: Option<Value>) -> Value {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), id);
    }
    m.insert("error".into(), json!({"class": class, "desc": desc}));
    Value::Object(m)
}

/// An event message stamped with the current time:
/// `{"timestamp": {"seconds", "microseconds"}, "event": NAME, "data": DATA}`
/// (no `data` member when `data` is `None`).
pub fn event(name: &str, data: Option<Value>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert(
        "timestamp".into(),
        json!({"seconds": now.as_secs(), "microseconds": now.subsec_micros()}),
    );
    m.insert("event".into(), Value::from(name));
    if let Some(data) = data {
        m.insert("data".into(), data);
    }
    Value::Object(m)
}

/// The data of the `SHUTDOWN` event sent for `quit`.
pub fn shutdown_event_data() -> Value {
    json!({"guest": false, "reason": "host-qmp-quit"})
}

/// Render a value as QEMU writes QMP output: `": "` and `", "` separators,
/// every character outside printable ASCII as an uppercase `\uXXXX` escape,
/// followed by `"\r\n"`.
pub fn to_wire(value: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    write_wire(&mut out, value).expect("writing to a Vec cannot fail");
    // The formatter only ever emits ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// [`to_wire`] into any writer.
pub fn write_wire<W: io::Write>(out: &mut W, value: &Value) -> io::Result<()> {
    use serde::Serialize;
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, QemuFormatter);
    value.serialize(&mut ser).map_err(io::Error::other)?;
    out.write_all(b"\r\n")
}

struct QemuFormatter;

fn write_u16_escape<W: ?Sized + io::Write>(w: &mut W, unit: u32) -> io::Result<()> {
    write!(w, "\\u{unit:04X}")
}

impl serde_json::ser::Formatter for QemuFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut plain = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..'\u{7f}').contains(&c) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[plain..i])?;
            let cp = c as u32;
            if cp > 0xffff {
                let v = cp - 0x10000;
                write_u16_escape(w, 0xd800 + (v >> 10))?;
                write_u16_escape(w, 0xdc00 + (v & 0x3ff))?;
            } else {
                write_u16_escape(w, cp)?;
            }
            plain = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[plain..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape::*;
        match escape {
            Quote => w.write_all(b"\\\""),
            ReverseSolidus => w.write_all(b"\\\\"),
            Solidus => w.write_all(b"/"),
            Backspace => w.write_all(b"\\b"),
            FormFeed => w.write_all(b"\\f"),
            LineFeed => w.write_all(b"\\n"),
            CarriageReturn => w.write_all(b"\\r"),
            Tab => w.write_all(b"\\t"),
            AsciiControl(b) => write_u16_escape(w, u32::from(b)),
        }
    }
}

/// What the transport should do after sending a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep serving.
    Continue,
    /// `quit` succeeded: send the `SHUTDOWN` event (data
    /// [`shutdown_event_data`]) to every negotiated client, then the reply,
    /// then stop the whole server.
    Quit,
}

/// The answer to one input message.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The reply to send (`return` or `error`).
    pub response: Value,
    /// What to do next.
    pub action: Action,
}

/// The protocol state of one connection: handshake progress and enabled
/// capabilities.
///
/// ```
/// use qom_qmp::{protocol::{Action, Session, ProtocolConfig}, Commands};
/// use serde_json::json;
/// use std::sync::Arc;
///
/// let mut s = Session::new(Arc::new(Commands::new()), ProtocolConfig::default());
/// let r = s.handle(Ok(json!({"execute": "query-version", "id": 1})));
/// assert_eq!(r.response["error"]["class"], "CommandNotFound");
/// let r = s.handle(Ok(json!({"execute": "qmp_capabilities"})));
/// assert_eq!(r.response, json!({"return": {}}));
/// let r = s.handle(Ok(json!({"execute": "quit", "id": "q"})));
/// assert_eq!(r.action, Action::Quit);
/// assert_eq!(r.response, json!({"return": {}, "id": "q"}));
/// ```
#[derive(Debug)]
pub struct Session {
    commands: Arc<Commands>,
    config: ProtocolConfig,
    negotiated: bool,
    enabled: Vec<Capability>,
}

impl Session {
    /// A new connection, before the handshake.
    pub fn new(commands: Arc<Commands>, config: ProtocolConfig) -> Self {
        Session {
            commands,
            config,
            negotiated: false,
            enabled: Vec::new(),
        }
    }

    /// The greeting to send first.
    pub fn greeting(&self) -> Value {
        greeting(&self.config.version, &self.config.capabilities)
    }

    /// Whether `qmp_capabilities` has succeeded (only then are commands
    /// other than `qmp_capabilities` run, and events delivered).
    pub fn is_negotiated(&self) -> bool {
        self.negotiated
    }

    /// Whether the client enabled the capability in the handshake.
    pub fn has_capability(&self, cap: Capability) -> bool {
        self.enabled.contains(&cap)
    }

    /// Answer one input message (a parsed value or a parse error).
    pub fn handle(&mut self, message: Message) -> Reply {
        let value = match message {
            Ok(v) => v,
            Err(e) => return self.continue_with(error_response(&e.into(), None)),
        };
        let request = match parse_request(value, self.has_capability(Capability::Oob)) {
            Ok(r) => r,
            Err(e) => return self.continue_with(error_response(&e.to_error(), e.id)),
        };
        let was_negotiated = self.negotiated;
        let id = request.id.clone();
        match self.dispatch(request) {
            Ok((value, action)) => Reply {
                response: return_response(value, id),
                action,
            },
            Err(e) => {
                let response = if !was_negotiated && e.class() == qom::ErrorClass::CommandNotFound {
                    error_response_parts(e.class().as_str(), EXPECTING_NEGOTIATION, id)
                } else {
                    error_response(&e, id)
                };
                self.continue_with(response)
            }
        }
    }

    fn continue_with(&self, response: Value) -> Reply {
        Reply {
            response,
            action: Action::Continue,
        }
    }

    fn dispatch(&mut self, req: Request) -> Result<(Value, Action), qom::Error> {
        let not_found = || {
            qom::Error::CommandNotFound(format!("The command {} has not been found", req.command))
        };
        // Before the handshake only qmp_capabilities exists.
        if !self.negotiated && req.command != "qmp_capabilities" {
            return Err(not_found());
        }
        let entry = self.commands.lookup(&req.command).ok_or_else(not_found)?;
        if req.oob {
            return Err(qom::Error::Generic(format!(
                "The command {} does not support OOB",
                req.command
            )));
        }
        let args = &req.arguments;
        let done = |v: Value| Ok((v, Action::Continue));
        match entry {
            Entry::Handler(h) => done(h(args)?),
            Entry::Builtin(Builtin::Capabilities) => {
                if self.negotiated {
                    return Err(qom::Error::CommandNotFound(NEGOTIATION_COMPLETE.into()));
                }
                let wanted = capabilities_argument(args)?;
                let unavailable: Vec<&str> = wanted
                    .iter()
                    .filter(|c| !self.config.capabilities.contains(c))
                    .map(|c| c.as_str())
                    .collect();
                if !unavailable.is_empty() {
                    return Err(qom::Error::Generic(format!(
                        "Capability {} not available",
                        unavailable.join(", ")
                    )));
                }
                self.enabled = wanted;
                self.negotiated = true;
                done(json!({}))
            }
            Entry::Builtin(Builtin::QueryVersion) => {
                no_arguments(args)?;
                done(self.config.version.to_json())
            }
            Entry::Builtin(Builtin::QueryCommands) => {
                no_arguments(args)?;
                let list: Vec<Value> = self
                    .commands
                    .names()
                    .into_iter()
                    .map(|n| json!({"name": n}))
                    .collect();
                done(Value::Array(list))
            }
            Entry::Builtin(Builtin::Quit) => {
                no_arguments(args)?;
                Ok((json!({}), Action::Quit))
            }
        }
    }
}

/// Refuse any argument, naming the first one.
fn no_arguments(args: &Map<String, Value>) -> Result<(), qom::Error> {
    match args.keys().next() {
        Some(k) => Err(qom::Error::UnexpectedParameter(k.clone())),
        None => Ok(()),
    }
}

/// The optional `enable` list of `qmp_capabilities`, checked as QEMU's
/// visitor does (including its `'null'` for the name of a list element whose
/// value is not a capability).
fn capabilities_argument(args: &Map<String, Value>) -> Result<Vec<Capability>, qom::Error> {
    let mut caps = Vec::new();
    if let Some(enable) = args.get("enable") {
        let Value::Array(items) = enable else {
            return Err(qom::Error::InvalidParameterType {
                name: "enable".into(),
                expected: "array".into(),
            });
        };
        for (i, item) in items.iter().enumerate() {
            let Value::String(name) = item else {
                return Err(qom::Error::InvalidParameterType {
                    name: format!("enable[{i}]"),
                    expected: "string".into(),
                });
            };
            let cap = Capability::from_name(name).ok_or_else(|| qom::Error::ValueNotAccepted {
                name: "null".into(),
                value: name.clone(),
            })?;
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
    }
    if let Some(extra) = args.keys().find(|k| k.as_str() != "enable") {
        return Err(qom::Error::UnexpectedParameter(extra.clone()));
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_qemu() {
        let v = json!({"return": {"a": [1, "é\u{1f600}\u{7f}\u{1}\n/"], "b": {}}, "id": null});
        assert_eq!(
            to_wire(&v),
            "{\"return\": {\"a\": [1, \"\\u00E9\\uD83D\\uDE00\\u007F\\u0001\\n/\"], \"b\": {}}, \"id\": null}\r\n"
        );
    }

    #[test]
    fn version_from_crate() {
        let v = VersionInfo::default();
        let text = format!("{}.{}.{}", v.major, v.minor, v.micro);
        assert!(env!("CARGO_PKG_VERSION").starts_with(&text));
        assert_eq!(v.package, "");
    }
}
