//! A path → span index over the spec text.
//!
//! serde_yaml reports locations only for its own errors, so every semantic
//! error looks up the YAML node it is about here, by its path from the root
//! (`["sources", "readings", "path"]`, with sequence items as `"0"`, `"1"`…).

use std::collections::HashMap;
use std::ops::Range;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};

use super::scalar::folded_plain_len;
pub use super::scalar::{offset_in_scalar, span_in_scalar};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Byte range of a node in the spec text.
pub type Span = Range<usize>;

/// Where a mapping key and its value sit in the text.
#[derive(Debug, Clone)]
pub struct NodeSpans {
    /// The key that introduced this node (`None` for sequence items and the root).
    pub key: Option<Span>,
    /// The value: the scalar itself, or the first character of a collection.
    pub value: Span,
}

/// The location of every node in a YAML document, by path.
#[derive(Debug, Default)]
pub struct SpanIndex {
    nodes: HashMap<Vec<String>, NodeSpans>,
    /// Keys that appear twice in the same mapping: (path of the second, span of the first key).
    pub duplicate_keys: Vec<(Vec<String>, Span)>,
    /// Unquoted keys that YAML reads as something other than text (`1:`, `true:`, `null:`).
    pub non_string_keys: Vec<NonStringKey>,
    /// Unquoted expressions in a `{ … }` mapping that a `,` cut into pieces.
    pub cut_expressions: Vec<CutExpression>,
}

/// A mapping key written so that YAML reads it as a number, a boolean or null.
#[derive(Debug, Clone)]
pub struct NonStringKey {
    /// The key as written.
    pub raw: String,
    /// What YAML reads it as: "a number", "a boolean", "null".
    pub reads_as: &'static str,
    pub span: Span,
}

/// `{ p95: percentile(temperature, 0.95) }`: the `,` ends the value `percentile(temperature`
/// and `0.95)` becomes a key of its own. Recorded with the whole text the user meant.
#[derive(Debug, Clone)]
pub struct CutExpression {
    /// Path of the value that was cut.
    pub path: Vec<String>,
    /// Paths of the keys made of the rest of the expression.
    pub fragments: Vec<Vec<String>>,
    /// From the start of the value to the end of its last piece.
    pub span: Span,
}

/// A YAML syntax error, with its byte offset.
#[derive(Debug)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

impl SpanIndex {
    /// Parse `text` and index every node. Fails on invalid YAML.
    pub fn build(text: &str) -> Result<SpanIndex, SyntaxError> {
        let mut builder = Builder::new(text);
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).map_err(|e| SyntaxError {
            message: e.info().to_string(),
            offset: offset_of(text, e.marker()),
        })?;
        Ok(builder.index)
    }

    /// Spans of the node at `path`.
    pub fn get(&self, path: &[&str]) -> Option<&NodeSpans> {
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.nodes.get(&key)
    }

    /// Make the nodes at `from` (and below) findable at `to` as well: a misspelt key
    /// read under the name it was meant as still points at what was written.
    pub fn alias(&mut self, from: &[String], to: &[String]) {
        let copies: Vec<(Vec<String>, NodeSpans)> = self
            .nodes
            .iter()
            .filter(|(path, _)| path.starts_with(from))
            .map(|(path, spans)| ([to, &path[from.len()..]].concat(), spans.clone()))
            .collect();
        self.nodes.extend(copies);
    }

    /// The value span at `path`, or of the closest ancestor that exists.
    pub fn value(&self, path: &[&str]) -> Span {
        for len in (0..=path.len()).rev() {
            if let Some(node) = self.get(&path[..len]) {
                return node.value.clone();
            }
        }
        0..0
    }

    /// The key span at `path` (falling back to the value, then to ancestors).
    pub fn key(&self, path: &[&str]) -> Span {
        for len in (0..=path.len()).rev() {
            if let Some(node) = self.get(&path[..len]) {
                return node.key.clone().unwrap_or_else(|| node.value.clone());
            }
        }
        0..0
    }
}

/// Byte offset of a marker. Computed from line and column so that it does not
/// depend on whether the parser counts bytes or characters.
fn offset_of(text: &str, mark: &Marker) -> usize {
    offset_in_lines(text, &line_starts(text), mark)
}

/// The byte offset where each line of `text` starts.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    starts
}

/// [`offset_of`] with the line starts computed once: the builder asks for every node,
/// and scanning the text from its start each time was quadratic in the spec's size.
fn offset_in_lines(text: &str, starts: &[usize], mark: &Marker) -> usize {
    let line_start = starts.get(mark.line().saturating_sub(1)).copied().unwrap_or(text.len());
    let line = &text[line_start.min(text.len())..];
    let col: usize = line.chars().take(mark.col()).map(char::len_utf8).sum();
    (line_start + col).min(text.len())
}

enum Frame {
    /// Inside a mapping: the current key (if one was read and its value is pending) and keys
    /// seen; in a `{ … }` mapping, an unquoted value with unclosed brackets being followed.
    Map {
        pending: Option<(String, Span)>,
        seen: HashMap<String, Span>,
        flow: bool,
        cut: Option<(CutExpression, i64)>,
    },
    /// Inside a sequence: the next item's index.
    Seq { next: usize },
}

struct Builder<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    index: SpanIndex,
    path: Vec<String>,
    frames: Vec<Frame>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            line_starts: line_starts(text),
            index: SpanIndex::default(),
            path: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Decide where the node starting now lives: returns (path of the node, its key span),
    /// or `None` when the node is a mapping key.
    fn place_node(&mut self) -> Option<(Vec<String>, Option<Span>)> {
        match self.frames.last_mut() {
            None => Some((Vec::new(), None)),
            Some(Frame::Seq { next }) => {
                let mut path = self.path.clone();
                path.push(next.to_string());
                *next += 1;
                Some((path, None))
            }
            Some(Frame::Map { pending, .. }) => match pending.take() {
                Some((key, span)) => {
                    let mut path = self.path.clone();
                    path.push(key);
                    Some((path, Some(span)))
                }
                None => None,
            },
        }
    }

    fn scalar_span(&self, start: usize, value: &str, style: TScalarStyle) -> Span {
        let end = match style {
            TScalarStyle::Plain => start + plain_len(&self.text[start..], value),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => start + quoted_len(&self.text[start..]),
            _ => start + aligned_len(&self.text[start..], value),
        };
        start..end.min(self.text.len())
    }
}

impl Builder<'_> {
    /// A key of a `{ … }` mapping while an unquoted value there has unclosed brackets:
    /// the key is the rest of that value, cut off by a `,`.
    fn follow_cut(&mut self, key: &str, span: &Span) {
        let path = self.path.clone();
        let Some(Frame::Map { cut, .. }) = self.frames.last_mut() else {
            return;
        };
        let Some((expression, depth)) = cut else { return };
        let mut fragment = path;
        fragment.push(key.to_string());
        expression.fragments.push(fragment);
        expression.span.end = span.end;
        *depth += bracket_depth(key);
        if *depth <= 0 {
            let done = expression.clone();
            *cut = None;
            self.finish_cut(done);
        }
    }

    /// Record a cut expression (one with at least one piece cut off) and let its value
    /// span cover the whole text.
    fn finish_cut(&mut self, expression: CutExpression) {
        if let Some(Frame::Map { cut, .. }) = self.frames.last_mut() {
            *cut = None;
        }
        if expression.fragments.is_empty() {
            return;
        }
        if let Some(node) = self.index.nodes.get_mut(&expression.path) {
            node.value = expression.span.clone();
        }
        self.index.cut_expressions.push(expression);
    }
}

/// Opening minus closing brackets.
fn bracket_depth(text: &str) -> i64 {
    text.chars()
        .map(|c| match c {
            '(' | '[' => 1,
            ')' | ']' => -1,
            _ => 0,
        })
        .sum()
}

/// What YAML reads an unquoted key as, when it is not text.
fn non_string_reading(key: &str) -> Option<&'static str> {
    let looks_textual = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !matches!(key.to_ascii_lowercase().as_str(), "true" | "false" | "null");
    if looks_textual {
        return None;
    }
    match serde_yaml::from_str::<serde_yaml::Value>(key) {
        Ok(serde_yaml::Value::Number(_)) => Some("a number"),
        Ok(serde_yaml::Value::Bool(_)) => Some("a boolean"),
        Ok(serde_yaml::Value::Null) => Some("null"),
        _ => None,
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let start = offset_in_lines(self.text, &self.line_starts, &mark);
        match ev {
            Event::Scalar(value, style, _, tag) => {
                let span = self.scalar_span(start, &value, style);
                match self.place_node() {
                    Some((path, key)) => {
                        if let Some(Frame::Map { flow: true, cut, .. }) = self.frames.last_mut() {
                            let depth = bracket_depth(&value);
                            if style == TScalarStyle::Plain && depth > 0 && cut.is_none() {
                                let expression = CutExpression {
                                    path: path.clone(),
                                    fragments: Vec::new(),
                                    span: span.clone(),
                                };
                                *cut = Some((expression, depth));
                            }
                        }
                        self.index.nodes.insert(path, NodeSpans { key, value: span });
                    }
                    None => {
                        if style == TScalarStyle::Plain && tag.is_none() {
                            if let Some(reads_as) = non_string_reading(&value) {
                                self.index.non_string_keys.push(NonStringKey {
                                    raw: value.clone(),
                                    reads_as,
                                    span: span.clone(),
                                });
                            }
                        }
                        self.follow_cut(&value, &span);
                        // A mapping key: remember it until its value arrives.
                        if let Some(Frame::Map { pending, seen, .. }) = self.frames.last_mut() {
                            if let Some(first) = seen.get(&value) {
                                let mut dup = self.path.clone();
                                dup.push(value.clone());
                                self.index.duplicate_keys.push((dup, first.clone()));
                            } else {
                                seen.insert(value.clone(), span.clone());
                            }
                            *pending = Some((value, span));
                        }
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (path, key) = match self.place_node() {
                    Some(placed) => placed,
                    // A collection used as a key: index it under a placeholder.
                    None => (vec!["<complex key>".to_string()], None),
                };
                let span = start..(start + 1).min(self.text.len());
                self.index.nodes.insert(path.clone(), NodeSpans { key, value: span });
                self.path = path;
                self.frames.push(if is_map {
                    Frame::Map {
                        pending: None,
                        seen: HashMap::new(),
                        flow: self.text[start..].starts_with('{'),
                        cut: None,
                    }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map {
                    cut: Some((cut, _)), ..
                }) = self.frames.last_mut()
                {
                    let cut = cut.clone();
                    self.finish_cut(cut);
                }
                self.frames.pop();
                self.path.pop();
            }
            Event::Alias(_) => {
                let _ = self.place_node();
            }
            _ => {}
        }
    }
}

/// Length of a plain scalar in the raw text: up to a comment, a flow indicator
/// or the end of its (last) line.
fn plain_len(raw: &str, value: &str) -> usize {
    if let Some(len) = folded_plain_len(raw, value) {
        return len;
    }
    if !value.contains('\n') {
        let mut end = 0;
        for (i, c) in raw.char_indices() {
            if c == '\n' || c == '\r' {
                break;
            }
            if c == '#' && raw[..i].ends_with(' ') {
                break;
            }
            if matches!(c, ',' | ']' | '}') && raw[..i].trim_end().len() >= value.len() {
                break;
            }
            if c == ':' && raw[i + 1..].starts_with([' ', '\n']) {
                break;
            }
            end = i + c.len_utf8();
        }
        return raw[..end].trim_end().len();
    }
    aligned_len(raw, value)
}

/// Length of a quoted scalar, closing quote included.
fn quoted_len(raw: &str) -> usize {
    let mut chars = raw.char_indices();
    let Some((_, quote)) = chars.next() else { return 0 };
    let mut escaped = false;
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            // '' is an escaped quote in single-quoted scalars.
            if quote == '\'' && raw[i + 1..].starts_with('\'') {
                chars.next();
                continue;
            }
            return i + 1;
        }
        escaped = false;
    }
    raw.len()
}

/// Length of raw text needed to cover `value`, walking both and skipping raw
/// characters (indentation, quotes, escapes) that the value does not contain.
fn aligned_len(raw: &str, value: &str) -> usize {
    let mut raw_iter = raw.char_indices();
    let mut end = 0;
    'outer: for v in value.chars() {
        for (i, r) in raw_iter.by_ref() {
            if r == v {
                end = i + r.len_utf8();
                continue 'outer;
            }
        }
        break;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "name: demo\nsources:\n  readings:\n    type: file\n    path: \"in.jsonl\" # the input\n    topics: [a, b]\ntransforms:\n  hot:\n    filter: |\n      temperature > 25.0\n";

    fn text_at(span: Span) -> &'static str {
        &SPEC[span]
    }

    #[test]
    fn indexes_keys_and_values() {
        let idx = SpanIndex::build(SPEC).unwrap();
        assert_eq!(text_at(idx.value(&["name"])), "demo");
        assert_eq!(text_at(idx.key(&["sources", "readings", "type"])), "type");
        assert_eq!(text_at(idx.value(&["sources", "readings", "type"])), "file");
        assert_eq!(text_at(idx.value(&["sources", "readings", "path"])), "\"in.jsonl\"");
        assert_eq!(text_at(idx.value(&["sources", "readings", "topics", "1"])), "b");
        assert_eq!(text_at(idx.key(&["sources", "readings"])), "readings");
    }

    #[test]
    fn missing_path_falls_back_to_ancestor() {
        let idx = SpanIndex::build(SPEC).unwrap();
        assert_eq!(text_at(idx.key(&["sources", "readings", "nope"])), "readings");
    }

    #[test]
    fn block_scalar_offsets_point_inside_the_expression() {
        let idx = SpanIndex::build(SPEC).unwrap();
        let span = idx.value(&["transforms", "hot", "filter"]);
        let value = "temperature > 25.0\n";
        let at = offset_in_scalar(SPEC, &span, value, 14);
        assert_eq!(&SPEC[at..at + 4], "25.0");
    }

    #[test]
    fn reports_duplicate_keys() {
        let idx = SpanIndex::build("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(idx.duplicate_keys.len(), 1);
        assert_eq!(idx.duplicate_keys[0].1, 0..1);
    }

    #[test]
    fn syntax_error_has_an_offset() {
        let err = SpanIndex::build("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.offset > 0, "{err:?}");
    }

    #[test]
    fn non_ascii_text_keeps_byte_offsets() {
        let text = "name: é\nx: y\n";
        let idx = SpanIndex::build(text).unwrap();
        assert_eq!(&text[idx.value(&["x"])], "y");
    }

    #[test]
    fn keys_yaml_reads_as_other_than_text_are_found() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1: a\n", Some("a number")),
            ("1.5: a\n", Some("a number")),
            ("0x1F: a\n", Some("a number")),
            ("true: a\n", Some("a boolean")),
            ("False: a\n", Some("a boolean")),
            ("null: a\n", Some("null")),
            ("~: a\n", Some("null")),
            ("\"1\": a\n", None),
            ("'true': a\n", None),
            ("1st: a\n", None),
            ("yes: a\n", None),
            ("name: 1\n", None),
        ];
        for (text, expected) in cases {
            let idx = SpanIndex::build(text).unwrap();
            let found: Vec<(&str, &str)> = idx
                .non_string_keys
                .iter()
                .map(|k| (k.reads_as, &text[k.span.clone()]))
                .collect();
            match expected {
                Some(reads_as) => {
                    let written = text.split(':').next().unwrap();
                    assert_eq!(found, [(*reads_as, written)], "{text:?}");
                }
                None => assert!(found.is_empty(), "{text:?}: {found:?}"),
            }
        }
    }

    #[test]
    fn an_unquoted_expression_cut_at_a_comma_is_put_back_together() {
        let text = "a: { n: count(), p: percentile(t, 0.95), s: f(g(x, \"-\", y)), q: \"h(x, y)\" }\n";
        let idx = SpanIndex::build(text).unwrap();
        let cuts: Vec<(&str, &str, usize)> = idx
            .cut_expressions
            .iter()
            .map(|c| (c.path[1].as_str(), &text[c.span.clone()], c.fragments.len()))
            .collect();
        assert_eq!(cuts, [("p", "percentile(t, 0.95)", 1), ("s", "f(g(x, \"-\", y))", 2)]);
        assert_eq!(&text[idx.value(&["a", "p"])], "percentile(t, 0.95)");
        // A block mapping has no such cut: the `,` is part of the value.
        let block = "a:\n  p: percentile(t, 0.95)\n";
        assert!(SpanIndex::build(block).unwrap().cut_expressions.is_empty());
    }
}
