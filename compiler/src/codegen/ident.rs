//! The one sanitiser every identifier from a spec goes through.

use proc_macro2::{Ident, Span};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// `hot_devices` → `HotDevices`.
pub fn type_name(snake: &str) -> String {
    snake
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A Rust identifier for a spec name: raw (`r#type`) for keywords, and
/// `_`-prefixed where the name cannot start an identifier.
pub fn ident(name: &str) -> Ident {
    match name {
        // These cannot be raw identifiers.
        "self" | "Self" | "super" | "crate" | "_" => Ident::new(&format!("{name}_"), Span::call_site()),
        _ if KEYWORDS.contains(&name) => Ident::new_raw(name, Span::call_site()),
        _ => Ident::new(name, Span::call_site()),
    }
}

/// An identifier with a prefix (`flow_hot`, `sink_alerts`).
pub fn prefixed(prefix: &str, name: &str) -> Ident {
    Ident::new(&format!("{prefix}{name}"), Span::call_site())
}

/// A struct name as an identifier.
pub fn type_ident(rust_name: &str) -> Ident {
    Ident::new(rust_name, Span::call_site())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name("hot_devices"), "HotDevices");
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(ident("self").to_string(), "self_");
        assert_eq!(ident("device_id").to_string(), "device_id");
    }
}
