//! What the consumer and the producer share: building a client from properties, and
//! librdkafka's logs and errors routed to the pipeline's log.

use crate::errors::{RunError, StartError};
use crate::log;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Mutex;

/// librdkafka properties, `(name, value)`, applied in order (a later one wins).
pub type Properties = Vec<(&'static str, String)>;

/// A client configuration: rill's defaults, then the given properties.
pub fn config(defaults: &[(&str, &str)], properties: &Properties) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (name, value) in defaults {
        config.set(*name, *value);
    }
    for (name, value) in properties {
        config.set(*name, value.as_str());
    }
    config.set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// A client creation failure, naming the component (librdkafka names the property).
pub fn start_error(component: &str, e: KafkaError) -> StartError {
    StartError::new(format!("{component}: cannot create the Kafka client: {e}"))
}

/// Routes one of librdkafka's own log lines to the pipeline log: warnings as warnings,
/// the rest at debug level (errors also reach [`log_error`], logged there once).
/// Called by the clients' `ClientContext::log`.
pub fn log_line(component: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    let fields = [
        ("component", component.into()),
        ("facility", facility.into()),
        ("message", message.into()),
    ];
    match level {
        RDKafkaLogLevel::Warning => log::warn("kafka client warning", &fields),
        _ => log::debug("kafka client", &fields),
    }
}

/// Routes a client-level error to the log. librdkafka keeps retrying, so most (a broker
/// down for a while) are warnings; a failed TLS handshake is kept in `fatal` too: an
/// untrusted or mismatched certificate does not fix itself, so the run ends on it.
/// Called by the clients' `ClientContext::error`.
pub fn log_error(component: &str, error: KafkaError, reason: &str, fatal: &Fatal) {
    log::warn(
        "kafka client error",
        &[
            ("component", component.into()),
            ("error", error.to_string().into()),
            ("reason", reason.into()),
        ],
    );
    // librdkafka reports a disconnect during the handshake as a transport error, not
    // as `SSL`: only a real TLS failure (verification, protocol, key) lands here.
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::SSL) {
        if let Ok(mut first) = fatal.0.lock() {
            first.get_or_insert_with(|| {
                format!(
                    "{component}: TLS with the Kafka broker failed: {reason} \
                     (check the `tls:` options: `ca` must be the CA that signed the broker's certificate)"
                )
            });
        }
    }
}

/// The first error of a client that retrying cannot fix, set from librdkafka's
/// callbacks and turned into a [`RunError`] on the pipeline's thread.
#[derive(Debug, Default)]
pub struct Fatal(Mutex<Option<String>>);

impl Fatal {
    /// `Err` once a fatal error was reported.
    pub fn check(&self) -> Result<(), RunError> {
        match self.0.lock().ok().and_then(|first| first.clone()) {
            Some(message) => Err(RunError::new(message)),
            None => Ok(()),
        }
    }
}
