//! The command line, parsed by hand: QEMU users type options with one
//! dash (`-object`), others with two; both forms are accepted.

use std::fmt;
use std::path::PathBuf;

/// Where to serve QMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpTarget {
    /// On standard input and output.
    Stdio,
    /// On a Unix socket at this path.
    Unix(String),
}

/// What the command was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create objects, then print them or serve QMP.
    Run {
        objects: Vec<String>,
        qmp: Option<QmpTarget>,
        /// `-machine`, `-m` and `-device`.
        machine: MachineArgs,
    },
    /// `qom types`.
    Types {
        implements: Option<String>,
        include_abstract: bool,
        tree: bool,
        dot: bool,
    },
    /// `qom tree`: create the objects as `Run` does, then draw the tree.
    Tree {
        objects: Vec<String>,
        view: TreeView,
    },
    /// `qom properties TYPE`.
    Properties { type_name: String },
    /// `qom schema [TYPE]`.
    Schema { type_name: Option<String> },
    /// `--help` (for the given subcommand, or the main one).
    Help(HelpTopic),
    /// `--version`.
    Version,
}

/// The machine and its devices, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineArgs {
    /// `-machine TYPE[,nvdimm=on]` (the last one given).
    pub machine: Option<String>,
    /// `-m SIZE[,slots=N,maxmem=SIZE]` (the last one given).
    pub memory: Option<String>,
    /// `-device DRIVER,...`, in order.
    pub devices: Vec<String>,
}

/// How `qom tree` draws the composition tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeView {
    /// Graphviz DOT instead of the text of QEMU's `qom-tree`.
    pub dot: bool,
    /// Where to start (QEMU's `qom-tree` takes a path too); `/` by default.
    pub path: String,
}

/// Which help text to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpTopic {
    /// The main command.
    Main,
    /// `qom types`.
    Types,
    /// `qom properties`.
    Properties,
    /// `qom schema`.
    Schema,
    /// `qom tree`.
    Tree,
}

/// A command line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `-name` and `--name` both mean `name`; `--name=value` carries its value.
fn option_name(arg: &str) -> Option<(&str, Option<&str>)> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if body.is_empty() {
        return None;
    }
    Some(match body.split_once('=') {
        Some((n, v)) if arg.starts_with("--") => (n, Some(v)),
        _ => (body, None),
    })
}

fn take_value<'a>(
    name: &str,
    inline: Option<&'a str>,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<&'a str, UsageError> {
    match inline {
        Some(v) => Ok(v),
        None => rest
            .next()
            .map(String::as_str)
            .ok_or_else(|| UsageError(format!("option '-{name}' needs an argument"))),
    }
}

/// Parses `-qmp` arguments: `stdio` or `unix:PATH[,server=on][,wait=off]`.
pub fn parse_qmp(spec: &str) -> Result<QmpTarget, UsageError> {
    if spec == "stdio" {
        return Ok(QmpTarget::Stdio);
    }
    let Some(rest) = spec.strip_prefix("unix:") else {
        return Err(UsageError(format!(
            "-qmp {spec}: expected 'stdio' or 'unix:PATH[,server=on,wait=off]'"
        )));
    };
    let mut parts = rest.split(',');
    let path = parts.next().unwrap_or_default();
    if path.is_empty() {
        return Err(UsageError(format!("-qmp {spec}: the socket path is empty")));
    }
    for opt in parts {
        match opt {
            "server" | "server=on" | "wait=off" | "nowait" => {}
            "server=off" => {
                return Err(UsageError(format!(
                    "-qmp {spec}: only server=on is supported"
                )))
            }
            "wait=on" => {
                return Err(UsageError(format!(
                    "-qmp {spec}: wait=on is not supported; clients may connect at any time"
                )))
            }
            other => return Err(UsageError(format!("-qmp {spec}: unknown option '{other}'"))),
        }
    }
    Ok(QmpTarget::Unix(path.to_owned()))
}

/// A parsed command line: the command and the plugins to load first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// What to do.
    pub command: Command,
    /// `--plugin` files, in order.
    pub plugins: Vec<PathBuf>,
}

/// Takes `--plugin PATH` (accepted before a subcommand and among any
/// command's options) into `plugins`; false when `arg` is something else.
fn take_plugin<'a>(
    arg: &'a str,
    rest: &mut impl Iterator<Item = &'a String>,
    plugins: &mut Vec<PathBuf>,
) -> Result<bool, UsageError> {
    match option_name(arg) {
        Some(("plugin", inline)) => {
            plugins.push(take_value("plugin", inline, rest)?.into());
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Invocation, UsageError> {
    let mut plugins = Vec::new();
    let mut it = args.iter().peekable();
    // Plugins given before the subcommand.
    while let Some(arg) = it.next_if(|a| matches!(option_name(a), Some(("plugin", _)))) {
        take_plugin(arg, &mut it, &mut plugins)?;
    }
    let command = match it.peek().map(|s| s.as_str()) {
        Some("types") => {
            it.next();
            let (mut implements, mut include_abstract, mut tree, mut dot) =
                (None, false, false, false);
            while let Some(arg) = it.next() {
                if take_plugin(arg, &mut it, &mut plugins)? {
                    continue;
                }
                match option_name(arg) {
                    Some(("implements", inline)) => {
                        implements = Some(take_value("implements", inline, &mut it)?.to_owned())
                    }
                    Some(("abstract", None)) => include_abstract = true,
                    Some(("tree", None)) => tree = true,
                    Some(("dot", None)) => dot = true,
                    Some(("help" | "h", None)) => {
                        return Ok(Invocation {
                            command: Command::Help(HelpTopic::Types),
                            plugins,
                        })
                    }
                    _ => {
                        return Err(UsageError(format!(
                            "qom types: unexpected argument '{arg}'"
                        )))
                    }
                }
            }
            if tree && dot {
                return Err(UsageError(
                    "qom types: --tree and --dot cannot be used together".into(),
                ));
            }
            Command::Types {
                implements,
                include_abstract,
                tree,
                dot,
            }
        }
        Some("tree") => {
            it.next();
            let (mut objects, mut dot, mut path) = (Vec::new(), false, None);
            while let Some(arg) = it.next() {
                if take_plugin(arg, &mut it, &mut plugins)? {
                    continue;
                }
                match option_name(arg) {
                    Some(("object", inline)) => {
                        objects.push(take_value("object", inline, &mut it)?.to_owned())
                    }
                    Some(("dot", None)) => dot = true,
                    Some(("help" | "h", None)) => {
                        return Ok(Invocation {
                            command: Command::Help(HelpTopic::Tree),
                            plugins,
                        })
                    }
                    Some(_) => {
                        return Err(UsageError(format!("qom tree: unexpected option '{arg}'")))
                    }
                    None if path.is_none() => path = Some(arg.clone()),
                    None => {
                        return Err(UsageError(format!("qom tree: unexpected argument '{arg}'")))
                    }
                }
            }
            Command::Tree {
                objects,
                view: TreeView {
                    dot,
                    path: path.unwrap_or_else(|| "/".to_owned()),
                },
            }
        }
        Some(sub @ ("properties" | "schema")) => {
            let topic = if sub == "schema" {
                HelpTopic::Schema
            } else {
                HelpTopic::Properties
            };
            it.next();
            let mut type_name = None;
            while let Some(arg) = it.next() {
                if take_plugin(arg, &mut it, &mut plugins)? {
                    continue;
                }
                match option_name(arg) {
                    Some(("help" | "h", None)) => {
                        return Ok(Invocation {
                            command: Command::Help(topic),
                            plugins,
                        })
                    }
                    Some(_) => {
                        return Err(UsageError(format!("qom {sub}: unexpected option '{arg}'")))
                    }
                    None if type_name.is_none() => type_name = Some(arg.clone()),
                    None => {
                        return Err(UsageError(format!(
                            "qom {sub}: unexpected argument '{arg}'"
                        )))
                    }
                }
            }
            if topic == HelpTopic::Schema {
                Command::Schema { type_name }
            } else {
                let type_name = type_name
                    .ok_or_else(|| UsageError("qom properties: a TYPE is needed".into()))?;
                Command::Properties { type_name }
            }
        }
        _ => {
            let (mut objects, mut qmp) = (Vec::new(), None);
            let mut machine = MachineArgs::default();
            while let Some(arg) = it.next() {
                if take_plugin(arg, &mut it, &mut plugins)? {
                    continue;
                }
                match option_name(arg) {
                    Some(("object", inline)) => {
                        objects.push(take_value("object", inline, &mut it)?.to_owned())
                    }
                    Some(("machine" | "M", inline)) => {
                        machine.machine = Some(take_value("machine", inline, &mut it)?.to_owned())
                    }
                    Some(("m", inline)) => {
                        machine.memory = Some(take_value("m", inline, &mut it)?.to_owned())
                    }
                    Some(("device", inline)) => machine
                        .devices
                        .push(take_value("device", inline, &mut it)?.to_owned()),
                    Some(("qmp", inline)) => {
                        qmp = Some(parse_qmp(take_value("qmp", inline, &mut it)?)?)
                    }
                    Some(("help" | "h", None)) => {
                        return Ok(Invocation {
                            command: Command::Help(HelpTopic::Main),
                            plugins,
                        })
                    }
                    Some(("version" | "V", None)) => {
                        return Ok(Invocation {
                            command: Command::Version,
                            plugins,
                        })
                    }
                    _ => {
                        return Err(UsageError(format!(
                            "unexpected argument '{arg}' (see qom --help)"
                        )))
                    }
                }
            }
            Command::Run {
                objects,
                qmp,
                machine,
            }
        }
    };
    Ok(Invocation { command, plugins })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    fn cmd(args: &[&str]) -> Result<Command, UsageError> {
        parse(&v(args)).map(|i| i.command)
    }

    #[test]
    fn both_dash_forms_work() {
        let one = cmd(&["-object", "a,id=x", "-qmp", "stdio"]).unwrap();
        let two = cmd(&["--object", "a,id=x", "--qmp=stdio"]).unwrap();
        assert_eq!(one, two);
        assert_eq!(
            one,
            Command::Run {
                objects: vec!["a,id=x".into()],
                qmp: Some(QmpTarget::Stdio),
                machine: MachineArgs::default(),
            }
        );
    }

    #[test]
    fn machine_memory_and_devices() {
        let Command::Run { machine, .. } = cmd(&[
            "-machine",
            "pc,nvdimm=on",
            "-m",
            "512M,slots=4,maxmem=4G",
            "-device",
            "pc-dimm,memdev=m",
            "--device=nvdimm,memdev=n",
        ])
        .unwrap() else {
            panic!("not a run");
        };
        assert_eq!(
            machine,
            MachineArgs {
                machine: Some("pc,nvdimm=on".into()),
                memory: Some("512M,slots=4,maxmem=4G".into()),
                devices: vec!["pc-dimm,memdev=m".into(), "nvdimm,memdev=n".into()],
            }
        );
    }

    #[test]
    fn qmp_targets() {
        assert_eq!(
            parse_qmp("unix:/tmp/s,server=on,wait=off").unwrap(),
            QmpTarget::Unix("/tmp/s".into())
        );
        assert_eq!(
            parse_qmp("unix:/tmp/s").unwrap(),
            QmpTarget::Unix("/tmp/s".into())
        );
        assert!(parse_qmp("tcp:1").is_err());
        assert!(parse_qmp("unix:").is_err());
        assert!(parse_qmp("unix:/x,wait=on").is_err());
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            cmd(&["types", "--implements", "user-creatable", "--tree"]).unwrap(),
            Command::Types {
                implements: Some("user-creatable".into()),
                include_abstract: false,
                tree: true,
                dot: false
            }
        );
        assert!(matches!(
            cmd(&["types", "--dot", "--abstract"]).unwrap(),
            Command::Types {
                dot: true,
                include_abstract: true,
                tree: false,
                ..
            }
        ));
        assert!(cmd(&["types", "--dot", "--tree"]).is_err());
        assert_eq!(
            cmd(&["properties", "container"]).unwrap(),
            Command::Properties {
                type_name: "container".into()
            }
        );
        assert_eq!(
            cmd(&["schema"]).unwrap(),
            Command::Schema { type_name: None }
        );
        assert_eq!(
            cmd(&["types", "--help"]).unwrap(),
            Command::Help(HelpTopic::Types)
        );
        assert!(cmd(&["properties"]).is_err());
        assert!(cmd(&["-object"]).is_err());
        assert!(cmd(&["--bogus"]).is_err());
    }

    #[test]
    fn tree_takes_objects_dot_and_a_path() {
        assert_eq!(
            cmd(&["tree", "-object", "a,id=x", "--dot", "--object=b,id=y"]).unwrap(),
            Command::Tree {
                objects: vec!["a,id=x".into(), "b,id=y".into()],
                view: TreeView {
                    dot: true,
                    path: "/".into()
                }
            }
        );
        assert_eq!(
            cmd(&["tree", "/objects"]).unwrap(),
            Command::Tree {
                objects: vec![],
                view: TreeView {
                    dot: false,
                    path: "/objects".into()
                }
            }
        );
        assert_eq!(
            cmd(&["tree", "-h"]).unwrap(),
            Command::Help(HelpTopic::Tree)
        );
        assert_eq!(
            cmd(&["tree", "--qmp", "stdio"]).unwrap_err().0,
            "qom tree: unexpected option '--qmp'"
        );
        assert_eq!(
            cmd(&["tree", "/a", "/b"]).unwrap_err().0,
            "qom tree: unexpected argument '/b'"
        );
        assert_eq!(
            cmd(&["tree", "-object"]).unwrap_err().0,
            "option '-object' needs an argument"
        );
    }

    #[test]
    fn plugins_anywhere_in_order() {
        let i = parse(&v(&[
            "--plugin",
            "a.so",
            "-plugin=ignored-form",
            "types",
            "--plugin=b.so",
            "--tree",
        ]));
        // One dash with '=' is not an inline value (as for every option).
        assert!(i.is_err());
        let i = parse(&v(&[
            "--plugin",
            "a.so",
            "types",
            "--plugin=b.so",
            "--tree",
        ]))
        .unwrap();
        assert_eq!(i.plugins, [PathBuf::from("a.so"), PathBuf::from("b.so")]);
        assert!(matches!(i.command, Command::Types { tree: true, .. }));
        let i = parse(&v(&["-object", "x,id=y", "-plugin", "c.so", "--help"])).unwrap();
        assert_eq!(i.plugins, [PathBuf::from("c.so")]);
        assert_eq!(i.command, Command::Help(HelpTopic::Main));
        let i = parse(&v(&["schema", "t", "--plugin", "d.so"])).unwrap();
        assert_eq!(i.plugins, [PathBuf::from("d.so")]);
        assert!(cmd(&["--plugin"]).is_err());
    }
}
