//! HTTP, behind the `http` cargo feature: pipelines without it do not link the client.
//!
//! - [`HttpSink`]: a [`crate::sinks::MessageSink`] POSTing batches of records (a JSON
//!   array or JSON lines) from a thread of its own, through `ureq` (blocking, small,
//!   TLS through rustls), with retries and backoff (`batching.rs`: batch cutting and the
//!   retry schedule, pure and unit-tested).

mod batching;
mod sink;

pub use sink::{HttpPost, HttpSink};
