//! What the consumer and the producer share: building a client from properties, and
//! librdkafka's logs and errors routed to the pipeline's log.

use crate::errors::StartError;
use crate::log;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;

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

/// Routes a client-level error (a broker down, an authentication failure) to the log:
/// librdkafka keeps retrying, so these are warnings, not failures of the run.
pub fn log_error(component: &str, error: KafkaError, reason: &str) {
    log::warn(
        "kafka client error",
        &[
            ("component", component.into()),
            ("error", error.to_string().into()),
            ("reason", reason.into()),
        ],
    );
}
