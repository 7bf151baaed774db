//! Component names: one namespace across sources, transforms, windows, tables and sinks.

use std::collections::HashMap;

use super::Cx;
use crate::diagnostics::SpecError;
use crate::spec::Spec;

/// `dead_letter` names the pipeline's stream of bad records.
pub const RESERVED: &[&str] = &["dead_letter"];

pub fn check(spec: &Spec, cx: &mut Cx) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let all = spec
        .sources
        .iter()
        .map(|s| ("sources", s.name.as_str()))
        .chain(spec.operators.iter().map(|t| (t.spec.section(), t.name.as_str())))
        .chain(spec.sinks.iter().map(|s| ("sinks", s.name.as_str())))
        .chain(spec.unreadable.iter().map(|(section, name)| (*section, name.as_str())));
    for (section, name) in all {
        if RESERVED.contains(&name) {
            let at = cx.key(&[section, name]);
            cx.error(SpecError::invalid_value(
                name,
                "this name is reserved",
                &at,
                Some("`dead_letter` is the stream of bad records; pick another name".into()),
            ));
            continue;
        }
        match seen.get(name) {
            Some(first_section) => {
                let first = cx.key(&[first_section, name]);
                let second = cx.key(&[section, name]);
                cx.error(SpecError::duplicate_name(name, &second, &first));
            }
            None => {
                seen.insert(name, section);
            }
        }
    }
}
