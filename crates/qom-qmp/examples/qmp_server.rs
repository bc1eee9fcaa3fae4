//! A VMM's QMP server in a few lines: an object tree, the QOM commands,
//! and one command of its own (`x-echo`).
//!
//! ```text
//! cargo run -p qom-qmp --example qmp_server -- stdio
//! cargo run -p qom-qmp --example qmp_server -- unix:/tmp/qmp.sock
//! ```

use qom::{ObjectTree, TypeRegistry};
use qom_qmp::{register_qom_commands, Commands, Server};
use serde_json::Value;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let Some(transport) = std::env::args().nth(1) else {
        eprintln!("usage: qmp_server stdio|unix:PATH");
        return ExitCode::from(2);
    };
    let tree = match ObjectTree::new(TypeRegistry::with_builtins()) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("qmp_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let commands = Commands::new();
    register_qom_commands(&commands, tree).expect("fresh table");
    commands
        .register("x-echo", |args| Ok(Value::Object(args.clone())))
        .expect("fresh name");
    let server = Server::new(Arc::new(commands));
    let result = if transport == "stdio" {
        server.serve_stdio().map_err(|e| e.to_string())
    } else if let Some(path) = transport.strip_prefix("unix:") {
        server.serve_unix(path).map_err(|e| e.to_string())
    } else {
        eprintln!("unknown transport '{transport}'");
        return ExitCode::from(2);
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qmp_server: {e}");
            ExitCode::FAILURE
        }
    }
}
