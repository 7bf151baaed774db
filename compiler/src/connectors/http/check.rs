//! HTTP options → the IR: URLs and paths, sizes, durations, headers, the token.

use super::spec::{HttpBatch, HttpMetadata, HttpRetry, HttpSink, HttpSource};
use super::{IrHttpSink, IrHttpSource};
use crate::connectors::metadata::{wanted_of, with_metadata, MetaDef, MetaType};
use crate::connectors::{CheckedSink, CheckedSource, IrSinkKind, IrSourceKind, SinkContext, SourceContext};
use crate::diagnostics::SpecError;
use crate::ir::IrFormat;
use crate::spec::Setting;
use crate::validate::Cx;

/// What a request offers besides its records.
const METADATA: &[MetaDef] = &[MetaDef {
    name: "remote_addr",
    ty: MetaType::Text,
}];

pub fn source(h: &HttpSource, source: &SourceContext<'_>, cx: &mut Cx) -> Option<CheckedSource> {
    let name = source.name;
    let at = |option: &'static str| ["sources", name, option];
    let format_ok = source.format == IrFormat::Json;
    if !format_ok {
        let span = cx.value(&at("format"));
        cx.error(SpecError::invalid_value(
            "format",
            "an HTTP source takes JSON: JSON lines, or a JSON array of records",
            &span,
            Some("remove `format:` or set `format: json`".into()),
        ));
    }
    let default_address = Setting("0.0.0.0:8080".into());
    let address = h.address.as_ref().unwrap_or(&default_address);
    let address_ok = listen_address(&at("address"), address, cx);
    let address = cx.setting(
        &at("address"),
        "address",
        &address.0,
        "where the HTTP source listens, host:port",
    );
    let token = h.token.as_ref().map(|t| {
        cx.setting(
            &at("token"),
            "token",
            &t.0,
            "bearer token HTTP clients must send (Authorization: Bearer)",
        )
    });
    let path = ingest_path(&at("path"), h.path.as_deref(), cx);
    let max_body = cx.size(&at("max_body"), h.max_body.as_ref(), 1 << 20);
    let max_pending = match h.max_pending {
        Some(0) => {
            let span = cx.value(&at("max_pending"));
            cx.error(SpecError::invalid_value(
                "max_pending",
                "the queue needs room for at least one record",
                &span,
                Some("`max_pending: 10000` (the default)".into()),
            ));
            None
        }
        Some(n) => Some(n),
        None => Some(10_000),
    };
    let HttpMetadata { remote_addr } = &h.metadata;
    let wanted = wanted_of(name, METADATA, &[remote_addr.as_ref()]);
    let metadata = with_metadata(name, source.record, wanted, cx);
    let (path, max_body, max_pending, (record, metadata)) = (path?, max_body?, max_pending?, metadata?);
    if !(format_ok && address_ok) {
        return None;
    }
    cx.features.insert("http");
    Some(CheckedSource {
        kind: IrSourceKind::Http(IrHttpSource {
            address,
            token,
            path,
            max_body,
            max_pending,
        }),
        record,
        metadata,
        // A request is answered once its records are safe.
        commits: true,
    })
}

/// `host:port`, where the value is known now.
fn listen_address(path: &[&str], address: &Setting, cx: &mut Cx) -> bool {
    let known = match address.sole_default() {
        Some(default) => Some(default),
        None if address.is_template() => None,
        None => Some(address.0.as_str()),
    };
    let Some(text) = known.map(str::trim) else {
        return true;
    };
    let port_ok = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if port_ok {
        return true;
    }
    let span = cx.value(path);
    cx.error(SpecError::invalid_value(
        "address",
        format!("`{text}` is not a `host:port` to listen on"),
        &span,
        Some("`0.0.0.0:8080` (every interface), `127.0.0.1:8080` (this machine only)".into()),
    ));
    false
}

/// The path requests go to: starts with `/`, no query, no white space; compiled in.
fn ingest_path(path: &[&str], given: Option<&str>, cx: &mut Cx) -> Option<String> {
    let Some(text) = given else {
        return Some("/ingest".into());
    };
    let problem = if !text.starts_with('/') {
        "a path starts with `/`"
    } else if text.contains(['?', '#']) {
        "a path has no query or fragment (`?`, `#`)"
    } else if text.contains(|c: char| c.is_whitespace() || c.is_control()) {
        "a path has no white space"
    } else if text.contains("${") {
        "the path is compiled in: `${VAR}` is not expanded here"
    } else {
        return Some(text.to_string());
    };
    let span = cx.value(path);
    cx.error(SpecError::invalid_value(
        "path",
        problem,
        &span,
        Some("`/ingest`, `/v1/events`".into()),
    ));
    None
}

const METHODS: &[&str] = &["POST", "PUT", "PATCH"];
const ENCODINGS: &[&str] = &["array", "lines"];

/// Headers the sink sets itself.
const OWN_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

pub fn sink(h: &HttpSink, sink: &SinkContext<'_>, cx: &mut Cx) -> Option<CheckedSink> {
    let name = sink.name;
    let at = |option: &'static str| ["sinks", name, option];
    let url_ok = url_scheme(&at("url"), &h.url, cx);
    let url = cx.setting(
        &at("url"),
        "url",
        &h.url.0,
        "where the HTTP sink sends its batches, http(s)://host:port/path",
    );
    let token = h.token.as_ref().map(|t| {
        cx.setting(
            &at("token"),
            "token",
            &t.0,
            "bearer token the HTTP sink sends (Authorization: Bearer)",
        )
    });
    let method = match h.method.as_deref().map(str::trim) {
        None => Some("POST"),
        Some(m) => choice(&at("method"), "method", &m.to_ascii_uppercase(), METHODS, cx),
    };
    let default_encoding = if sink.format == IrFormat::Json {
        "array"
    } else {
        "lines"
    };
    let encoding = match h.encoding.as_deref() {
        None => Some(default_encoding),
        Some(e) => choice(&at("encoding"), "encoding", e, ENCODINGS, cx),
    };
    let encoding = encoding.and_then(|e| {
        if e == "array" && sink.format != IrFormat::Json {
            let span = cx.value(&at("encoding"));
            cx.error(SpecError::invalid_value(
                "encoding",
                "a JSON array holds JSON records only",
                &span,
                Some("use `encoding: lines`, or `format: json`".into()),
            ));
            return None;
        }
        Some(e)
    });
    let headers = headers(name, h, cx);
    let timeout = duration_or(&at("timeout"), h.timeout.as_deref(), 10_000, cx);
    let batch = batch(name, &h.batch, cx);
    let retry = retry(name, &h.retry, cx);
    let (method, encoding, headers, timeout_ms, batch, retry) =
        (method?, encoding?, headers?, timeout?, batch?, retry?);
    if !url_ok {
        return None;
    }
    cx.features.insert("http");
    let (max_records, max_bytes, max_wait_ms) = batch;
    let (attempts, backoff_ms, max_retry_ms) = retry;
    Some(CheckedSink {
        kind: IrSinkKind::Http(IrHttpSink {
            url,
            token,
            headers,
            method,
            encoding,
            timeout_ms,
            max_records,
            max_bytes,
            max_wait_ms,
            attempts,
            backoff_ms,
            max_retry_ms,
        }),
        address: Some(Default::default()),
    })
}

/// The URL's scheme, where its value is known now (a literal, or the default of a
/// sole `${VAR:-default}`).
fn url_scheme(path: &[&str], url: &Setting, cx: &mut Cx) -> bool {
    let known = match url.sole_default() {
        Some(default) => Some(default),
        None if url.is_template() => None,
        None => Some(url.0.as_str()),
    };
    let Some(text) = known.map(str::trim) else {
        return true;
    };
    let host = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    if host.is_some_and(|h| !h.is_empty()) {
        return true;
    }
    let span = cx.value(path);
    cx.error(SpecError::invalid_value(
        "url",
        format!("`{text}` is not an http:// or https:// URL with a host"),
        &span,
        Some("`http://127.0.0.1:8080/ingest`, or `https://host/path` for TLS".into()),
    ));
    false
}

fn choice(
    path: &[&str],
    option: &str,
    given: &str,
    valid: &'static [&'static str],
    cx: &mut Cx,
) -> Option<&'static str> {
    if let Some(v) = valid.iter().find(|v| **v == given) {
        return Some(v);
    }
    let span = cx.value(path);
    cx.error(SpecError::invalid_value(
        option,
        format!("`{given}` is not one of {}", valid.join(", ")),
        &span,
        Some(crate::diagnostics::choices_help(given, valid, option)),
    ));
    None
}

/// Header names are tokens (RFC 9110); the sink's own headers cannot be replaced.
fn headers(sink: &str, h: &HttpSink, cx: &mut Cx) -> Option<Vec<(String, String)>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, value) in &h.headers {
        let path = ["sinks", sink, "headers", name.as_str()];
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let lower = name.to_ascii_lowercase();
        let problem = if !token {
            Some((
                format!("`{name}` is not a header name"),
                "a header name is letters, digits and `-`: `X-Source: edge-7`",
            ))
        } else if OWN_HEADERS.contains(&lower.as_str()) {
            Some((
                format!("the sink sets `{name}` itself"),
                "a bearer token goes in `token: ${TOKEN}`; the body's type follows `encoding:`",
            ))
        } else {
            None
        };
        if let Some((problem, help)) = problem {
            let span = cx.key(&path);
            cx.error(SpecError::invalid_value("headers", problem, &span, Some(help.into())));
            ok = false;
            continue;
        }
        let key = cx.setting(&path, &lower, &value.0, "an HTTP header's value");
        out.push((lower, key));
    }
    ok.then_some(out)
}

fn duration_or(path: &[&str], text: Option<&str>, default_ms: u64, cx: &mut Cx) -> Option<u64> {
    match text {
        None => Some(default_ms),
        Some(text) => cx.duration(path, text, true).map(i64::unsigned_abs),
    }
}

/// `(max_records, max_bytes, max_wait_ms)`.
fn batch(sink: &str, b: &HttpBatch, cx: &mut Cx) -> Option<(u64, u64, u64)> {
    let at = |option: &'static str| ["sinks", sink, "batch", option];
    let records = match b.max_records {
        Some(0) => {
            let span = cx.value(&at("max_records"));
            cx.error(SpecError::invalid_value(
                "max_records",
                "a batch needs room for at least one record",
                &span,
                Some("`max_records: 500` (the default)".into()),
            ));
            None
        }
        Some(n) => Some(n.min(100_000)),
        None => Some(500),
    };
    let bytes = cx.size(&at("max_bytes"), b.max_bytes.as_ref(), 1 << 20);
    let wait = match &b.max_wait {
        None => Some(1000),
        Some(text) => cx.duration(&at("max_wait"), text, false).map(i64::unsigned_abs),
    };
    Some((records?, bytes?, wait?))
}

/// `(attempts, backoff_ms, max_elapsed_ms)`.
fn retry(sink: &str, r: &HttpRetry, cx: &mut Cx) -> Option<(u32, u64, u64)> {
    let at = |option: &'static str| ["sinks", sink, "retry", option];
    let attempts = match r.attempts {
        Some(0) => {
            let span = cx.value(&at("attempts"));
            cx.error(SpecError::invalid_value(
                "attempts",
                "at least one try is needed",
                &span,
                Some("`attempts: 1` never retries; `5` is the default".into()),
            ));
            None
        }
        Some(n) => Some(n),
        None => Some(5),
    };
    let backoff = duration_or(&at("backoff"), r.backoff.as_deref(), 500, cx);
    let elapsed = duration_or(&at("max_elapsed"), r.max_elapsed.as_deref(), 30_000, cx);
    Some((attempts?, backoff?, elapsed?))
}
