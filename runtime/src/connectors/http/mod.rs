//! HTTP, behind the `http` cargo feature: pipelines without it do not link the client.
//!
//! - [`HttpSource`]: an ingest server (`source.rs`; one connection's request and answer
//!   in `server.rs`, the body's records in `body.rs`) answering `202` once a request's
//!   records are safe downstream, through the pipeline's [`crate::acks::Acks`].
//! - [`HttpSink`]: a [`crate::sinks::MessageSink`] POSTing batches of records (a JSON
//!   array or JSON lines) from a thread of its own, through `ureq` (blocking, small,
//!   TLS through rustls), with retries and backoff (`batching.rs`: batch cutting and the
//!   retry schedule, pure and unit-tested).

mod batching;
mod body;
mod server;
mod sink;
mod source;

pub use sink::{HttpPost, HttpSink};
pub use source::{HttpListen, HttpSource};
