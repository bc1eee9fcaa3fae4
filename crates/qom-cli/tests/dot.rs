//! `qom types --dot` and `qom tree [--dot]`: the DOT they print is valid
//! for Graphviz (each graph goes through Debian's `dot -Tsvg`), has the
//! shape it promises (parent, child and interface edges, links dashed),
//! and `qom tree` prints QEMU's `qom-tree` text. Bad command lines fail with
//! status 1 before anything is created.
mod common;

use common::{qom, stderr, stdout};

use qom_test_support::TempDir;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Renders `dot_text` with Graphviz and returns the SVG. Without `dot`
/// this fails (never skips): the check that the output is valid DOT is
/// the point of these tests.
fn svg(dot_text: &str) -> String {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "Graphviz's `dot` is not installed; install Debian's graphviz package \
             (apt-get install --no-install-recommends graphviz; .ci/run does it as root)"
        ),
        Err(e) => panic!("cannot run dot: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot_text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dot -Tsvg failed: {err}\n{dot_text}");
    // Graphviz accepts some broken input with only a warning.
    assert!(err.trim().is_empty(), "dot -Tsvg warned: {err}\n{dot_text}");
    String::from_utf8(out.stdout).unwrap()
}

/// Reads a DOT quoted string at the start of `s`: its text (escapes
/// undone as the DOT lexer does for `\"`, and as labels do for `\\`) and
/// the rest of `s`.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((text, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                if e != '"' && e != '\\' {
                    text.push('\\');
                }
                text.push(e);
            }
            c => text.push(c),
        }
    }
    None
}

/// One statement line of our DOT: a node or an edge, with its attributes.
#[derive(Debug)]
enum Stmt {
    Node {
        id: String,
        attrs: String,
    },
    Edge {
        from: String,
        to: String,
        attrs: String,
    },
}

/// The node and edge statements (one per line, as `qom` writes them).
fn statements(dot: &str) -> Vec<Stmt> {
    let mut v = Vec::new();
    for line in dot.lines().map(str::trim) {
        let Some((id, rest)) = quoted(line) else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(rest) = rest.strip_prefix("->") {
            let (to, rest) = quoted(rest.trim_start()).expect("edge target");
            v.push(Stmt::Edge {
                from: id,
                to,
                attrs: rest.trim().trim_end_matches(';').to_owned(),
            });
        } else {
            v.push(Stmt::Node {
                id,
                attrs: rest.trim().trim_end_matches(';').to_owned(),
            });
        }
    }
    v
}

fn nodes(dot: &str) -> BTreeMap<String, String> {
    statements(dot)
        .into_iter()
        .filter_map(|s| match s {
            Stmt::Node { id, attrs } => Some((id, attrs)),
            Stmt::Edge { .. } => None,
        })
        .collect()
}

fn edges(dot: &str) -> Vec<(String, String, String)> {
    statements(dot)
        .into_iter()
        .filter_map(|s| match s {
            Stmt::Edge { from, to, attrs } => Some((from, to, attrs)),
            Stmt::Node { .. } => None,
        })
        .collect()
}

/// `text` as Graphviz writes it in SVG (it escapes `-` too).
fn in_svg(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('-', "&#45;")
}

/// The SVG `<g class="edge">` groups, whole.
fn svg_edges(svg: &str) -> Vec<&str> {
    svg.split("<g id=\"edge")
        .skip(1)
        .map(|g| g.split("</g>").next().unwrap())
        .collect()
}

#[test]
fn types_dot_renders_with_parent_and_interface_edges() {
    let o = qom(&["types", "--abstract", "--dot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    let rendered = svg(&dot);
    for t in [
        "object",
        "interface",
        "user-creatable",
        "memory-backend",
        "memory-backend-file",
        "memory-backend-ram",
        "thread-context",
        "container",
    ] {
        assert!(
            rendered.contains(&format!(">{}</text>", in_svg(t))),
            "{t} is not drawn"
        );
    }

    // One node per type qom-list-types gives, and one parent edge per type
    // that has a parent.
    let listed = qom(&["types", "--abstract"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let n = nodes(&dot);
    assert_eq!(n.len(), list.len(), "{dot}");
    let e = edges(&dot);
    let parent_edges: Vec<_> = e.iter().filter(|(_, _, a)| a.is_empty()).collect();
    for t in &list {
        let name = t["name"].as_str().unwrap();
        assert!(n.contains_key(name), "{name} missing");
        if let Some(p) = t["parent"].as_str() {
            assert!(
                parent_edges.iter().any(|(f, to, _)| f == name && to == p),
                "no edge {name} -> {p}"
            );
        }
    }
    assert_eq!(
        parent_edges.len(),
        list.iter().filter(|t| t.get("parent").is_some()).count()
    );

    // Interface edges are dashed, drawn where the interface is declared
    // (not again on each subclass).
    let mut iface_edges: Vec<(&str, &str)> = e
        .iter()
        .filter(|(_, _, a)| a.contains("style=dashed"))
        .map(|(f, t, _)| (f.as_str(), t.as_str()))
        .collect();
    iface_edges.sort();
    assert_eq!(
        iface_edges,
        [
            ("memory-backend", "user-creatable"),
            ("pc-dimm", "memory-device"),
            ("thread-context", "user-creatable")
        ]
    );
    assert_eq!(e.len(), parent_edges.len() + iface_edges.len());
    // As many edges in the picture as in the DOT, three of them dashed.
    let drawn = svg_edges(&rendered);
    assert_eq!(drawn.len(), e.len());
    assert_eq!(
        drawn
            .iter()
            .filter(|g| g.contains("stroke-dasharray"))
            .count(),
        3
    );

    // Abstract types are drawn dashed and italic, concrete ones are not.
    for t in ["object", "memory-backend", "user-creatable"] {
        assert!(n[t].contains("style=dashed"), "{t}: {}", n[t]);
        assert!(n[t].contains("Oblique"), "{t}: {}", n[t]);
    }
    for t in ["memory-backend-file", "container", "thread-context"] {
        assert!(!n[t].contains("dashed"), "{t}: {}", n[t]);
    }
}

#[test]
fn types_dot_follows_the_filter() {
    let o = qom(&["types", "--implements", "user-creatable", "--dot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    svg(&dot);
    let n = nodes(&dot);
    // Selected: the concrete user-creatable types. Their ancestors and the
    // interface are there for the edges, grey.
    for t in [
        "memory-backend-file",
        "memory-backend-ram",
        "thread-context",
    ] {
        assert!(!n[t].contains("gray"), "{t}: {}", n[t]);
    }
    for t in ["memory-backend", "object", "user-creatable", "interface"] {
        assert!(n[t].contains("gray"), "{t}: {}", n[t]);
    }
    assert!(!n.contains_key("container"), "{dot}");
    assert!(!n.contains_key("memory-region"), "{dot}");

    let o = qom(&["types", "--dot", "--tree"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "qom: qom types: --tree and --dot cannot be used together\n"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn tree_dot_renders_children_and_links() {
    let d = TempDir::new_in("/dev/shm");
    let file_spec = format!(
        "memory-backend-file,id=file0,size=2M,mem-path={},share=on,prealloc=on,prealloc-context=tc0",
        d.file("guest-ram")
    );
    let o = qom(&[
        "tree",
        "--dot",
        "-object",
        "thread-context,id=tc0",
        "-object",
        "memory-backend-ram,id=ram0,size=4M",
        "-object",
        &file_spec,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    let rendered = svg(&dot);
    for text in [
        "/objects/tc0",
        "/objects/ram0",
        "/objects/file0",
        "thread-context",
        "memory-backend-file",
        "prealloc-context",
    ] {
        assert!(rendered.contains(&in_svg(text)), "{text} is not drawn");
    }

    let n = nodes(&dot);
    let e = edges(&dot);
    // A tree: every node but the root is some node's child, once.
    let child_edges: Vec<_> = e.iter().filter(|(_, _, a)| a.is_empty()).collect();
    assert_eq!(child_edges.len(), n.len() - 1, "{dot}");
    for (from, to, _) in &child_edges {
        assert!(n.contains_key(from) && n.contains_key(to), "{from} -> {to}");
        assert!(to.starts_with(from.trim_end_matches('/')), "{from} -> {to}");
    }
    for p in [
        "/",
        "/objects",
        "/objects/tc0",
        "/objects/ram0",
        "/objects/file0",
    ] {
        assert!(n.contains_key(p), "{p} missing: {dot}");
    }
    // One link is set, drawn dashed from the backend to the context.
    let links: Vec<_> = e.iter().filter(|(_, _, a)| !a.is_empty()).collect();
    assert_eq!(links.len(), 1, "{dot}");
    let (from, to, attrs) = links[0];
    assert_eq!(
        (from.as_str(), to.as_str()),
        ("/objects/file0", "/objects/tc0")
    );
    assert!(attrs.contains("style=dashed"), "{attrs}");
    assert!(attrs.contains("label=\"prealloc-context\""), "{attrs}");
    let drawn = svg_edges(&rendered);
    assert_eq!(drawn.len(), e.len());
    let dashed: Vec<_> = drawn
        .iter()
        .filter(|g| g.contains("stroke-dasharray"))
        .collect();
    assert_eq!(dashed.len(), 1);
    assert!(
        dashed[0].contains(&in_svg("prealloc-context")),
        "{}",
        dashed[0]
    );

    // Labels: path, type, then what differs from the defaults. reserve,
    // merge and dump start on, prealloc-threads at 1: not listed.
    let ram = &n["/objects/ram0"];
    assert!(
        ram.starts_with(r#"[label="/objects/ram0\lmemory-backend-ram\lsize: 4194304\l"#),
        "{ram}"
    );
    for default in ["reserve", "merge", "dump", "prealloc-threads", "share"] {
        assert!(!ram.contains(default), "{default} is a default: {ram}");
    }
    let file = &n["/objects/file0"];
    for set in [
        "share: true".to_owned(),
        "prealloc: true".to_owned(),
        format!("mem-path: {}", d.file("guest-ram")),
    ] {
        assert!(file.contains(&format!(r"\l{set}\l")), "{set}: {file}");
    }
    // Links are edges, not label lines.
    assert!(!file.contains("prealloc-context"), "{file}");

    // From a subtree: a link target outside it is drawn grey, path only.
    let o = qom(&[
        "tree",
        "--dot",
        "-object",
        "thread-context,id=tc0",
        "-object",
        &file_spec,
        "file0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    svg(&dot);
    let n = nodes(&dot);
    assert_eq!(
        n.keys().collect::<Vec<_>>(),
        ["/objects/file0", "/objects/file0/file0[0]", "/objects/tc0"]
    );
    assert_eq!(
        n["/objects/tc0"],
        r#"[label="/objects/tc0\l", color=gray50, fontcolor=gray50]"#
    );
    assert_eq!(edges(&dot).len(), 2, "{dot}");
}

#[test]
fn tree_prints_qom_tree_text() {
    let o = qom(&["tree", "-object", "memory-backend-ram,id=mem0,size=1M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "\
/
  type: container (string)

/chardevs
  type: container (string)

/objects
  type: container (string)

/objects/mem0
  type: memory-backend-ram (string)
  size: 1048576 (int)
  share: False (bool)
  reserve: True (bool)
  prealloc: False (bool)
  prealloc-threads: 1 (int)
  prealloc-context:  (link<thread-context>)
  merge: True (bool)
  dump: True (bool)
  policy: default (HostMemPolicy)
  host-nodes: [] (int)
  x-use-canonical-path-for-ramblock-id: False (bool)

/objects/mem0/mem0[0]
  type: memory-region (string)
  addr: 0 (uint64)
  container:  (link<memory-region>)
  priority: 0 (uint32)
  size: 1048576 (uint64)

/backend
  type: container (string)

"
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    // A partial path is resolved as qom-list resolves it, and printed
    // canonically.
    let o = qom(&[
        "tree",
        "-object",
        "memory-backend-ram,id=mem0,size=1M",
        "mem0[0]",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("/objects/mem0/mem0[0]\n  type: memory-region (string)\n"),
        "{}",
        stdout(&o)
    );
    let o = qom(&["tree", "/nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "qom: Device '/nosuch' not found\n");
    assert!(stdout(&o).is_empty());
}

#[test]
fn bad_tree_command_lines_fail_before_creating_anything() {
    let d = TempDir::new_in("/dev/shm");
    let good = format!(
        "memory-backend-file,id=f,size=2M,mem-path={},share=on",
        d.file("f")
    );
    let bad = "memory-backend-ram,id=r,size=4X";
    let cases: [(Vec<&str>, String); 4] = [
        (
            vec!["tree", "-object", &good, "--bogus"],
            "qom: qom tree: unexpected option '--bogus'\n".to_owned(),
        ),
        (
            vec!["tree", "-object", &good, "/", "/objects"],
            "qom: qom tree: unexpected argument '/objects'\n".to_owned(),
        ),
        (
            vec!["tree", "--dot", "-object", &good, "-object", bad],
            format!("qom: -object {bad}: Parameter 'size' expects a size value\n"),
        ),
        (
            vec!["tree", "-object", &good, "-object"],
            "qom: option '-object' needs an argument\n".to_owned(),
        ),
    ];
    for (args, msg) in cases {
        let o = qom(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&o), msg, "{args:?}");
        assert!(stdout(&o).is_empty(), "{args:?}");
        assert!(d.entries().is_empty(), "{args:?} left {:?}", d.entries());
    }

    // A backend that fails while being created: what was made before it
    // is torn down (a directory mem-path gets an unnamed file), nothing
    // is printed.
    let dir_backed = format!(
        "memory-backend-file,id=f,size=2M,mem-path={}",
        d.path().display()
    );
    let missing = d.file("nodir/g");
    let o = qom(&[
        "tree",
        "--dot",
        "-object",
        &dir_backed,
        "-object",
        &format!("memory-backend-file,id=g,size=2M,mem-path={missing}"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "qom: can't open backing store {missing} for guest RAM: No such file or directory\n"
        )
    );
    assert!(stdout(&o).is_empty());
    assert!(d.entries().is_empty(), "left {:?}", d.entries());
}
