//! `qom`: create QOM objects from `-object` specs, introspect the types,
//! and serve QMP.
// Unsafe code is allowed only in `plugins`, which loads libraries.
#![deny(unsafe_code)]

mod args;
mod create;
mod devices;
mod dot;
mod introspect;
mod limits;
mod logger;
mod plugins;
mod progress;
mod serve;
mod signals;
mod types;

use args::{Command, HelpTopic};
use qom::ObjectTree;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

const MAIN_HELP: &str = "\
Usage: qom [--plugin PATH]... [-machine pc[,nvdimm=on]] [-m SIZE[,slots=N,maxmem=SIZE]]
           [-object SPEC]... [-device SPEC]... [-qmp stdio|unix:PATH[,server=on,wait=off]]
       qom types [--implements TYPE] [--abstract] [--tree|--dot]
       qom tree [--dot] [-object SPEC]... [PATH]
       qom properties TYPE
       qom schema [TYPE]

Creates the objects given with -object (keyval as qemu-system takes it, or
JSON when SPEC starts with '{'), in order. Without -qmp it prints them and
their properties as JSON and exits; with -qmp it serves the QEMU Machine
Protocol until 'quit' (or the end of input on stdio). SIGTERM, SIGINT and
SIGHUP send QMP clients a SHUTDOWN event, tear the objects down and exit
with status 128 + the signal number, as QEMU does; a second signal exits at
once.

Options (one dash or two):
  -object SPEC      create an object, e.g. memory-backend-file,id=mem0,size=64M,mem-path=/dev/shm,share=on
  -object help      list the user-creatable types
  -object TYPE,help list the options of TYPE
  -machine pc[,nvdimm=on]
                    a machine with QEMU's pc memory layout (no CPUs, no
                    buses) for memory devices; implied by -m and -device
  -m SIZE[,slots=N,maxmem=SIZE]
                    its RAM, memory-device slots and largest size
  -device SPEC      cold-plug a device after the objects, e.g.
                    pc-dimm,id=dimm0,memdev=mem0 (-device help,
                    -device DRIVER,help)
  -qmp TARGET       serve QMP on stdio or on a Unix socket (created mode 0600)
  --plugin PATH     load a plugin (a cdylib made with qom::plugin_entry! by
                    the same qom build) before anything else; repeatable,
                    and accepted by 'qom types', 'tree', 'properties' and
                    'schema' too
  -h, --help        this text; 'qom COMMAND --help' for the commands
  -V, --version     print the version and the build stamp plugins must match

A preallocation (prealloc=on) that runs longer than half a second shows a
progress line on stderr when stderr is a terminal; a shutdown signal
cancels it, and the object it was for is not created.

Environment:
  QOM_PLUGIN_PATH   directories (separated by ':') whose *.so files are all
                    loaded as plugins, before those given with --plugin
  QOM_PROGRESS_DELAY_MS  how long a preallocation runs before its progress
                    line shows, in milliseconds (default 500)

Examples:
  qom -object memory-backend-file,id=mem0,size=256M,mem-path=/dev/shm,share=on,sync=auto
  qom -object '{\"qom-type\": \"memory-backend-file\", \"id\": \"m\", \"size\": 4194304, \"mem-path\": \"/dev/shm\"}' -qmp stdio
  qom -qmp unix:/run/qom.sock,server=on,wait=off
  qom --plugin ./libqom_plugin_example.so -object example-greeter,id=g0,repeat=2
";

const TYPES_HELP: &str = "\
Usage: qom types [--implements TYPE] [--abstract] [--tree|--dot]

Lists the registered types as qom-list-types does (JSON), or draws the type
hierarchy as an indented tree (--tree; ancestors that the filter leaves out
are shown in [brackets]) or as a Graphviz DOT graph (--dot; parent edges
solid, interface edges dashed, abstract types dashed and italic, types the
filter leaves out grey).

  --implements TYPE  only types that are, or implement, TYPE
  --abstract         include abstract types
  --dot              print Graphviz DOT (render with: dot -Tsvg -o types.svg)
  --plugin PATH      load a plugin first, to list its types too (see qom --help)

Examples:
  qom types --implements user-creatable
  qom types --abstract --tree
  qom types --abstract --dot | dot -Tsvg -o types.svg
";

const TREE_HELP: &str = "\
Usage: qom tree [--dot] [-object SPEC]... [--plugin PATH]... [PATH]

Creates the objects given with -object as 'qom' does, then prints the
composition tree from PATH (default /) as QEMU's qom-tree script prints it
from a running QEMU: each object's path, then '  name: value (type)' for
each property that is not a child, then its children. With --dot, prints a
Graphviz DOT graph instead: children as solid edges, links as dashed edges
to their targets, each node with its path, type and the properties that
differ from their defaults. The objects are torn down before 'qom' exits.

Example:
  qom tree --dot -object thread-context,id=tc0 \\
      -object memory-backend-ram,id=mem0,size=64M,prealloc-context=tc0 | dot -Tsvg -o tree.svg
";

const PROPERTIES_HELP: &str = "\
Usage: qom properties TYPE [--plugin PATH]...

Prints what qom-list-properties returns for TYPE: name, QOM type string,
description and default of each property, as JSON.

Example:
  qom properties memory-backend-file
";

const SCHEMA_HELP: &str = "\
Usage: qom schema [TYPE] [--plugin PATH]...

Prints a JSON Schema (draft 2020-12) of the object-add arguments TYPE
accepts (or, without TYPE, of any user-creatable type), usable with any JSON
Schema validator. Each property carries its description, default and QOM
type string (x-qom-type).

Example:
  qom schema memory-backend-file > memory-backend-file.schema.json
";

fn prog_name() -> String {
    std::env::args()
        .next()
        .as_deref()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "qom".to_owned())
}

fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let ok = writeln!(out, "{}", text.trim_end_matches('\n'))
        .and_then(|_| out.flush())
        .is_ok();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail(prog: &str, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{prog}: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let prog = prog_name();
    logger::install(&prog);
    // Before any object holds a descriptor; a failure leaves the limit
    // as it was, which only matters with hundreds of shared backends.
    let _ = limits::raise_nofile();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args::Invocation { command, plugins } = match args::parse(&argv) {
        Ok(i) => i,
        Err(e) => return fail(&prog, e),
    };
    let types = match types::registry() {
        Ok(t) => t,
        Err(e) => return fail(&prog, e),
    };
    // Before plugins are loaded (they might start threads) and before any
    // object exists, so that a signal never skips a teardown.
    let shutdown = match command {
        Command::Run { .. } | Command::Tree { .. } => match signals::Shutdown::install(&prog) {
            Ok(s) => Some(s),
            Err(e) => return fail(&prog, format_args!("setting up signal handling: {e}")),
        },
        _ => None,
    };
    if !matches!(command, Command::Help(_) | Command::Version) {
        let plugin_path = std::env::var_os(plugins::PLUGIN_PATH_VAR);
        if let Err(e) = plugins::load_all(&types, plugin_path.as_deref(), &plugins) {
            return fail(&prog, e);
        }
    }
    match command {
        Command::Help(topic) => print(match topic {
            HelpTopic::Main => MAIN_HELP,
            HelpTopic::Types => TYPES_HELP,
            HelpTopic::Properties => PROPERTIES_HELP,
            HelpTopic::Schema => SCHEMA_HELP,
            HelpTopic::Tree => TREE_HELP,
        }),
        Command::Version => print(&format!(
            "qom {}\nbuild stamp: {}",
            env!("CARGO_PKG_VERSION"),
            qom::plugin::build_stamp()
        )),
        Command::Types {
            implements,
            include_abstract,
            tree,
            dot,
        } => match introspect::types(&types, implements.as_deref(), include_abstract, tree, dot) {
            Ok(s) => print(&s),
            Err(e) => fail(&prog, e),
        },
        Command::Properties { type_name } => match introspect::properties(&types, &type_name) {
            Ok(s) => print(&s),
            Err(e) => fail(&prog, e),
        },
        Command::Schema { type_name } => match introspect::schema(&types, type_name.as_deref()) {
            Ok(s) => print(&s),
            Err(e) => fail(&prog, e),
        },
        Command::Run {
            objects,
            qmp,
            machine,
        } => match shutdown {
            Some(shutdown) => run(&prog, &shutdown, types, &objects, qmp, None, &machine),
            None => ExitCode::FAILURE,
        },
        Command::Tree { objects, view } => match shutdown {
            Some(shutdown) => run(
                &prog,
                &shutdown,
                types,
                &objects,
                None,
                Some(view),
                &args::MachineArgs::default(),
            ),
            None => ExitCode::FAILURE,
        },
    }
}

fn run(
    prog: &str,
    shutdown: &signals::Shutdown,
    types: qom::TypeRegistry,
    objects: &[String],
    qmp: Option<args::QmpTarget>,
    view: Option<args::TreeView>,
    machine: &args::MachineArgs,
) -> ExitCode {
    let tree = match ObjectTree::new(types) {
        Ok(t) => Arc::new(t),
        Err(e) => return fail(prog, e),
    };
    let devices = match devices::prepare(prog, &tree, machine) {
        Ok(devices::Plan::Help(text)) => return help_text(prog, Ok(text)),
        Ok(devices::Plan::Devices(d)) => d,
        Err(lines) => {
            for l in lines {
                eprintln!("{l}");
            }
            return ExitCode::FAILURE;
        }
    };
    progress::install();
    let request = match create::parse_all(prog, &tree, objects) {
        Ok(r) => r,
        Err(f) => {
            for l in f.lines {
                eprintln!("{l}");
            }
            return ExitCode::FAILURE;
        }
    };
    let specs = match request {
        create::Request::TypeList => return help_text(prog, tree.types().object_help()),
        create::Request::TypeHelp(t) => return help_text(prog, tree.types().type_help(&t)),
        create::Request::Create(specs) => specs,
    };
    // One object at a time, so that a signal takes effect between two.
    for spec in &specs {
        if let Some(signal) = shutdown.received() {
            let status = ExitCode::from(signals::exit_status(signal));
            return torn_down(shutdown, &tree, status);
        }
        if let Err(f) = create::create_all(prog, &tree, std::slice::from_ref(spec)) {
            for l in f.lines {
                eprintln!("{l}");
            }
            return torn_down(shutdown, &tree, ExitCode::FAILURE);
        }
    }
    if let Err(lines) = devices::cold_plug(prog, &tree, &devices) {
        for l in lines {
            eprintln!("{l}");
        }
        return torn_down(shutdown, &tree, ExitCode::FAILURE);
    }
    let status = match qmp {
        None if shutdown.received().is_some() => ExitCode::SUCCESS,
        None => match &view {
            // Written as is: qom-tree's text ends with an empty line.
            Some(v) => help_text(prog, introspect::show_tree(&tree, v)),
            None => {
                print(&serde_json::to_string_pretty(&create::describe(&tree)).unwrap_or_default())
            }
        },
        Some(target) => match serve::serve(&tree, &target, |h| shutdown.attach(h)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(prog, e),
        },
    };
    torn_down(shutdown, &tree, status)
}

/// Tears the objects down and gives the exit status: `status`, or QEMU's
/// status for the signal if one came.
///
/// The objects are unparented here, newest first as the tree's own drop
/// does, rather than left to that drop: the signal thread may still hold a
/// server handle for a moment (and through it the tree), and the teardown
/// must be over before the process exits. Nothing serves the tree any more
/// at this point: the transports returned after joining their clients.
fn torn_down(shutdown: &signals::Shutdown, tree: &ObjectTree, status: ExitCode) -> ExitCode {
    shutdown.detach();
    // Devices first: they use the backends below /objects.
    if let Some(machine) = tree.root().child("machine") {
        machine.unparent();
    }
    let mut children = tree.objects().children();
    children.reverse();
    for (_, child) in children {
        child.unparent();
    }
    match shutdown.received() {
        Some(signal) => ExitCode::from(signals::exit_status(signal)),
        None => status,
    }
}

fn help_text(prog: &str, text: qom::Result<String>) -> ExitCode {
    match text {
        Ok(t) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(t.as_bytes())
                .and_then(|_| out.flush())
                .is_ok()
            {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(prog, e),
    }
}
