//! Plugins loaded at run time through the real binary: `--plugin`,
//! `QOM_PLUGIN_PATH`, the build-stamp check and files that are no plugin.
//!
//! The plugin is crates/qom-plugin-example. Being a dev-dependency of this
//! package, its cdylib is built by the same cargo invocation as the `qom`
//! binary under test, so with the same qom: the one build it must load
//! into. Cargo leaves it beside this test's executable.
mod common;

use common::{stderr, stdout};

use qom_test_support::TempDir;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn example_plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let so = exe
        .parent()
        .expect("tests live in target/<profile>/deps")
        .join("libqom_plugin_example.so");
    assert!(
        so.is_file(),
        "{} is missing: cargo builds it as a dev-dependency of qom-cli",
        so.display()
    );
    so
}

fn qom(args: &[&str], plugin_path: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qom"));
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("QOM_PLUGIN_PATH");
    if let Some(p) = plugin_path {
        cmd.env("QOM_PLUGIN_PATH", p);
    }
    cmd.output().expect("qom runs")
}

/// Exit status 1 and exactly one line on stderr, naming `file`.
fn refused(o: &Output, file: &Path) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("qom: plugin "), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(stdout(o).is_empty());
    err
}

fn names(o: &Output) -> Vec<String> {
    let v: Value = serde_json::from_str(&stdout(o)).expect("qom types prints JSON");
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_plugin_given_with_the_flag_creates_objects() {
    let so = example_plugin();
    let so = so.to_str().unwrap();
    let o = qom(
        &[
            "--plugin",
            so,
            "-object",
            "example-greeter,id=e0,greeting=Hi,repeat=2",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["e0"]["type"], "example-greeter");
    assert_eq!(v["e0"]["text"], "Hi Hi");
    assert_eq!(v["e0"]["repeat"], 2);

    // The plugin's complete hook is class data found by TypeId: that it
    // runs proves the plugin's copy of qom agrees with the binary's.
    let o = qom(
        &["-object", "example-greeter,id=e0,repeat=0", "-plugin", so],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "qom: example-greeter: repeat must be at least 1\n"
    );

    // Without the plugin the type does not exist.
    let o = qom(&["-object", "example-greeter,id=e0"], None);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn plugin_types_come_after_the_linked_ones() {
    let so = example_plugin();
    let without = names(&qom(&["types", "--abstract"], None));
    let with = names(&qom(
        &["types", "--abstract", "--plugin", so.to_str().unwrap()],
        None,
    ));
    assert_eq!(with[..without.len()], without[..]);
    assert_eq!(with[without.len()..], ["example-greeter"]);
    let o = qom(
        &[
            "--plugin",
            so.to_str().unwrap(),
            "properties",
            "example-greeter",
        ],
        None,
    );
    assert!(stdout(&o).contains("\"How many times to say it (at least 1)\""));
}

#[test]
fn a_plugin_serves_over_qmp() {
    let so = example_plugin();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["--plugin", so.to_str().unwrap(), "-qmp", "stdio"])
        .env_remove("QOM_PLUGIN_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            br#"{"execute": "qmp_capabilities"}
{"execute": "object-add", "arguments": {"qom-type": "example-greeter", "id": "g1", "greeting": "Hey", "repeat": 3}}
{"execute": "qom-get", "arguments": {"path": "/objects/g1", "property": "text"}, "id": 7}
{"execute": "qom-set", "arguments": {"path": "g1", "property": "repeat", "value": 1}, "id": 8}
"#,
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let replies: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        replies[3],
        serde_json::json!({"return": "Hey Hey Hey", "id": 7})
    );
    assert_eq!(
        replies[4]["error"]["desc"],
        "cannot change property 'repeat' of example-greeter"
    );
}

#[test]
fn every_so_of_the_plugin_directories_is_loaded_once() {
    let dir = TempDir::new_in("/tmp");
    let so = dir.join("libqom_plugin_example.so");
    std::fs::copy(example_plugin(), &so).unwrap();
    // Not a *.so: ignored, though it would be refused as a plugin.
    std::fs::write(dir.join("README.txt"), "not a plugin\n").unwrap();
    let empty = TempDir::new_in("/tmp");
    let path = std::env::join_paths([empty.path(), dir.path()]).unwrap();
    let o = qom(
        &["-object", "example-greeter,id=e0"],
        Some(Path::new(&path)),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()["e0"]["text"],
        "Hello"
    );
    // The same file from the directory and from --plugin: loaded once (a
    // second registration would fail on a duplicate type).
    let o = qom(
        &["--plugin", so.to_str().unwrap(), "types"],
        Some(dir.path()),
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // Two copies are two plugins registering one type: the second fails,
    // named, and nothing is created.
    let copy = dir.join("zz-copy.so");
    std::fs::copy(&so, &copy).unwrap();
    let o = qom(&["-object", "example-greeter,id=e0"], Some(dir.path()));
    let err = refused(&o, &copy);
    assert_eq!(
        err,
        format!(
            "qom: plugin {}: registration failed: Registering `example-greeter' which already exists\n",
            copy.display()
        )
    );

    let missing = dir.join("no-such-dir");
    let o = qom(&["types"], Some(&missing));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "qom: plugin directory {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

/// Compiles tests/fixtures/foreign_plugin.rs, a library with qom's entry
/// points and another build's stamp.
fn foreign_plugin(dir: &Path) -> PathBuf {
    let so = dir.join("libforeign_plugin.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/foreign_plugin.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "cdylib", "-o"])
        .arg(&so)
        .arg(src)
        .output()
        .expect("rustc runs");
    assert!(out.status.success(), "{}", stderr(&out));
    so
}

#[test]
fn a_plugin_from_another_build_is_refused_before_it_runs() {
    let dir = TempDir::new_in("/tmp");
    let so = foreign_plugin(dir.path());
    let o = qom(&["--plugin", so.to_str().unwrap(), "types"], None);
    // Its registration aborts the process: exit status 1 proves it was
    // never called.
    let err = refused(&o, &so);
    assert!(err.contains("built from a different qom build"), "{err}");
    assert!(
        err.contains("only plugins from the same build can be loaded"),
        "{err}"
    );
    assert!(
        err.contains(
            "plugin stamp 'qom 0.0.0 src 0000000000000000; rustc 0.0.0 (elsewhere); crate id 0'"
        ),
        "{err}"
    );
    assert!(
        err.contains(concat!(
            "qom stamp 'qom ",
            env!("CARGO_PKG_VERSION"),
            " src "
        )),
        "{err}"
    );
    assert!(err.contains("crate id "), "{err}");
    // The stamp the refusal names is the one `qom --version` shows.
    let version = stdout(&qom(&["--version"], None));
    let ours = version
        .lines()
        .find_map(|l| l.strip_prefix("build stamp: "))
        .expect("--version shows the build stamp");
    assert!(err.contains(&format!("qom stamp '{ours}'")), "{err}");

    // From the plugin directory: the same refusal.
    let o = qom(&["types"], Some(dir.path()));
    refused(&o, &so);
}

#[test]
fn files_that_are_no_plugin_are_one_line_errors() {
    let dir = TempDir::new_in("/tmp");
    let text = dir.join("notes.so");
    std::fs::write(
        &text,
        "This is a text file, not a shared library.\n".repeat(40),
    )
    .unwrap();
    let err = refused(
        &qom(&["--plugin", text.to_str().unwrap(), "types"], None),
        &text,
    );
    assert!(err.contains("invalid ELF header"), "{err}");

    let missing = dir.join("missing.so");
    let err = refused(
        &qom(&["--plugin", missing.to_str().unwrap(), "types"], None),
        &missing,
    );
    assert!(
        err.ends_with(": No such file or directory (os error 2)\n"),
        "{err}"
    );

    let err = refused(
        &qom(&["--plugin", dir.path().to_str().unwrap()], None),
        dir.path(),
    );
    assert!(err.ends_with(": not a regular file\n"), "{err}");

    // A real shared library, but not a plugin.
    for libm in [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ] {
        let libm = Path::new(libm);
        if libm.is_file() {
            let err = refused(
                &qom(&["--plugin", libm.to_str().unwrap(), "types"], None),
                libm,
            );
            assert!(err.contains("not a qom plugin"), "{err}");
            break;
        }
    }

    // A bare name is the file in the current directory, never a search of
    // the system's library path.
    let o = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(["--plugin", "libm.so.6", "types"])
        .current_dir(dir.path())
        .env_remove("QOM_PLUGIN_PATH")
        .output()
        .unwrap();
    refused(&o, Path::new("libm.so.6"));
    assert!(stderr(&o).ends_with(": No such file or directory (os error 2)\n"));
}

/// The example plugin built by a separate `cargo build --release` is a
/// different qom build for a test (debug) binary: refused, naming both.
/// Ignored by default: a release build of the plugin's dependencies takes
/// minutes on a small machine (`cargo test -p qom-cli --test plugins --
/// --ignored` runs it).
#[test]
#[ignore]
#[cfg(debug_assertions)]
fn the_example_built_in_release_is_refused_by_a_debug_qom() {
    let target = example_plugin()
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/lib.so")
        .to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "qom-plugin-example",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let so = target.join("release/libqom_plugin_example.so");
    let err = refused(
        &qom(&["--plugin", so.to_str().unwrap(), "types"], None),
        &so,
    );
    assert!(err.contains(" release panic=unwind; crate id "), "{err}");
    assert!(err.contains(" debug panic=unwind; crate id "), "{err}");
}
