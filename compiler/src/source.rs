//! The spec text as miette reads it when rendering diagnostics.
//!
//! miette's own `String` source scans the text from its start for every span it
//! shows, and a `NamedSource<String>` is copied into every rendered problem: with
//! 20,000 problems in a 1 MB spec that is quadratic. `SpecSource` shares the text and
//! finds a span's lines by binary search, giving miette exactly what its own source
//! would (the same lines and line count), so reports render the same, except for one
//! thing: miette counts the column of `file:line:col` in bytes, and people and editors
//! count characters, so columns are counted again in characters.

use std::sync::Arc;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

#[derive(Debug, Clone)]
pub struct SpecSource {
    name: String,
    text: Arc<str>,
    /// Byte offset of every `\n`.
    newlines: Arc<[usize]>,
    /// miette also breaks lines at `\r`: such a text is left to miette's own reading.
    has_cr: bool,
}

impl SpecSource {
    pub fn new(name: &str, text: &str) -> Self {
        SpecSource {
            name: name.to_string(),
            text: text.into(),
            newlines: text.match_indices('\n').map(|(i, _)| i).collect(),
            has_cr: text.contains('\r'),
        }
    }

    /// A column of `bytes` before byte `offset`, in characters.
    fn in_chars(&self, offset: usize, bytes: usize) -> usize {
        offset
            .checked_sub(bytes)
            .and_then(|from| self.text.get(from..offset))
            .map_or(bytes, |s| s.chars().count())
    }

    /// The number of `\n` before byte `offset`.
    fn newlines_before(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset)
    }

    /// Where the line holding byte `offset` starts.
    fn line_start(&self, line: usize) -> usize {
        if line == 0 {
            0
        } else {
            self.newlines[line - 1] + 1
        }
    }
}

impl SourceCode for SpecSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        if self.has_cr {
            let contents = self.text.read_span(span, context_lines_before, context_lines_after)?;
            return Ok(Box::new(MietteSpanContents::new_named(
                self.name.clone(),
                contents.data(),
                *contents.span(),
                contents.line(),
                self.in_chars(span.offset(), contents.column()),
                contents.line_count(),
            )));
        }
        let len = self.text.len();
        let start = span.offset();
        // The last byte of the span, as miette counts it.
        let last = (start + span.len()).saturating_sub(1);
        let line = self.newlines_before(start.min(len));
        let (first_line, data_start, column) = if context_lines_before == 0 {
            (line, start, start - self.line_start(line).min(start))
        } else {
            let first = line.saturating_sub(context_lines_before);
            (first, self.line_start(first), 0)
        };
        // The data ends after the newline that closes the `after`-th line following
        // the span's last one (newlines strictly after `last`), or at the end.
        let after_last = self.newlines.partition_point(|&n| n <= last);
        // miette resets the column once it reads past the span's line.
        let column = if context_lines_after > 0 && after_last < self.newlines.len() {
            0
        } else {
            column
        };
        let end = if last >= len {
            len
        } else if context_lines_after == 0 {
            last + 1
        } else {
            match self.newlines.get(after_last + context_lines_after) {
                Some(&n) => n + 1,
                None => len,
            }
        };
        if end < last || data_start > end {
            return Err(MietteError::OutOfBounds);
        }
        let data = &self.text.as_bytes()[data_start..end];
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            data,
            (data_start, end - data_start).into(),
            first_line,
            self.in_chars(start, column),
            self.newlines_before(end),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every span of a few texts reads as miette's own `String` source reads it, but for
    /// columns counted in characters.
    #[test]
    fn reads_spans_as_miette_does() {
        let texts = [
            "name: demo\nsources:\n  a: { type: file }\n\ntransforms:\n  t:\n    filter: x > 1\n",
            "one line, no newline",
            "\n\nblank lines first\nand last\n\n",
            "ünïcödé: ✓\nnext: line\n",
        ];
        for text in texts {
            let ours = SpecSource::new("spec.yaml", text);
            let theirs = text.to_string();
            for start in 0..=text.len() {
                for len in [0, 1, 2, 7, 30] {
                    for (before, after) in [(0, 0), (1, 1), (2, 1), (0, 2)] {
                        let span = SourceSpan::new(start.into(), len);
                        let a = ours.read_span(&span, before, after);
                        let b = theirs.read_span(&span, before, after);
                        match (a, b) {
                            (Ok(a), Ok(b)) => {
                                let at = format!("{text:?} {start}+{len} ({before},{after})");
                                assert_eq!(a.data(), b.data(), "{at}");
                                assert_eq!(a.span(), b.span(), "{at}");
                                assert_eq!(a.line(), b.line(), "{at}");
                                // In characters; a span starting inside a character keeps bytes.
                                let chars = text
                                    .get(start - b.column()..start)
                                    .map_or(b.column(), |s| s.chars().count());
                                assert_eq!(a.column(), chars, "{at}");
                                assert_eq!(a.line_count(), b.line_count(), "{at}");
                                assert_eq!(a.name(), Some("spec.yaml"));
                            }
                            (Err(_), Err(_)) => {}
                            (a, b) => panic!("{text:?} {start}+{len}: ours {:?}, miette's {:?}", a.is_ok(), b.is_ok()),
                        }
                    }
                }
            }
        }
    }
}
