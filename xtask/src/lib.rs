//! Project tasks, run as `cargo xtask <task>`.
pub mod tools;
