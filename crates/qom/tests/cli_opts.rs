//! The system emulator's `-object` (QemuOpts + OptsVisitor) against the
//! oracle: every command-line case QEMU 10.0.2 rejects while parsing (its
//! message carries the `-object STRING:` location) must be rejected here
//! with the same text, warnings included; every other case must get
//! through parsing and checking.

use qom::{Error, ObjectSpec, ObjectTree, OnOffAuto, Props, Size, TypeInfo, TypeRegistry};
use std::collections::HashSet;

qom::qom_enum! {
    /// QAPI's `HostMemPolicy`.
    pub enum HostMemPolicy: "HostMemPolicy" {
        /// default
        Default = "default",
        /// preferred
        Preferred = "preferred",
        /// bind
        Bind = "bind",
        /// interleave
        Interleave = "interleave",
    }
}

/// The settable state of the stand-in backend.
#[derive(Default)]
struct Backend {
    dump: bool,
    host_nodes: Vec<u16>,
    merge: bool,
    policy: Option<HostMemPolicy>,
    prealloc: bool,
    prealloc_threads: u32,
    prealloc_context: String,
    share: bool,
    reserve: bool,
    size: Size,
    canonical: bool,
    align: Size,
    offset: Size,
    discard_data: bool,
    mem_path: String,
    pmem: bool,
    readonly: bool,
    rom: Option<OnOffAuto>,
}

/// A stand-in for `memory-backend-file` with its properties declared in
/// QAPI schema order (base members, then the file members), which is the
/// order QEMU checks them in.
fn types() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    types
        .register(
            TypeInfo::new("memory-backend-file")
                .parent("object")
                .interface_impl("user-creatable")
                .state::<Backend>()
                .class_init(|c| {
                    c.field("dump", |s: &mut Backend| &mut s.dump);
                    c.field("host-nodes", |s: &mut Backend| &mut s.host_nodes);
                    c.field("merge", |s: &mut Backend| &mut s.merge);
                    c.property::<HostMemPolicy>("policy")
                        .getter(|o| {
                            Ok(o.state::<Backend>()
                                .policy
                                .unwrap_or(HostMemPolicy::Default))
                        })
                        .setter(|o, v| {
                            o.state::<Backend>().policy = Some(v);
                            Ok(())
                        });
                    c.field("prealloc", |s: &mut Backend| &mut s.prealloc);
                    c.field("prealloc-threads", |s: &mut Backend| {
                        &mut s.prealloc_threads
                    });
                    c.field("prealloc-context", |s: &mut Backend| {
                        &mut s.prealloc_context
                    });
                    c.field("share", |s: &mut Backend| &mut s.share);
                    c.field("reserve", |s: &mut Backend| &mut s.reserve);
                    c.field("size", |s: &mut Backend| &mut s.size).required();
                    c.field("x-use-canonical-path-for-ramblock-id", |s: &mut Backend| {
                        &mut s.canonical
                    });
                    c.field("align", |s: &mut Backend| &mut s.align);
                    c.field("offset", |s: &mut Backend| &mut s.offset);
                    c.field("discard-data", |s: &mut Backend| &mut s.discard_data);
                    c.field("mem-path", |s: &mut Backend| &mut s.mem_path)
                        .required();
                    c.field("pmem", |s: &mut Backend| &mut s.pmem);
                    c.field("readonly", |s: &mut Backend| &mut s.readonly);
                    c.property::<OnOffAuto>("rom")
                        .getter(|o| Ok(o.state::<Backend>().rom.unwrap_or(OnOffAuto::Auto)))
                        .setter(|o, v| {
                            o.state::<Backend>().rom = Some(v);
                            Ok(())
                        });
                    Ok(())
                }),
        )
        .unwrap();
    types
}

const PROG: &str = "qemu-system-x86_64";

/// What the command line prints while it parses `-object` options, the
/// way QEMU prints it: warnings first, then at most one error (with its
/// hint line), each located at the option. `None` when parsing succeeds;
/// then the text holds the warnings only. `Some(true)` for help.
fn parse_stage(tree: &ObjectTree, objects: &[String]) -> (String, Option<bool>) {
    let mut out = String::new();
    let mut ids = HashSet::new();
    for text in objects {
        let at = format!("{PROG}: -object {text}: ");
        let fail = |out: &mut String, e: Error| {
            out.push_str(&format!("{at}{e}\n"));
            if let Some(hint) = e.hint() {
                out.push_str(hint);
                out.push('\n');
            }
        };
        let (spec, warnings) = match ObjectSpec::parse_opts(text) {
            Ok(ok) => ok,
            Err(e) => {
                fail(&mut out, e);
                return (out, Some(false));
            }
        };
        // QemuOpts refuses a repeated id before it parses the rest.
        if !text.starts_with('{') {
            if let Some(id) = &spec.id {
                if !ids.insert(id.clone()) {
                    fail(&mut out, Error::DuplicateOptsId(id.clone()));
                    return (out, Some(false));
                }
            }
        }
        for w in &warnings {
            out.push_str(&format!("{at}warning: {w}\n"));
        }
        if spec.help {
            return (out, Some(true));
        }
        if let Err(e) = tree.check_spec(&spec) {
            fail(&mut out, e);
            return (out, Some(false));
        }
    }
    (out, None)
}

include!("cli_opts/rows.rs");

fn tmp(s: &str) -> String {
    s.replace("{TMP}", "/tmp/qom-cli").replace("{PROG}", PROG)
}

#[test]
fn every_oracle_row_parses_as_qemu_parses_it() {
    let tree = ObjectTree::new(types()).unwrap();
    let mut parse_errors = 0;
    for (name, objects, outcome, stderr) in ROWS {
        let objects: Vec<String> = objects.iter().map(|o| tmp(o)).collect();
        let (printed, failed) = parse_stage(&tree, &objects);
        let stderr = tmp(stderr);
        match *outcome {
            "EXIT0" => assert_eq!(failed, Some(true), "{name}: help expected"),
            "ERROR" if stderr.contains(&format!("{PROG}: -object ")) => {
                parse_errors += 1;
                assert_eq!(failed, Some(false), "{name}: expected a parse error");
                assert_eq!(printed, stderr, "{name}");
            }
            // Accepted, or refused only when the object is created: the
            // parse stage prints at most the warnings QEMU printed.
            _ => {
                assert_eq!(failed, None, "{name}: {printed}");
                let located = stderr
                    .lines()
                    .filter(|l| l.contains(": -object ") || l.starts_with("Please use"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>();
                assert_eq!(printed, located, "{name}");
            }
        }
    }
    assert_eq!(parse_errors, 25);
}

fn create(tree: &ObjectTree, text: &str) -> qom::Object {
    let (spec, _) = ObjectSpec::parse_opts(text).unwrap();
    tree.object_add_spec(&spec).unwrap()
}

#[test]
fn accepted_rows_set_the_values_qemu_reads_back() {
    let tree = ObjectTree::new(types()).unwrap();
    let o = create(
        &tree,
        "memory-backend-file,id=a,size=4M,size=8M,mem-path=/t/a,,b,host-nodes=0-1,host-nodes=3,policy=interleave,share,rom=on",
    );
    let s = o.state::<Backend>();
    assert_eq!(s.size, Size(8 << 20));
    assert_eq!(s.mem_path, "/t/a,b");
    assert_eq!(s.host_nodes, [0, 1, 3]);
    assert_eq!(s.policy, Some(HostMemPolicy::Interleave));
    assert!(s.share);
    assert_eq!(s.rom, Some(OnOffAuto::On));
    drop(s);
    let o = create(
        &tree,
        "qom-type=memory-backend-file,id=b,size=0x400000,mem-path=/t/f,,,noshare,dump=off",
    );
    let s = o.state::<Backend>();
    assert_eq!(s.mem_path, "/t/f,");
    assert!(!s.share);
    assert!(!s.dump);
}

#[test]
fn qapi_order_decides_which_error_wins() {
    let tree = ObjectTree::new(types()).unwrap();
    let check = |text: &str| {
        ObjectSpec::parse_opts(text)
            .and_then(|(spec, _)| tree.check_spec(&spec))
            .map_err(|e| e.to_string())
    };
    // A bad id is found while parsing, before anything else.
    assert_eq!(
        check("nosuch,id=1,bogus=2").unwrap_err(),
        "Parameter 'id' expects an identifier"
    );
    assert_eq!(
        check("id=1m,size=1").unwrap_err(),
        "Parameter 'id' expects an identifier"
    );
    // Then the type, then the id, then members in schema order, then
    // unknown keys.
    assert_eq!(
        check("id=m,size=1").unwrap_err(),
        "Parameter 'qom-type' is missing"
    );
    assert_eq!(
        check("id=m,help").unwrap_err(),
        "Parameter 'qom-type' is missing"
    );
    assert_eq!(
        check("nosuch,bogus=1").unwrap_err(),
        "Parameter 'qom-type' does not accept value 'nosuch'"
    );
    assert_eq!(
        check("memory-backend-file,bogus=1").unwrap_err(),
        "Parameter 'id' is missing"
    );
    assert_eq!(
        check("memory-backend-file,id=m,bogus=1,mem-path=/f").unwrap_err(),
        "Parameter 'size' is missing"
    );
    assert_eq!(
        check("memory-backend-file,id=m,rom=x,share=x,size=1,mem-path=/f").unwrap_err(),
        "Parameter 'share' expects 'on' or 'off'"
    );
    assert_eq!(
        check("memory-backend-file,id=m,size=1,mem-path=/f,host-nodes=0-70000").unwrap_err(),
        "Parameter 'host-nodes' expects a uint64 value or range"
    );
    assert_eq!(
        check("memory-backend-file,id=m,size=1,mem-path=/f,host-nodes=65535-65536").unwrap_err(),
        "Parameter 'host-nodes' expects uint16_t"
    );
    assert_eq!(
        check("memory-backend-file,id=m,size=1,mem-path=/f,host-nodes.0=0").unwrap_err(),
        "Invalid parameter 'host-nodes.0'"
    );
    assert_eq!(
        check("memory-backend-file,id=m,size=1,mem-path=/f,prealloc-threads=4294967296")
            .unwrap_err(),
        "Parameter 'prealloc-threads' expects uint32_t"
    );
    // JSON keeps its own wording, and the same order.
    assert_eq!(
        check(r#"{"qom-type":"nosuch"}"#).unwrap_err(),
        "Parameter 'qom-type' does not accept value 'nosuch'"
    );
    // Help needs no id, and a bare `help` asks for the type list.
    let (spec, _) = ObjectSpec::parse_opts("memory-backend-file,?").unwrap();
    assert!(spec.help);
    assert_eq!(spec.qom_type.as_deref(), Some("memory-backend-file"));
    for text in ["help", "?"] {
        let (spec, warnings) = ObjectSpec::parse_opts(text).unwrap();
        assert!(spec.help && spec.qom_type.is_none() && warnings.is_empty());
    }
}

#[test]
fn opts_props_word_unknown_keys_as_qemu_opts_does() {
    let tree = ObjectTree::new(types()).unwrap();
    let (spec, _) =
        ObjectSpec::parse_opts("memory-backend-file,id=m,size=1,mem-path=/f,sync=on").unwrap();
    assert_eq!(
        tree.object_add_spec(&spec).unwrap_err().to_string(),
        "Invalid parameter 'sync'"
    );
    assert!(matches!(spec.props, Props::Opts(_)));
    assert_eq!(
        spec.props.unexpected_key_error("x").to_string(),
        "Invalid parameter 'x'"
    );
    assert_eq!(
        Props::default().unexpected_key_error("x").to_string(),
        "Parameter 'x' is unexpected"
    );
    assert!(tree.object("m").is_none());
}
