//! Assigned names as identifiers. Every name is handed out by [`crate::names::Names`]
//! during validation and carried by the IR; here it only becomes a token.

use proc_macro2::{Ident, Span};

/// An assigned field identifier or struct name (`device_id`, `r#type`, `Reading`).
pub fn ident(assigned: &str) -> Ident {
    match assigned.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(assigned, Span::call_site()),
    }
}

/// A component's item: a prefix from [`crate::names::PREFIXES`] and its assigned stem
/// (`flow_hot`, `sink_alerts`).
pub fn prefixed(prefix: &str, stem: &str) -> Ident {
    debug_assert!(
        crate::names::PREFIXES.contains(&prefix),
        "`{prefix}` is not in names::PREFIXES"
    );
    Ident::new(&format!("{prefix}{stem}"), Span::call_site())
}

/// An assigned struct name as an identifier.
pub fn type_ident(rust_name: &str) -> Ident {
    ident(rust_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_names_become_identifiers() {
        assert_eq!(ident("r#type").to_string(), "r#type");
        assert_eq!(ident("self_").to_string(), "self_");
        assert_eq!(prefixed("flow_", "_1").to_string(), "flow__1");
        assert_eq!(type_ident("Reading").to_string(), "Reading");
    }
}
