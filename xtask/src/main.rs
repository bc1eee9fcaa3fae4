//! `cargo xtask`: project automation (CI checks, benchmarks, the DAX guest).

mod artifacts;
mod bench;
mod ci;
mod dax_vm;
mod fuzz;
mod nightly;
mod oracle;
mod public_api;
mod release;
mod sanitize;
mod soak;

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The workspace root: xtask lives one level below it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_else(|| "help".to_owned());
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "bench" => bench::run(&rest),
        "ci" => ci::run(&rest),
        "dax-vm" => dax_vm::run(&rest),
        "fuzz" => fuzz::run(&rest),
        "msrv" => release::msrv(),
        "package" => release::package(),
        "oracle" => oracle::run(&rest),
        "public-api" => public_api::run(&rest),
        "python-client" => ci::ensure_python_client(),
        "sanitize" => sanitize::run(&rest),
        "soak" => soak::run(&rest),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => {
            print_help();
            bail!("unknown task '{other}'")
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask TASK\n\n\
         Tasks:\n  \
         bench NAME [OPTIONS]    whole-process benchmarks (`bench help` lists them)\n  \
         ci                      fmt check, clippy -D warnings, tests, docs (what CI runs)\n  \
         dax-vm [OPTIONS] [FILTER]  run the DAX tests inside an emulated-NVDIMM guest\n  \
         fuzz [--seconds N | --runs N] [--no-trace-compares] [TARGET...]  run the libFuzzer targets of fuzz/ (nightly)\n  \
         msrv                    the declared rust-version against the lock file, then cargo check with it\n  \
         package                 cargo package --no-verify of every packageable crate\n  \
         oracle record [--qemu PATH] [--out DIR]  record QEMU's answers into tests/oracle/qemu-<version>/\n  \
         python-client           the venv with QEMU's Python QMP client that the end-to-end tests use\n  \
         public-api [--bless]    compare each library crate's public API with api/CRATE.txt\n  \
         sanitize [asan|tsan|valgrind|all]  tests under ASan/TSan (nightly) and valgrind; not in CI\n  \
         soak [--seconds N]      eight QMP clients against one qom server\n"
    );
}
