//! `rill_runtime`: the small crate every rill-generated pipeline binary links.
//!
//! The compiler generates thin glue (record structs, flow functions, a `Pipeline`
//! struct, `main`) against [`codegen`], the one module that is the contract between
//! compiler and runtime. Everything generic — sources, formats, sinks, settings, the
//! main loop, logs, signals — lives here, precompiled once and shared by every pipeline,
//! which keeps generated code small and quick to build.
//!
//! Principles: a bad record is a value (a dead letter), never a crash; records move in
//! reused batches; dynamic dispatch happens per batch, never per record.

pub mod acks;
pub mod aggregates;
pub mod batch;
pub mod buffer;
pub mod cli;
pub mod codegen;
pub mod connectors;
pub mod dead_letter;
pub mod driver;
pub mod errors;
pub mod fns;
pub mod formats;
pub mod internal_events;
pub mod joins;
pub mod log;
pub mod metrics;
pub mod patterns;
mod prefetch;
pub mod settings;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod time;
pub mod wake;
pub mod windows;
pub mod workers;

#[cfg(test)]
mod test_util;
