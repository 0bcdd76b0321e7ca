//! This crate holds only tests and benchmarks; see `tests/main.rs` and `benches/`.
