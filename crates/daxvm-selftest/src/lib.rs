//! Temporary self-test of `cargo xtask dax-vm`; the code is in `tests/dax.rs`.
//! Delete this crate once the memory-backend crates have `dax` tests.
