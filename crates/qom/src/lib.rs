#![forbid(unsafe_code)]
//! qom: a QEMU Object Model in Rust.

pub mod error;
pub mod value;

pub use error::{Error, ErrorClass, LockStyle, Result};
