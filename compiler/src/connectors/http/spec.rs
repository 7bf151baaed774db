//! The options of `type: http`, for sources and sinks.

use std::collections::BTreeMap;

use crate::spec::Setting;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: http, input: hot, url: \"http://127.0.0.1:8080/in\" }`")]
pub struct HttpSink {
    /// `http://host:port/path` or `https://…`.
    pub url: Setting,
    /// `POST` (default), `PUT` or `PATCH`.
    pub method: Option<String>,
    /// `array` (one JSON array per request, the default for JSON) or `lines` (a record
    /// per line).
    pub encoding: Option<String>,
    /// How long one request may take (default 10s).
    pub timeout: Option<String>,
    /// Extra request headers; values may be `${VAR}`.
    #[serde(default)]
    pub headers: BTreeMap<String, Setting>,
    /// A secret, so only `${VAR}`: sent as `Authorization: Bearer <token>`.
    pub token: Option<Setting>,
    #[serde(default)]
    pub batch: HttpBatch,
    #[serde(default)]
    pub retry: HttpRetry,
}

/// `batch: { max_records: 500, max_bytes: 1MiB, max_wait: 1s }`: a request goes out
/// when any limit is reached.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ max_records: 500, max_bytes: 1MiB, max_wait: 1s }`")]
pub struct HttpBatch {
    pub max_records: Option<u64>,
    pub max_bytes: Option<Setting>,
    pub max_wait: Option<String>,
}

/// `retry: { attempts: 5, backoff: 500ms, max_elapsed: 30s }`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ attempts: 5, backoff: 500ms, max_elapsed: 30s }`")]
pub struct HttpRetry {
    /// Tries in all, the first included.
    pub attempts: Option<u32>,
    /// The first wait; each next one doubles.
    pub backoff: Option<String>,
    /// No try starts later than this after the first.
    pub max_elapsed: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ type: http, address: \"0.0.0.0:8080\", path: /ingest, schema: reading }`")]
pub struct HttpSource {
    /// `host:port` to listen on (default `0.0.0.0:8080`).
    pub address: Option<Setting>,
    /// The one path records are POSTed to (default `/ingest`).
    pub path: Option<String>,
    /// The largest body taken (default 1MiB); a larger one is refused with 413.
    pub max_body: Option<Setting>,
    /// Records read and not yet taken by the pipeline, at most (default 10000); beyond
    /// it, requests are answered 503.
    pub max_pending: Option<u64>,
    /// A secret, so only `${VAR}`: clients must send `Authorization: Bearer <token>`.
    pub token: Option<Setting>,
    #[serde(default)]
    pub metadata: HttpMetadata,
}

/// `metadata: { remote_addr: sender }`: which field receives which piece of a request's
/// metadata.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping like `{ remote_addr: sender }`")]
pub struct HttpMetadata {
    pub remote_addr: Option<String>,
}
