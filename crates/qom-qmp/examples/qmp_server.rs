//! A minimal QMP server: the built-in commands plus `x-echo`.
//!
//! ```text
//! cargo run -p qom-qmp --example qmp_server -- stdio
//! cargo run -p qom-qmp --example qmp_server -- unix:/tmp/qmp.sock
//! ```
//!
//! `--oracle-stubs` also registers `query-memdev` (always `[]`) and a
//! `qom-list` that knows only `/objects`, which is enough to run the
//! protocol scenarios of QEMU's recorded transcript with
//! `qmp_scenarios.py run --only ...` against this example.

use qom_qmp::commands::{check_arguments, ArgSpec, ArgType};
use qom_qmp::{Commands, Server};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stubs = args.iter().any(|a| a == "--oracle-stubs");
    let Some(transport) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: qmp_server [--oracle-stubs] stdio|unix:PATH");
        return ExitCode::from(2);
    };

    let commands = Commands::new();
    commands
        .register("x-echo", |args| Ok(Value::Object(args.clone())))
        .expect("fresh name");
    if stubs {
        commands
            .register("query-memdev", |args| {
                check_arguments(args, &[])?;
                Ok(json!([]))
            })
            .expect("fresh name");
        commands
            .register("qom-list", |args| {
                check_arguments(args, &[ArgSpec::required("path", ArgType::Str)])?;
                match args["path"].as_str().unwrap_or_default() {
                    "/objects" => Ok(json!([{"name": "type", "type": "string"}])),
                    p => Err(qom::Error::DeviceNotFound(p.to_owned())),
                }
            })
            .expect("fresh name");
    }
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
