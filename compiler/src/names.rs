//! The one authority for generated Rust names.
//!
//! Every Rust name the generated file gets from the spec is handed out here, once, and
//! the IR carries it; codegen only reads it (typify's `TypeSpace`, prost-build's
//! `ident.rs`). The guarantees:
//!
//! - **Valid.** Never an empty name, a leading digit, `_`, or a keyword that cannot be
//!   raw (`self`, `Self`, `super`, `crate`); other keywords are raw (`r#type`).
//! - **Unique.** Two spec names that sanitise to the same Rust name (`a_b` and `a__b`,
//!   `w_1` and `w1`, `self` and `self_`) get different ones: the later one is suffixed
//!   `_2`, `_3`, … Natural names never contain that form, so a suffixed name cannot
//!   take a later spec name's natural one by accident (and the taken set checks anyway).
//! - **Never shadowing.** A struct never takes a name the generated file uses: its own
//!   items (`Nodes`, `Job`), everything `use rill_runtime::codegen::*` brings in, and the
//!   std prelude (`string` → `String_2`, not a `String` that replaces std's).
//! - **Bounded.** A name longer than [`MAX_LEN`] is cut and given a hash of the whole
//!   name, so a 300-character spec name makes neither a huge identifier nor a file name
//!   the file system refuses.
//!
//! Component stems (`flow_<stem>`, `sink_<stem>`, `window_<stem>`, …) are the
//! component's own name, which the spec loader already restricts to `lower_snake_case`
//! and validation makes unique across sections. Every prefix in [`PREFIXES`] is
//! prefix-free against the others, so `prefix + stem` is unique for unique stems and
//! never a keyword; the stems are still bounded and checked for uniqueness here.
//!
//! Field identifiers are per struct ([`field_idents`]); a field whose identifier differs
//! from its spec name keeps the spec name on the wire (`#[serde(rename)]`, CSV columns).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

/// Longest generated name, in bytes (the hash suffix included).
pub const MAX_LEN: usize = 64;

/// Type-namespace names the generated file uses: its own items, everything
/// `rill_runtime::codegen` exports (a unit test checks this list against it), and the
/// std prelude. A record, accumulator or aggregation struct never takes one.
pub const RESERVED_TYPES: &[&str] = &[
    // The generated file's own items.
    "Nodes",
    "Job",
    "PIPELINE",
    "Self",
    // rill_runtime::codegen.
    "Acks",
    "Aggregator",
    "ApproxCountDistinct",
    "Avg",
    "Collect",
    "Count",
    "CountDistinct",
    "First",
    "Last",
    "Max",
    "MaxF64",
    "Min",
    "MinF64",
    "Percentile",
    "Stddev",
    "StddevSample",
    "Sum",
    "Variance",
    "VarianceSample",
    "MetaView",
    "RawBatch",
    "DeadLetters",
    "BufferOptions",
    "Fsync",
    "WhenFull",
    "Checkpointed",
    "Context",
    "Pipeline",
    "PipelineInfo",
    "Step",
    "DecodeError",
    "EvalError",
    "RecordError",
    "RunError",
    "StartError",
    "CsvDecoder",
    "CsvEncoder",
    "CsvRecord",
    "CsvRow",
    "CsvWriter",
    "Decoder",
    "Encoder",
    "FromCsvField",
    "JsonDecoder",
    "JsonEncoder",
    "JsonScan",
    "LineRecord",
    "LinesDecoder",
    "LinesEncoder",
    "ScanJson",
    "ToCsvField",
    "WriteJson",
    "Events",
    "SettingDef",
    "Settings",
    "Address",
    "MessageOutput",
    "Output",
    "Outputs",
    "RawSink",
    "OnError",
    "Poll",
    "RawSource",
    "Source",
    "TsRepr",
    "SplitByKey",
    "OrderedRows",
    "Admit",
    "Aggregation",
    "Keyed",
    "FailedPair",
    "JoinBounds",
    "JoinPair",
    "JoinShape",
    "LookupFile",
    "Sided",
    "StreamJoin",
    "Pattern",
    "PatternShape",
    "PatternStep",
    "Patterns",
    "Clocks",
    "CountWindows",
    "Emit",
    "FixedWindows",
    "PanedWindows",
    "OnFull",
    "Reach",
    "SessionWindows",
    "StateOptions",
    "Stateful",
    "StrKey",
    "StrKeyRef",
    "Tally",
    "Counts",
    "Encoded",
    "BatchClock",
    "Chain",
    "Merge",
    "Table",
    "TimeMode",
    "Window",
    "LazyRegex",
    "Deserialize",
    "Serialize",
    // The std prelude (types, traits and variants a generated file may name).
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Box",
    "ToString",
    "ToOwned",
    "Clone",
    "Copy",
    "Default",
    "Debug",
    "Drop",
    "Eq",
    "PartialEq",
    "Ord",
    "PartialOrd",
    "Hash",
    "Fn",
    "FnMut",
    "FnOnce",
    "Iterator",
    "IntoIterator",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "Extend",
    "FromIterator",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "AsRef",
    "AsMut",
    "Into",
    "From",
    "TryFrom",
    "TryInto",
];

/// Prefixes of a component's generated functions and fields. None is a prefix of
/// another, so `prefix + stem` is unique whenever stems are (a unit test checks it).
pub const PREFIXES: &[&str] = &[
    "flow_",
    "to_",
    "ahead_",
    "advance_after_",
    "filter_",
    "map_",
    "explode_",
    "emit_",
    "forward_",
    "key_",
    "attach_",
    "message_",
    "send_",
    "sink_",
    "source_",
    "window_",
    "table_",
    "pattern_",
    "select_",
    "lookup_",
    "join_",
    "right_flow_",
    "chain_",
    "right_key_",
];

/// Rust keywords (all editions, reserved ones included).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Keywords that cannot be written raw (`r#self` is not an identifier).
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// The names handed out so far for one generated file.
#[derive(Debug, Clone)]
pub struct Names {
    /// Struct names (records, accumulators, aggregations) and every reserved one.
    types: BTreeSet<String>,
    /// Component stems.
    stems: BTreeSet<String>,
}

/// Every name a generated struct must not take: [`RESERVED_TYPES`] and what the
/// runtime exports for connectors.
pub fn reserved_types() -> impl Iterator<Item = &'static str> {
    RESERVED_TYPES
        .iter()
        .chain(crate::connectors::RUNTIME_TYPES.iter().flat_map(|names| names.iter()))
        .copied()
}

impl Default for Names {
    fn default() -> Self {
        Names {
            types: reserved_types().map(str::to_string).collect(),
            stems: BTreeSet::new(),
        }
    }
}

impl Names {
    /// A struct name for spec name `base` (`hot_devices`, `deviceId`) followed by
    /// `suffix` (`Record`, `Acc`, or a nested record's parent before it): UpperCamelCase,
    /// valid, bounded, and not handed out before.
    pub fn type_name(&mut self, prefix: &str, base: &str, suffix: &str) -> String {
        let mut camel = prefix.to_string() + &upper_camel(base) + suffix;
        if !camel.starts_with(|c: char| c.is_ascii_alphabetic()) {
            // `_1` and `_` have no letter to start a type name with.
            camel.insert(0, 'X');
        }
        let wanted = bounded(&camel, &format!("{prefix}/{base}/{suffix}"));
        unique(&mut self.types, wanted)
    }

    /// The stem of a component's generated items: its name, bounded and unique.
    pub fn stem(&mut self, component: &str) -> String {
        let mut stem: String = component
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        if stem.is_empty() {
            stem.push('_');
        }
        let wanted = bounded(&stem, component);
        unique(&mut self.stems, wanted)
    }
}

/// Field identifiers for one struct's fields, in order. A spec name that is a valid
/// identifier keeps it (raw for keywords, `r#type`); the others (`self`, `_`, a
/// leading digit, too long) get a sanitised one that no other field of the struct has.
pub fn field_idents(names: &[&str]) -> Vec<String> {
    let natural: Vec<Option<String>> = names.iter().map(|n| natural_ident(n)).collect();
    // Natural identifiers first, so `self_` keeps `self_` whichever comes first.
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut out: Vec<Option<String>> = natural
        .iter()
        .map(|n| n.as_ref().filter(|n| taken.insert(unraw(n).to_string())).cloned())
        .collect();
    for (i, name) in names.iter().enumerate() {
        if out[i].is_none() {
            out[i] = Some(unique(&mut taken, sanitised_ident(name)));
        }
    }
    out.into_iter().flatten().collect()
}

/// `name` itself as an identifier when it is one (raw for a keyword that can be).
fn natural_ident(name: &str) -> Option<String> {
    let valid = name.len() <= MAX_LEN
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !NOT_RAW.contains(&name);
    match valid {
        false => None,
        true if KEYWORDS.contains(&name) => Some(format!("r#{name}")),
        true => Some(name.to_string()),
    }
}

/// An identifier made from a name that is not one: `self` → `self_`, `_` → `__`,
/// `1x` → `_1x`, other characters → `_`, then bounded.
fn sanitised_ident(name: &str) -> String {
    let mut ident: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    if NOT_RAW.contains(&ident.as_str()) || KEYWORDS.contains(&ident.as_str()) {
        ident.push('_');
    }
    bounded(&ident, name)
}

fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// `wanted`, or `wanted_2`, `wanted_3`, … whichever is not in `taken`; recorded there.
fn unique(taken: &mut BTreeSet<String>, wanted: String) -> String {
    let mut name = wanted.clone();
    let mut n = 2;
    while !taken.insert(unraw(&name).to_string()) {
        name = format!("{wanted}_{n}");
        n += 1;
    }
    name
}

/// `name` when it fits in [`MAX_LEN`], else its start and a hash of `whole` (what it
/// was made from, so two long names with one start still differ).
fn bounded(name: &str, whole: &str) -> String {
    if name.len() <= MAX_LEN {
        return name.to_string();
    }
    let hash = short_hash(whole);
    // ASCII only by now, so any byte index is a char boundary.
    let keep = MAX_LEN - hash.len() - 1;
    format!("{}_{hash}", &name[..keep])
}

/// Eight hex digits of SHA-256: stable across Rust versions and platforms.
pub fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `hot_devices` → `HotDevices`, `deviceId` → `DeviceId`; characters that cannot be in
/// an identifier are dropped.
fn upper_camel(snake: &str) -> String {
    snake
        .split(|c: char| !c.is_ascii_alphanumeric())
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

/// A file-system- and cargo-safe name for a pipeline (`hot_devices` → `hot-devices`):
/// letters, digits and `-`, starting with a letter, bounded.
pub fn file_stem(pipeline: &str) -> String {
    let mut stem: String = pipeline
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if !stem.starts_with(|c: char| c.is_ascii_alphabetic()) {
        stem.insert_str(0, "pipeline-");
    }
    let stem = stem.trim_end_matches('-').to_string();
    if stem.len() <= MAX_LEN {
        return stem;
    }
    let hash = short_hash(pipeline);
    format!("{}-{hash}", stem[..MAX_LEN - hash.len() - 1].trim_end_matches('-'))
}

/// The default file name of a pipeline's binary: its name (already `lower_snake_case`),
/// or, past [`MAX_LEN`], its start and a hash.
pub fn binary_name(pipeline: &str) -> String {
    let safe: String = pipeline
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    bounded(&safe, pipeline)
}

/// Text from outside (a path, a name) made safe for a `//` comment: one line, control
/// characters escaped.
pub fn comment_text(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests;
