#![forbid(unsafe_code)]
//! memory-backend-file: guest RAM backed by a file (QEMU's
//! `memory-backend-file`), including the `sync=on|off|auto` property that
//! maps with `MAP_SYNC` on DAX files.
//!
//! [`file`](mod@file) is the file side: open or create the backing file, check sizes
//! and alignment with QEMU's messages, and map it through
//! [`memory_backend::host`].

pub mod file;
