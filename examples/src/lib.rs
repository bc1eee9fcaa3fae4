//! Programs a VMM author can start from; see `README.md` beside this crate
//! and run them with `cargo run -p qom-examples --example NAME`.
