//! `-machine`, `-m` and `-device`: the machine is made before the
//! objects, the devices after them (they use the backends), with QEMU's
//! error layout (`qom: -device SPEC: MESSAGE`).

use crate::args::MachineArgs;
use qom::ObjectTree;
use qom_devices::{DeviceSpec, MachineOptions, MemoryOptions};

/// What the machine options asked for.
pub enum Plan {
    /// Print this help text and exit.
    Help(String),
    /// Cold-plug these devices once the objects exist.
    Devices(Vec<(String, DeviceSpec)>),
}

/// Creates the machine (when `-machine`, `-m` or `-device` is given) and
/// parses the devices. Errors are the lines to print.
pub fn prepare(prog: &str, tree: &ObjectTree, args: &MachineArgs) -> Result<Plan, Vec<String>> {
    for text in &args.devices {
        let spec = DeviceSpec::parse(text);
        if text == "help" || spec.driver.as_deref() == Some("help") {
            let names = qom_devices::device_types(tree.types())
                .map_err(|e| vec![format!("{prog}: {e}")])?;
            let text: String = names.iter().map(|n| format!("name \"{n}\"\n")).collect();
            return Ok(Plan::Help(text));
        }
        if spec.props.keys().any(|k| k == "help") {
            let driver = spec.driver.clone().unwrap_or_default();
            let props = qom_devices::device_list_properties(tree.types(), &driver)
                .map_err(|e| vec![format!("{prog}: -device {text}: {e}")])?;
            let mut out = format!("{driver} options:\n");
            for p in props {
                out.push_str(&format!("  {}=<{}>", p.name, p.qom_type));
                if let Some(d) = &p.description {
                    out.push_str(&format!(" - {d}"));
                }
                out.push('\n');
            }
            return Ok(Plan::Help(out));
        }
    }
    // QemuOpts' checks, made while the command line is read: ids are
    // identifiers and unique among the -device options.
    let mut ids = std::collections::HashSet::new();
    for text in &args.devices {
        if let Some(id) = DeviceSpec::parse(text).id {
            let e = if !qom::is_valid_id(&id) {
                qom::Error::InvalidId
            } else if !ids.insert(id.clone()) {
                qom::Error::generic(format!("Duplicate ID '{id}' for device"))
            } else {
                continue;
            };
            let mut lines = vec![format!("{prog}: -device {text}: {e}")];
            lines.extend(e.hint().map(str::to_owned));
            return Err(lines);
        }
    }
    if args.machine.is_none() && args.memory.is_none() && args.devices.is_empty() {
        return Ok(Plan::Devices(Vec::new()));
    }
    let memory = match &args.memory {
        Some(m) => MemoryOptions::parse(m).map_err(|e| match e {
            qom::Error::ParameterExpects { .. } | qom::Error::InvalidParameter(_) => {
                let mut lines = vec![format!("{prog}: -m {m}: {e}")];
                if matches!(&e, qom::Error::ParameterExpects { what, .. } if what.contains("2^64"))
                {
                    lines.push("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-".into());
                    lines.push("and exabytes, respectively.".into());
                }
                lines
            }
            other => vec![format!("{prog}: {other}")],
        })?,
        None => MemoryOptions::default(),
    };
    let text = args.machine.as_deref().unwrap_or("pc");
    let opts = MachineOptions::parse(text, memory).map_err(|e| {
        let mut lines = vec![format!("{prog}: {e}")];
        if e.to_string().starts_with("unsupported machine type") {
            lines.push("Use -machine help to list supported machines".into());
        }
        lines
    })?;
    qom_devices::create_machine(tree, &opts).map_err(|e| vec![format!("{prog}: {e}")])?;
    Ok(Plan::Devices(
        args.devices
            .iter()
            .map(|t| (t.clone(), DeviceSpec::parse(t)))
            .collect(),
    ))
}

/// Adds the `-device` devices in order, as cold-plugged (`hotplugged`
/// reads false).
pub fn cold_plug(
    prog: &str,
    tree: &ObjectTree,
    devices: &[(String, DeviceSpec)],
) -> Result<(), Vec<String>> {
    for (text, spec) in devices {
        qom_devices::device_add(tree, spec, false)
            .map_err(|e| vec![format!("{prog}: -device {text}: {e}")])?;
    }
    Ok(())
}
