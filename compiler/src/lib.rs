//! rill: compile a YAML streaming pipeline spec into one native binary.
//!
//! The stages, each its own module with plain data between them:
//! [`spec`] (parse) → [`validate`] (check, build the [`ir`]) → [`codegen`]
//! (Rust via `quote`) → [`build`] (cargo, with one shared target directory).

pub mod diagnostics;
pub mod spec;
pub mod expr;
pub mod types;
