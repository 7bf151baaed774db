//! The metrics and health endpoint of a generated binary (`--metrics-addr`).
//!
//! A small HTTP server (tiny_http) on its own thread reads the one registry,
//! [`Events`], and answers `GET /metrics` with Prometheus text exposition
//! ([`exposition`]) and `GET /health` with a JSON verdict ([`health`]). The pipeline's
//! thread never waits for it: everything it reads is atomics (and, for a source's
//! connection, a short lock taken only when that state changes). Without the option,
//! nothing listens.

pub mod exposition;
pub mod health;
mod process;

use crate::driver::PipelineInfo;
use crate::errors::StartError;
use crate::internal_events::Events;
use crate::log;
use std::net::TcpListener;

/// The `Content-Type` of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` (a bad address or a port in use is a start error) and serves the
/// endpoint on a thread of its own for the rest of the process.
pub fn serve(addr: &str, events: &Events, info: &'static PipelineInfo) -> Result<(), StartError> {
    let listener =
        TcpListener::bind(addr).map_err(|e| StartError::new(format!("cannot serve metrics on `{addr}`: {e}")))?;
    let local = listener
        .local_addr()
        .map_or_else(|_| addr.to_owned(), |a| a.to_string());
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| StartError::new(format!("cannot serve metrics on `{addr}`: {e}")))?;
    let events = events.clone();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = respond(request.method(), request.url(), &events, info);
                // A client that went away is its own problem.
                let _ = request.respond(response);
            }
        })
        .map_err(|e| StartError::new(format!("cannot start the metrics thread: {e}")))?;
    log::info("metrics endpoint listening", &[("address", local.into())]);
    Ok(())
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn respond(method: &tiny_http::Method, url: &str, events: &Events, info: &PipelineInfo) -> Response {
    let path = url.split_once('?').map_or(url, |(path, _)| path);
    let get = matches!(method, tiny_http::Method::Get | tiny_http::Method::Head);
    match (path, get) {
        ("/metrics", true) => with_type(
            tiny_http::Response::from_string(exposition::render(events, info)),
            TEXT_FORMAT,
        ),
        ("/health", true) => {
            let verdict = health::check(events);
            let code = if verdict.healthy { 200 } else { 503 };
            with_type(
                tiny_http::Response::from_string(verdict.body.to_string()),
                "application/json",
            )
            .with_status_code(code)
        }
        ("/metrics" | "/health", false) => {
            with_type(tiny_http::Response::from_string("only GET\n"), "text/plain").with_status_code(405)
        }
        _ => with_type(
            tiny_http::Response::from_string("not found: try /metrics or /health\n"),
            "text/plain",
        )
        .with_status_code(404),
    }
}

fn with_type(response: Response, content_type: &str) -> Response {
    match tiny_http::Header::from_bytes("Content-Type", content_type) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}
