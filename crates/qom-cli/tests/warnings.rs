//! The libraries log QEMU's warnings; the `qom` binary's logger prints
//! them on stderr exactly as the library used to print them, and as QEMU
//! does: the raw "Warning: ..." line as it is, the `warn_report` line after
//! "PROG: warning: ", where PROG is the file name the program was run as.

use std::process::{Command, Stdio};

#[test]
fn pmem_without_dax_prints_qemus_two_warning_lines() {
    let dir = std::path::Path::new("/dev/shm").join(format!("qom-cli-warn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("pmem");
    let path = f.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qom"))
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=m,size=2M,mem-path={path},share=on,pmem=on"
        ))
        .stdin(Stdio::null())
        .output()
        .expect("qom runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "Warning: requesting persistence across crashes for backend file {path} failed. \
             Proceeding without persistence, data might become corrupted in case of host crash.\n\
             qom: warning: Using non DAX backing file with 'pmem=on' option is deprecated\n"
        )
    );
}
