//! The command line, parsed by hand: QEMU users type options with one
//! dash (`-object`), others with two; both forms are accepted.

use std::fmt;

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
    },
    /// `qom types`.
    Types {
        implements: Option<String>,
        include_abstract: bool,
        tree: bool,
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

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let mut it = args.iter();
    match args.first().map(String::as_str) {
        Some("types") => {
            it.next();
            let (mut implements, mut include_abstract, mut tree) = (None, false, false);
            while let Some(arg) = it.next() {
                match option_name(arg) {
                    Some(("implements", inline)) => {
                        implements = Some(take_value("implements", inline, &mut it)?.to_owned())
                    }
                    Some(("abstract", None)) => include_abstract = true,
                    Some(("tree", None)) => tree = true,
                    Some(("help" | "h", None)) => return Ok(Command::Help(HelpTopic::Types)),
                    _ => {
                        return Err(UsageError(format!(
                            "qom types: unexpected argument '{arg}'"
                        )))
                    }
                }
            }
            Ok(Command::Types {
                implements,
                include_abstract,
                tree,
            })
        }
        Some("properties") => {
            it.next();
            let mut type_name = None;
            for arg in it {
                match option_name(arg) {
                    Some(("help" | "h", None)) => return Ok(Command::Help(HelpTopic::Properties)),
                    Some(_) => {
                        return Err(UsageError(format!(
                            "qom properties: unexpected option '{arg}'"
                        )))
                    }
                    None if type_name.is_none() => type_name = Some(arg.clone()),
                    None => {
                        return Err(UsageError(format!(
                            "qom properties: unexpected argument '{arg}'"
                        )))
                    }
                }
            }
            let type_name =
                type_name.ok_or_else(|| UsageError("qom properties: a TYPE is needed".into()))?;
            Ok(Command::Properties { type_name })
        }
        Some("schema") => {
            it.next();
            let mut type_name = None;
            for arg in it {
                match option_name(arg) {
                    Some(("help" | "h", None)) => return Ok(Command::Help(HelpTopic::Schema)),
                    Some(_) => {
                        return Err(UsageError(format!("qom schema: unexpected option '{arg}'")))
                    }
                    None if type_name.is_none() => type_name = Some(arg.clone()),
                    None => {
                        return Err(UsageError(format!(
                            "qom schema: unexpected argument '{arg}'"
                        )))
                    }
                }
            }
            Ok(Command::Schema { type_name })
        }
        _ => {
            let (mut objects, mut qmp) = (Vec::new(), None);
            while let Some(arg) = it.next() {
                match option_name(arg) {
                    Some(("object", inline)) => {
                        objects.push(take_value("object", inline, &mut it)?.to_owned())
                    }
                    Some(("qmp", inline)) => {
                        qmp = Some(parse_qmp(take_value("qmp", inline, &mut it)?)?)
                    }
                    Some(("help" | "h", None)) => return Ok(Command::Help(HelpTopic::Main)),
                    Some(("version" | "V", None)) => return Ok(Command::Version),
                    _ => {
                        return Err(UsageError(format!(
                            "unexpected argument '{arg}' (see qom --help)"
                        )))
                    }
                }
            }
            Ok(Command::Run { objects, qmp })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn both_dash_forms_work() {
        let one = parse(&v(&["-object", "a,id=x", "-qmp", "stdio"])).unwrap();
        let two = parse(&v(&["--object", "a,id=x", "--qmp=stdio"])).unwrap();
        assert_eq!(one, two);
        assert_eq!(
            one,
            Command::Run {
                objects: vec!["a,id=x".into()],
                qmp: Some(QmpTarget::Stdio)
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
            parse(&v(&["types", "--implements", "user-creatable", "--tree"])).unwrap(),
            Command::Types {
                implements: Some("user-creatable".into()),
                include_abstract: false,
                tree: true
            }
        );
        assert_eq!(
            parse(&v(&["properties", "container"])).unwrap(),
            Command::Properties {
                type_name: "container".into()
            }
        );
        assert_eq!(
            parse(&v(&["schema"])).unwrap(),
            Command::Schema { type_name: None }
        );
        assert_eq!(
            parse(&v(&["types", "--help"])).unwrap(),
            Command::Help(HelpTopic::Types)
        );
        assert!(parse(&v(&["properties"])).is_err());
        assert!(parse(&v(&["-object"])).is_err());
        assert!(parse(&v(&["--bogus"])).is_err());
    }
}
