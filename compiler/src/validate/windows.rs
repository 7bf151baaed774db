//! Windows: the window kind, its durations, lateness, and the shared aggregation.

use super::aggregation::{aggregation, late_drop_ok, AggregationSpec};
use super::Cx;
use crate::diagnostics::SpecError;
use crate::ir::{shares_panes, IrWindow, IrWindowKind};
use crate::spec::spans::Span;
use crate::spec::windows::{HoppingSpec, LatePolicy};
use crate::spec::WindowSpec;
use crate::types::RecordType;

/// A hopping window that keeps an accumulator per window adds each record to
/// `size / slide` windows; past this, the work per record is better done another way.
const MAX_WINDOWS_PER_RECORD: i64 = 1000;

/// A hopping window that shares panes merges `size / gcd(size, slide)` panes per key
/// when it fires; past this, a key's panes take more memory than a window should.
const MAX_PANES_PER_WINDOW: i64 = 100_000;

const KINDS_HELP: &str =
    "give one of `tumbling: 10s`, `hopping: { size: 10s, slide: 5s }`, `session: { gap: 30s }` or `count: 100`";

/// Check a window. `late_read`: something reads `<name>.late`.
pub fn window(name: &str, spec: &WindowSpec, input: &RecordType, late_read: bool, cx: &mut Cx) -> Option<IrWindow> {
    let path = |key: &'static str| ["windows", name, key];
    let mut ok = true;
    let given: Vec<&str> = [
        ("tumbling", spec.tumbling.is_some()),
        ("hopping", spec.hopping.is_some()),
        ("session", spec.session.is_some()),
        ("count", spec.count.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(kind, _)| kind)
    .collect();
    let kind = match given.as_slice() {
        [] => {
            let at = cx.key(&["windows", name]);
            cx.error(SpecError::missing_field(
                "tumbling",
                &format!("window `{name}`"),
                &at,
                Some(KINDS_HELP.into()),
            ));
            None
        }
        [_, second, ..] => {
            let at = cx.key(&path(second));
            cx.error(SpecError::invalid_value(
                *second,
                format!("a window has one kind; `{}` is already given", given[0]),
                &at,
                Some(KINDS_HELP.into()),
            ));
            None
        }
        [_] => window_kind(name, spec, cx),
    };
    ok &= kind.is_some();
    let kind = match kind {
        Some(IrWindowKind::Fixed { size, slide, .. }) => {
            let offset = match &spec.offset {
                None => Some(0),
                Some(text) => offset("windows", name, text, size, slide, cx),
            };
            ok &= offset.is_some();
            Some(IrWindowKind::Fixed {
                size,
                slide,
                offset: offset.unwrap_or(0),
            })
        }
        None => None,
        other => {
            if spec.offset.is_some() {
                let at = cx.key(&path("offset"));
                cx.error(SpecError::invalid_value(
                    "offset",
                    "only tumbling and hopping windows are aligned, so only they take an offset",
                    &at,
                    Some("remove `offset:`: a session or count window starts with its first record".into()),
                ));
                ok = false;
            }
            other
        }
    };
    let allowed_lateness = match &spec.allowed_lateness {
        None => 0,
        Some(text) => cx.duration(&path("allowed_lateness"), text, false).unwrap_or_else(|| {
            ok = false;
            0
        }),
    };
    if allowed_lateness > 0 && matches!(kind, Some(IrWindowKind::Count { .. })) {
        let at = cx.key(&path("allowed_lateness"));
        cx.error(SpecError::invalid_value(
            "allowed_lateness",
            "count windows do not depend on time, so nothing is late for them",
            &at,
            Some("remove `allowed_lateness:`".into()),
        ));
        ok = false;
    }
    ok &= late_drop_ok("windows", name, spec.late, late_read, cx);
    let aggregation = aggregation(
        &AggregationSpec {
            section: "windows",
            name,
            key: spec.key.as_ref(),
            aggregate: spec.aggregate.as_ref(),
            max_keys: spec.max_keys,
            on_full: spec.on_full,
            on_error: spec.on_error,
            window_bounds: true,
            update_field: allowed_lateness > 0,
        },
        input,
        cx,
    );
    let (Some(aggregation), Some(kind), true) = (aggregation, kind, ok) else {
        return None;
    };
    if let IrWindowKind::Fixed { size, slide, .. } = kind {
        if !spread_ok(name, size, slide, shares_panes(&kind, &aggregation), cx) {
            return None;
        }
    }
    Some(IrWindow {
        aggregation,
        kind,
        allowed_lateness,
        drop_late: spec.late == Some(LatePolicy::Drop),
    })
}

fn window_kind(name: &str, spec: &WindowSpec, cx: &mut Cx) -> Option<IrWindowKind> {
    if let Some(size) = &spec.tumbling {
        let size = cx.duration(&["windows", name, "tumbling"], size, true)?;
        return Some(IrWindowKind::Fixed {
            size,
            slide: size,
            offset: 0,
        });
    }
    if let Some(h) = &spec.hopping {
        let (size, slide) = hopping_sizes("windows", name, h, cx)?;
        return Some(IrWindowKind::Fixed { size, slide, offset: 0 });
    }
    if let Some(s) = &spec.session {
        let gap = cx.duration(&["windows", name, "session", "gap"], &s.gap, true)?;
        return Some(IrWindowKind::Session { gap });
    }
    match spec.count {
        Some(0) => {
            let at = cx.value(&["windows", name, "count"]);
            cx.error(SpecError::invalid_value(
                "count",
                "must be at least 1",
                &at,
                Some("`count: 100` emits one result per 100 records (per key)".into()),
            ));
            None
        }
        Some(count) => Some(IrWindowKind::Count { count }),
        None => None,
    }
}

/// A hopping join window's `(size, slide)` at `<section>.<name>.hopping`, each record
/// in at most [`MAX_WINDOWS_PER_RECORD`] windows.
pub fn hopping(section: &str, name: &str, h: &HoppingSpec, cx: &mut Cx) -> Option<(i64, i64)> {
    let (size, slide) = hopping_sizes(section, name, h, cx)?;
    if size / slide > MAX_WINDOWS_PER_RECORD {
        let at = cx.value(&[section, name, "hopping", "slide"]);
        cx.error(too_many_windows(size / slide, &at, SPREAD_HELP.into()));
        return None;
    }
    Some((size, slide))
}

/// A window's hopping sizes are not so many windows or panes per record that the work
/// per record (per window) or the memory per key (per pane) runs away.
fn spread_ok(name: &str, size: i64, slide: i64, panes: bool, cx: &mut Cx) -> bool {
    let at = cx.value(&["windows", name, "hopping", "slide"]);
    let panes_per_window = size / gcd(size, slide);
    if panes && panes_per_window > MAX_PANES_PER_WINDOW {
        cx.error(SpecError::invalid_value(
            "slide",
            format!(
                "each window would merge {panes_per_window} panes per key (at most {MAX_PANES_PER_WINDOW}): \
                 a pane is the greatest common divisor of the size and the slide"
            ),
            &at,
            Some(
                "slide by a step that divides the size, or aggregate a tumbling window of `slide` in a second window"
                    .into(),
            ),
        ));
        return false;
    }
    if !panes && size / slide > MAX_WINDOWS_PER_RECORD {
        let help = format!(
            "{SPREAD_HELP}; `max_keys`, an integer `sum` and `collect` keep an accumulator per window \
             (without them, a hopping window keeps each record once, in a pane)"
        );
        cx.error(too_many_windows(size / slide, &at, help));
        return false;
    }
    true
}

const SPREAD_HELP: &str = "slide by a larger step, or aggregate a tumbling window of `slide` in a second window";

fn too_many_windows(windows: i64, at: &Span, help: String) -> SpecError {
    SpecError::invalid_value(
        "slide",
        format!("each record would be added to {windows} windows (at most {MAX_WINDOWS_PER_RECORD})"),
        at,
        Some(help),
    )
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A hopping window's `(size, slide)` at `<section>.<name>.hopping`: the slide no
/// longer than the size.
fn hopping_sizes(section: &str, name: &str, h: &HoppingSpec, cx: &mut Cx) -> Option<(i64, i64)> {
    let size = cx.duration(&[section, name, "hopping", "size"], &h.size, true);
    let slide = cx.duration(&[section, name, "hopping", "slide"], &h.slide, true);
    let (size, slide) = (size?, slide?);
    let at = cx.value(&[section, name, "hopping", "slide"]);
    if slide > size {
        cx.error(SpecError::invalid_value(
            "slide",
            format!("a slide longer than the size ({} ms) would skip records", size),
            &at,
            Some("hopping windows overlap: `size: 10s, slide: 5s` puts each record in two windows".into()),
        ));
        return None;
    }
    Some((size, slide))
}

/// The `offset` at `<section>.<name>.offset` of windows of `size` every `slide`: shorter
/// than the slide.
pub fn offset(section: &str, name: &str, text: &str, size: i64, slide: i64, cx: &mut Cx) -> Option<i64> {
    let offset = cx.duration(&[section, name, "offset"], text, false)?;
    if offset < slide {
        return Some(offset);
    }
    let at = cx.value(&[section, name, "offset"]);
    cx.error(SpecError::invalid_value(
        "offset",
        format!(
            "must be shorter than the window's {} ({slide} ms)",
            if slide == size { "size" } else { "slide" }
        ),
        &at,
        Some(
            "an offset shifts windows away from the epoch: `offset: 15m` on `tumbling: 1h` gives windows at :15".into(),
        ),
    ));
    None
}
