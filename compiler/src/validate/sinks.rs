//! Sinks: input type, format fit and connection settings.

use super::graph::{Graph, Upstream};
use super::operators::input_record;
use super::sources::{format, HasFormatOptions};
use super::{kafka, Cx};
use crate::diagnostics::SpecError;
use crate::ir::{IrFormat, IrOperator, IrSink, IrSinkKind, IrSource, SinkInput};
use crate::spec::sinks::SinkCommon;
use crate::spec::{FormatName, SinkKind, Spec};
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
            out.push(None);
            continue;
        };
        let inputs = &graph.sink_inputs[i];
        let input = if inputs.first() == Some(&Upstream::DeadLetters) {
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
            input_record(name, "sinks", inputs, sources, operators, cx).map(SinkInput::Records)
        };
        let Some(input) = input else {
            // The input failed its own checks; the options that do not depend on the
            // record are still checked, so their mistakes come in the same run.
            if let SinkKind::Kafka(k) = &named.spec.kind {
                kafka::sink(name, k, None, cx);
            }
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
        let kind = match &named.spec.kind {
            SinkKind::Stdout(_) => IrSinkKind::Stdout,
            SinkKind::File(f) => {
                let path_key = cx.setting(&["sinks", name, "path"], "path", &f.path.0, "path of the file to write");
                IrSinkKind::File {
                    path_key,
                    append: f.append,
                }
            }
            SinkKind::Kafka(k) => {
                let with_header = matches!(format, IrFormat::Csv { header: true, .. }) && common.header.is_some();
                if with_header {
                    let at = cx.value(&["sinks", name, "header"]);
                    cx.error(SpecError::bad_format_option(
                        "each Kafka message is one CSV row, without a header line",
                        &at,
                        "remove `header:`",
                    ));
                }
                match kafka::sink(name, k, Some(&input), cx) {
                    Some(kind) if !with_header => kind,
                    _ => {
                        out.push(None);
                        continue;
                    }
                }
            }
        };
        let format = match (&kind, format) {
            (IrSinkKind::Kafka { .. }, IrFormat::Csv { delimiter, .. }) => IrFormat::Csv {
                delimiter,
                header: false,
            },
            (_, format) => format,
        };
        out.push(Some(IrSink {
            name: name.to_string(),
            stem: cx.names.stem(name),
            kind,
            format,
            input,
        }));
    }
    out
}

fn describe(record: &crate::types::RecordType) -> String {
    let fields: Vec<String> = record.fields.iter().map(|f| format!("{}: {}", f.name, f.ty)).collect();
    format!("{{ {} }}", fields.join(", "))
}
