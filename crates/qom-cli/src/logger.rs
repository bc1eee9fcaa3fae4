//! The logger of the `qom` binary. Library crates print nothing: they
//! report warnings through the `log` facade, and this logger prints them on
//! stderr as QEMU prints the same messages, byte for byte:
//!
//! - a record with target [`memory_backend_file::RAW_WARNING_TARGET`] is a
//!   whole QEMU line (`perror`-style, or a raw "Warning: ..." line) and is
//!   printed as it is;
//! - any other warning is a `warn_report` line: `PROG: warning: TEXT`;
//! - an error is an `error_report` line: `PROG: TEXT`.
//!
//! Levels below `Warn` are not printed.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Prints records on stderr the QEMU way, with the program name as the
/// command line gave it (`prog_name` in main.rs).
struct QemuStyleLogger {
    prog: String,
}

impl Log for QemuStyleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Warn
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prog = &self.prog;
        let args = record.args();
        let mut err = std::io::stderr().lock();
        // As eprintln! did, one write of the whole line; a closed stderr
        // is not worth dying for.
        let _ = if record.target() == memory_backend_file::RAW_WARNING_TARGET {
            writeln!(err, "{args}")
        } else if record.level() == Level::Error {
            writeln!(err, "{prog}: {args}")
        } else {
            writeln!(err, "{prog}: warning: {args}")
        };
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger (once; a second call changes nothing).
pub fn install(prog: &str) {
    let logger = QemuStyleLogger {
        prog: prog.to_owned(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(LevelFilter::Warn);
    }
}
