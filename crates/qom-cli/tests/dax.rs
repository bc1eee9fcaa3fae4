//! The `qom` binary on a real DAX file system, inside the emulated-NVDIMM
//! guest of `cargo xtask dax-vm` (docs/dax-vm.md). The runner packs the
//! statically built `qom` at the path cargo gave it, so
//! `CARGO_BIN_EXE_qom` is valid in the guest too. Outside the guest
//! (`DAX_DIR` unset) the tests return at once.

use qom_test_support::guest_dir;
use std::process::{Command, Output};

fn qom(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .args(args)
        .output()
        .expect("running qom");
    println!(
        "$ qom {}\n{}{}(exit {:?})",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    out
}

#[test]
fn qom_object_sync_on_on_dax() {
    let Some(dax) = guest_dir("DAX_DIR") else {
        return;
    };
    let f = dax.join("qom-cli-sync-on.dat");
    let _ = std::fs::remove_file(&f);
    let spec = format!(
        "memory-backend-file,id=m,size=16M,mem-path={},share=on,sync=on",
        f.display()
    );
    let out = qom(&["-object", &spec]);
    assert!(out.status.success(), "qom failed on {}", f.display());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r#""sync": "on""#), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["m"]["sync"], "on");
    assert_eq!(v["m"]["share"], true);
    assert_eq!(v["m"]["size"], 16 << 20);
    // the backend created the file; qom exits without deleting it
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 16 << 20);
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn qom_object_sync_on_refused_on_tmpfs() {
    let Some(nodax) = guest_dir("NODAX_DIR") else {
        return;
    };
    let f = nodax.join("qom-cli-sync-on.dat");
    let spec = format!(
        "memory-backend-file,id=m,size=16M,mem-path={},share=on,sync=on",
        f.display()
    );
    let out = qom(&["-object", &spec]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("MAP_SYNC was requested (sync=on) but cannot be used for backend file")
            && stderr.contains("Operation not supported"),
        "{stderr}"
    );
    assert!(!f.exists());
}
