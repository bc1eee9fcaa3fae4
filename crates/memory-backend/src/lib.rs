#![deny(unsafe_code)]
//! memory-backend: guest RAM for QEMU-style memory backend objects.
//!
//! [`host`] is the host side: it reserves address space, maps a file at an
//! aligned address (optionally with `MAP_SYNC`), and offers madvise, NUMA
//! binding, preallocation and persistence on the resulting [`host::Mapping`].
//! The QOM types (`memory-backend`) are built on top of it.

pub mod host;
