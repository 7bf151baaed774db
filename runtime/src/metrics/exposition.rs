//! Prometheus text exposition (format 0.0.4) of the registry.
//!
//! One family per metric, each with `# HELP` and `# TYPE`, one sample per component
//! that has it, labelled `component="sources.x"` (the name used in logs and dead
//! letters). Which components a family covers follows the section of the name: record
//! counters for every component, state and watermark for `windows.*`/`tables.*`, bytes
//! read for `sources.*`, delivery failures and queue length for `sinks.*`.

use super::process;
use crate::driver::PipelineInfo;
use crate::internal_events::{CounterSnapshot, Events};
use std::fmt::Write;

/// Which components a family has samples for.
#[derive(Clone, Copy)]
enum Covers {
    All,
    Sources,
    Sinks,
    Stateful,
}

impl Covers {
    fn includes(self, component: &str) -> bool {
        let section = component.split_once('.').map_or(component, |(s, _)| s);
        match self {
            Covers::All => true,
            Covers::Sources => section == "sources",
            Covers::Sinks => section == "sinks",
            Covers::Stateful => section == "windows" || section == "tables",
        }
    }
}

/// A sample's value; `None` leaves the component out of the family.
type Value = fn(&CounterSnapshot, now_ms: i64) -> Option<f64>;

/// Every per-component family: name, type, help, which components, value.
const FAMILIES: &[(&str, &str, &str, Covers, Value)] = &[
    (
        "rill_records_received_total",
        "counter",
        "Records that entered the component.",
        Covers::All,
        |s, _| Some(s.received as f64),
    ),
    (
        "rill_records_sent_total",
        "counter",
        "Records the component passed on (a sink: written or confirmed by its broker).",
        Covers::All,
        |s, _| Some(s.sent as f64),
    ),
    (
        "rill_records_filtered_total",
        "counter",
        "Records a filter did not let through.",
        Covers::All,
        |s, _| Some(s.filtered as f64),
    ),
    (
        "rill_records_dead_lettered_total",
        "counter",
        "Bad records sent to the dead-letter output.",
        Covers::All,
        |s, _| Some(s.dead_lettered as f64),
    ),
    (
        "rill_records_dropped_total",
        "counter",
        "Bad or undeliverable records dropped.",
        Covers::All,
        |s, _| Some(s.dropped as f64),
    ),
    (
        "rill_records_aggregated_total",
        "counter",
        "Records a window or table folded into its state.",
        Covers::Stateful,
        |s, _| Some(s.aggregated as f64),
    ),
    (
        "rill_records_emitted_total",
        "counter",
        "Results a window or table handed downstream.",
        Covers::Stateful,
        |s, _| Some(s.emitted as f64),
    ),
    (
        "rill_results_failed_total",
        "counter",
        "Results a window, table, pattern or join could not make with its own select.",
        Covers::Stateful,
        |s, _| Some(s.results_failed as f64),
    ),
    (
        "rill_records_late_total",
        "counter",
        "Records that arrived after every window they belong to had closed.",
        Covers::Stateful,
        |s, _| Some(s.late as f64),
    ),
    (
        "rill_state_evicted_total",
        "counter",
        "State entries given up early because of max_keys.",
        Covers::Stateful,
        |s, _| Some(s.evicted as f64),
    ),
    (
        "rill_state_expired_total",
        "counter",
        "Table keys removed by their ttl.",
        Covers::Stateful,
        |s, _| Some(s.expired as f64),
    ),
    (
        "rill_state_keys",
        "gauge",
        "Keys (open windows per key, table rows) held now, sampled about once a second.",
        Covers::Stateful,
        |s, _| Some(s.entries_now as f64),
    ),
    (
        "rill_state_bytes",
        "gauge",
        "Estimated bytes of state held now, sampled about once a second.",
        Covers::Stateful,
        |s, _| Some(s.bytes_now as f64),
    ),
    (
        "rill_watermark_seconds",
        "gauge",
        "The operator's watermark (Unix seconds): the minimum over the sources feeding it.",
        Covers::Stateful,
        |s, _| s.watermark.map(|ms| ms as f64 / 1000.0),
    ),
    (
        "rill_watermark_lag_seconds",
        "gauge",
        "How far the operator's watermark trails the wall clock.",
        Covers::Stateful,
        |s, now_ms| s.watermark.map(|ms| now_ms.saturating_sub(ms) as f64 / 1000.0),
    ),
    (
        "rill_source_bytes_read_total",
        "counter",
        "Bytes of the records a source read (payloads, without line ends).",
        Covers::Sources,
        |s, _| Some(s.bytes_read as f64),
    ),
    (
        "rill_sink_delivery_failures_total",
        "counter",
        "Messages the broker did not accept, or records a sink failed to write.",
        Covers::Sinks,
        |s, _| Some(s.delivery_failures as f64),
    ),
    (
        "rill_sink_queue_length",
        "gauge",
        "Messages handed to a message sink's client and not yet confirmed.",
        Covers::Sinks,
        |s, _| Some(s.queued as f64),
    ),
    (
        "rill_sink_buffer_records",
        "gauge",
        "Records in a sink's disk buffer not yet delivered (in flight included).",
        Covers::Sinks,
        |s, _| s.buffer.map(|(records, _)| records as f64),
    ),
    (
        "rill_sink_buffer_bytes",
        "gauge",
        "Bytes a sink's disk buffer takes on disk.",
        Covers::Sinks,
        |s, _| s.buffer.map(|(_, bytes)| bytes as f64),
    ),
];

/// The whole exposition text of this moment.
pub fn render(events: &Events, info: &PipelineInfo) -> String {
    let components = events.snapshot();
    let now_ms = crate::fns::now_ms();
    let mut out = String::with_capacity(4096);
    for &(name, kind, help, covers, value) in FAMILIES {
        let samples: Vec<(&str, f64)> = components
            .iter()
            .filter(|(component, _)| covers.includes(component))
            .filter_map(|(component, snapshot)| Some((*component, value(snapshot, now_ms)?)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        header(&mut out, name, kind, help);
        for (component, v) in samples {
            sample(&mut out, name, &[("component", component)], v);
        }
    }
    let connections = events.connections();
    if !connections.is_empty() {
        let name = "rill_source_connected";
        header(
            &mut out,
            name,
            "gauge",
            "1 while the source's client is connected to its broker, else 0.",
        );
        for c in connections {
            sample(
                &mut out,
                name,
                &[("component", c.name())],
                f64::from(u8::from(c.is_connected())),
            );
        }
    }
    if let Some(bytes) = process::resident_bytes() {
        let name = "process_resident_memory_bytes";
        header(&mut out, name, "gauge", "Resident memory size in bytes.");
        sample(&mut out, name, &[], bytes as f64);
    }
    let name = "process_start_time_seconds";
    header(
        &mut out,
        name,
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    );
    sample(&mut out, name, &[], events.started_unix());
    let stats = events.checkpoints();
    if stats.enabled() {
        let (written, failed, put_off) = stats.totals();
        let (last_ms, bytes, micros) = stats.last();
        for (name, help, value) in [
            (
                "rill_checkpoints_written_total",
                "Checkpoints written to the state directory.",
                written,
            ),
            (
                "rill_checkpoint_failures_total",
                "Checkpoints that could not be written (the previous one stays).",
                failed,
            ),
            (
                "rill_checkpoints_put_off_total",
                "Checkpoints put off because messages were still unconfirmed.",
                put_off,
            ),
        ] {
            header(&mut out, name, "counter", help);
            sample(&mut out, name, &[], value as f64);
        }
        for (name, help, value) in [
            (
                "rill_checkpoint_last_success_timestamp_seconds",
                "When the last good checkpoint was taken (Unix seconds; 0: none yet).",
                last_ms as f64 / 1000.0,
            ),
            (
                "rill_checkpoint_bytes",
                "Size of the last checkpoint written.",
                bytes as f64,
            ),
            (
                "rill_checkpoint_write_seconds",
                "Time the last checkpoint took to save and write.",
                micros as f64 / 1e6,
            ),
        ] {
            header(&mut out, name, "gauge", help);
            sample(&mut out, name, &[], value);
        }
    }
    let name = "rill_uptime_seconds";
    header(&mut out, name, "gauge", "Seconds since the pipeline started.");
    sample(&mut out, name, &[], events.uptime().as_secs_f64());
    let name = "rill_build_info";
    header(
        &mut out,
        name,
        "gauge",
        "The pipeline this binary was built from; always 1.",
    );
    let labels = [
        ("pipeline", info.name),
        ("spec_hash", info.spec_hash),
        ("version", env!("CARGO_PKG_VERSION")),
    ];
    sample(&mut out, name, &labels, 1.0);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// A sample value: integers without a fraction, `NaN`/`+Inf`/`-Inf` as the format
/// spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_events::InternalEvent;

    static INFO: PipelineInfo = PipelineInfo {
        name: "we\"ird\\name\nx",
        spec_hash: "abc123",
        settings: &[],
        fires: false,
    };

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("line\nbreak"), "line\\nbreak");
        assert_eq!(escape_label("sources.ünï"), "sources.ünï");
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
        assert_eq!(
            (number(3.0), number(0.25), number(f64::NAN)),
            ("3".into(), "0.25".into(), "NaN".into())
        );
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn families_follow_the_naming_conventions() {
        for (name, kind, help, _, _) in FAMILIES {
            assert!(name.starts_with("rill_"), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
            assert_eq!(
                name.ends_with("_total"),
                *kind == "counter",
                "{name}: counters end in _total"
            );
            assert!(!help.is_empty() && !help.contains('\n'), "{name}");
        }
    }

    #[test]
    fn checkpoint_metrics_appear_only_with_checkpoints_on() {
        let events = Events::new();
        assert!(!render(&events, &INFO).contains("rill_checkpoint"));
        events.checkpoints().enable();
        events.checkpoints().written(4096, 1500);
        events.checkpoints().put_off();
        let text = render(&events, &INFO);
        for line in [
            "rill_checkpoints_written_total 1",
            "rill_checkpoint_failures_total 0",
            "rill_checkpoints_put_off_total 1",
            "rill_checkpoint_bytes 4096",
            "rill_checkpoint_write_seconds 0.0015",
            "# TYPE rill_checkpoint_last_success_timestamp_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn renders_each_component_under_the_families_of_its_section() {
        let events = Events::new();
        let source = events.component("sources.in");
        source.emit(InternalEvent::Received(5));
        source.emit(InternalEvent::BytesRead(120));
        events.component("transforms.t").emit(InternalEvent::Filtered(2));
        let window = events.component("windows.w");
        window.emit(InternalEvent::State {
            entries: 3,
            peak_entries: 4,
            bytes: 300,
        });
        window.emit(InternalEvent::Watermark(1_700_000_000_500));
        events.component("sinks.out").emit(InternalEvent::Queued(7));
        events.connection("sources.in").disconnected("down");
        let text = render(&events, &INFO);
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has("# TYPE rill_records_received_total counter"), "{text}");
        assert!(has("rill_records_received_total{component=\"sources.in\"} 5"), "{text}");
        assert!(
            has("rill_records_filtered_total{component=\"transforms.t\"} 2"),
            "{text}"
        );
        assert!(
            has("rill_source_bytes_read_total{component=\"sources.in\"} 120"),
            "{text}"
        );
        assert!(has("rill_state_keys{component=\"windows.w\"} 3"), "{text}");
        assert!(
            has("rill_watermark_seconds{component=\"windows.w\"} 1700000000.5"),
            "{text}"
        );
        assert!(has("rill_sink_queue_length{component=\"sinks.out\"} 7"), "{text}");
        assert!(has("rill_source_connected{component=\"sources.in\"} 0"), "{text}");
        assert!(!text.contains("rill_state_keys{component=\"sources.in\"}"), "{text}");
        assert!(
            !text.contains("rill_source_bytes_read_total{component=\"windows.w\"}"),
            "{text}"
        );
        assert!(
            has(&format!(
                "rill_build_info{{pipeline=\"we\\\"ird\\\\name\\nx\",spec_hash=\"abc123\",version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        // Every family is announced once, before its samples.
        let mut announced = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(announced.insert(name.to_owned()), "{name} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert!(announced.contains(name), "{name} before its # TYPE");
            }
        }
    }
}
