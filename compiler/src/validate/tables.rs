//! Tables: keyed running aggregates, their emit interval and TTL.

use super::aggregation::{aggregation, AggregationSpec};
use super::Cx;
use crate::diagnostics::SpecError;
use crate::ir::IrTable;
use crate::spec::duration::parse_millis;
use crate::spec::TableSpec;
use crate::types::RecordType;

pub fn table(name: &str, spec: &TableSpec, input: &RecordType, cx: &mut Cx) -> Option<IrTable> {
    let mut ok = true;
    let emit_every = match spec.emit.as_deref().map(str::trim) {
        None | Some("change") => None,
        Some(text) => match parse_millis(text) {
            Ok(ms) if ms > 0 => Some(ms as i64),
            _ => {
                let at = cx.value(&["tables", name, "emit"]);
                cx.error(SpecError::invalid_value(
                    "emit",
                    format!("expected `change` or an interval, found `{text}`"),
                    &at,
                    Some(
                        "`emit: change` sends a row on every update; `emit: 10s` sends the changed rows every 10 s"
                            .into(),
                    ),
                ));
                ok = false;
                None
            }
        },
    };
    let ttl = match &spec.ttl {
        None => None,
        Some(text) => {
            let ttl = cx.duration(&["tables", name, "ttl"], text, true);
            ok &= ttl.is_some();
            ttl
        }
    };
    if spec.key.is_none() {
        let at = cx.key(&["tables", name]);
        cx.error(SpecError::missing_field(
            "key",
            &format!("table `{name}`"),
            &at,
            Some("a table keeps one row per key: `key: user_id`".into()),
        ));
        ok = false;
    }
    let aggregation = aggregation(
        &AggregationSpec {
            section: "tables",
            name,
            key: spec.key.as_ref(),
            aggregate: spec.aggregate.as_ref(),
            max_keys: spec.max_keys,
            on_full: spec.on_full,
            on_error: spec.on_error,
            window_bounds: false,
            update_field: false,
        },
        input,
        cx,
    )?;
    ok.then_some(IrTable {
        aggregation,
        emit_every,
        ttl,
        looked_up: false,
    })
}
