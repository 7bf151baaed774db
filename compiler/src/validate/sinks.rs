//! Sinks: input type, format fit and connection settings.

use super::graph::{Graph, Upstream};
use super::operators::input_record;
use super::sources::{format, HasFormatOptions};
use super::Cx;
use crate::connectors::{Delivery, SinkContext};
use crate::diagnostics::SpecError;
use crate::ir::{IrBuffer, IrDelivery, IrFormat, IrOperator, IrSink, IrSource, SinkInput};
use crate::spec::sinks::{BufferSpec, SinkCommon, WhenFullName};
use crate::spec::size::parse_bytes;
use crate::spec::{FormatName, Setting, Spec};

/// `max_size` when none is given.
pub const DEFAULT_BUFFER_BYTES: u64 = 256 << 20;
/// `fsync` when none is given.
pub const DEFAULT_FSYNC_MS: u64 = 1000;
/// The smallest `max_size`: room for a few records.
pub const MIN_BUFFER_BYTES: u64 = 4 << 10;
use crate::types::Type;

impl HasFormatOptions for SinkCommon {
    fn options(&self) -> (Option<&str>, Option<bool>) {
        (self.delimiter.as_deref(), self.header)
    }
}

/// One entry per spec sink; `None` where it has errors or its inputs do.
pub fn check(
    spec: &Spec,
    graph: &Graph,
    sources: &[Option<IrSource>],
    operators: &[Option<IrOperator>],
    cx: &mut Cx,
) -> Vec<Option<IrSink>> {
    let mut out = Vec::new();
    for (i, named) in spec.sinks.iter().enumerate() {
        let name = named.name.as_str();
        let common = &named.spec.common;
        let format_name = common.format.unwrap_or(FormatName::Json);
        let path = ["sinks", name];
        let Some(format) = format(common, format_name, &path, cx) else {
            if let Some(b) = &common.buffer {
                let _ = check_buffer(name, b, named.spec.kind.delivery(), named.spec.kind.type_name(), cx);
            }
            out.push(None);
            continue;
        };
        let inputs = &graph.sink_inputs[i];
        let kind = &named.spec.kind;
        let delivery = kind.delivery();
        let buffer = common
            .buffer
            .as_ref()
            .map(|b| check_buffer(name, b, delivery, kind.type_name(), cx))
            .transpose();
        let input = if inputs.first() == Some(&Upstream::DeadLetters) {
            if delivery == Delivery::Messages {
                let at = cx.value(&["sinks", name, "input"]);
                cx.error(SpecError::invalid_value(
                    "input",
                    format!(
                        "dead letters are written to a file or stdout sink, not to a `{}` sink",
                        kind.type_name()
                    ),
                    &at,
                    Some("use `type: file` for the dead-letter sink".into()),
                ));
                out.push(None);
                continue;
            }
            if format != IrFormat::Json {
                let at = cx.value(&["sinks", name, "format"]);
                cx.error(SpecError::bad_format_option(
                    "dead letters are written as JSON",
                    &at,
                    "remove `format:` or set `format: json`",
                ));
                out.push(None);
                continue;
            }
            Some(SinkInput::DeadLetters)
        } else {
            input_record(name, &["sinks", name], inputs, sources, operators, cx).map(SinkInput::Records)
        };
        let Some(input) = input else {
            // The input failed its own checks; the options that do not depend on the
            // record are still checked, so their mistakes come in the same run.
            let context = SinkContext {
                pipeline: &spec.name,
                name,
                record: None,
                format,
            };
            kind.check(&context, cx);
            out.push(None);
            continue;
        };
        if let SinkInput::Records(record) = &input {
            let fits = match format {
                IrFormat::Csv { .. } if !record.is_flat() => Err((
                    format!("csv cannot hold the nested or list fields of {}", record.display),
                    "use `format: json`, or `map:` the record to flat fields first".to_string(),
                )),
                IrFormat::Lines if !(record.fields.len() == 1 && record.fields[0].ty == Type::String) => Err((
                    format!(
                        "the lines format writes one string field, but {} has {}",
                        record.display,
                        describe(record)
                    ),
                    "add a `map:` that builds one string field, e.g. `line: concat(device_id, \" \", status)`"
                        .to_string(),
                )),
                _ => Ok(()),
            };
            if let Err((message, help)) = fits {
                let at = cx.value(&["sinks", name, "format"]);
                cx.error(SpecError::bad_format_option(message, &at, help));
                out.push(None);
                continue;
            }
        }
        // A message is one record: a CSV header line has no place in it.
        let with_header = delivery == Delivery::Messages
            && matches!(format, IrFormat::Csv { header: true, .. })
            && common.header.is_some();
        if with_header {
            let at = cx.value(&["sinks", name, "header"]);
            cx.error(SpecError::bad_format_option(
                format!(
                    "each `{}` message is one CSV row, without a header line",
                    kind.type_name()
                ),
                &at,
                "remove `header:`",
            ));
        }
        let record = match &input {
            SinkInput::Records(record) => Some(&**record),
            SinkInput::DeadLetters => None,
        };
        let context = SinkContext {
            pipeline: &spec.name,
            name,
            record,
            format,
        };
        let checked = match kind.check(&context, cx) {
            Some(checked) if !with_header => checked,
            _ => {
                out.push(None);
                continue;
            }
        };
        let Ok(buffer) = buffer else {
            out.push(None);
            continue;
        };
        let (delivery, format) = match (delivery, checked.address) {
            (Delivery::Messages, address) => {
                let format = match format {
                    IrFormat::Csv { delimiter, .. } => IrFormat::Csv {
                        delimiter,
                        header: false,
                    },
                    other => other,
                };
                (IrDelivery::Messages(address.unwrap_or_default()), format)
            }
            (Delivery::Stream, _) => (IrDelivery::Stream, format),
        };
        out.push(Some(IrSink {
            name: name.to_string(),
            stem: cx.names.stem(name),
            kind: checked.kind,
            delivery,
            format,
            input,
            buffer,
        }));
    }
    out
}

/// Checks a sink's `buffer:`: only where messages are delivered; `Err` once reported.
fn check_buffer(name: &str, b: &BufferSpec, delivery: Delivery, type_name: &str, cx: &mut Cx) -> Result<IrBuffer, ()> {
    if delivery != Delivery::Messages {
        let at = cx.key(&["sinks", name, "buffer"]);
        cx.error(SpecError::buffer_not_supported(type_name, &at));
        return Err(());
    }
    let max_bytes = match &b.max_size {
        None => Some(DEFAULT_BUFFER_BYTES),
        Some(Setting(text)) => {
            let at = cx.value(&["sinks", name, "buffer", "max_size"]);
            if text.contains("${") {
                cx.error(SpecError::compiled_in("max_size", text, &at, None));
                None
            } else {
                let parsed = parse_bytes(text).and_then(|bytes| match bytes {
                    0 => Err("must be more than 0".to_string()),
                    small if small < MIN_BUFFER_BYTES => Err("must be at least 4KiB".to_string()),
                    bytes => Ok(bytes),
                });
                match parsed {
                    Ok(bytes) => Some(bytes),
                    Err(reason) => {
                        cx.error(SpecError::bad_size(text, &reason, &at));
                        None
                    }
                }
            }
        }
    };
    let fsync_ms = match &b.fsync {
        None => Some(Some(DEFAULT_FSYNC_MS)),
        Some(Setting(text)) if text.trim() == "always" => Some(None),
        Some(Setting(text)) => cx
            .duration(&["sinks", name, "buffer", "fsync"], text, true)
            .map(|ms| Some(ms.unsigned_abs())),
    };
    match (max_bytes, fsync_ms) {
        (Some(max_bytes), Some(fsync_ms)) => Ok(IrBuffer {
            max_bytes,
            drop_oldest: b.when_full == Some(WhenFullName::DropOldest),
            fsync_ms,
        }),
        _ => Err(()),
    }
}

fn describe(record: &crate::types::RecordType) -> String {
    let fields: Vec<String> = record.fields.iter().map(|f| format!("{}: {}", f.name, f.ty)).collect();
    format!("{{ {} }}", fields.join(", "))
}
