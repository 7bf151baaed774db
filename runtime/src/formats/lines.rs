//! Plain text lines: each record is one line of UTF-8 text.

use super::{Decoder, Encoder};
use crate::errors::{DecodeError, EvalError};
use std::marker::PhantomData;

/// A generated record type holding one line of text.
pub trait LineRecord: Sized {
    fn from_line(line: &str) -> Self;
    fn line(&self) -> &str;
    /// Becomes `from_line(line)`, reusing the string's buffer.
    fn set_line(&mut self, line: &str) {
        *self = Self::from_line(line);
    }
}

/// Decodes each record as a line of text. Blank lines are records too (a log may have
/// them); invalid UTF-8 is a decode error.
pub struct LinesDecoder<T>(PhantomData<fn() -> T>);

impl<T: LineRecord> Default for LinesDecoder<T> {
    fn default() -> Self {
        LinesDecoder::new()
    }
}

impl<T: LineRecord> LinesDecoder<T> {
    pub fn new() -> Self {
        LinesDecoder(PhantomData)
    }
}

impl<T: LineRecord + Send + 'static> Decoder for LinesDecoder<T> {
    type Output = T;

    fn decode(&mut self, raw: &[u8]) -> Result<Option<T>, DecodeError> {
        match std::str::from_utf8(raw) {
            Ok(line) => Ok(Some(T::from_line(line))),
            Err(e) => Err(DecodeError::new(format!("invalid UTF-8 at byte {}", e.valid_up_to()))),
        }
    }

    fn decode_into(&mut self, raw: &[u8], into: &mut Result<Option<T>, DecodeError>) {
        match (std::str::from_utf8(raw), &mut *into) {
            (Ok(line), Ok(Some(record))) => record.set_line(line),
            _ => *into = self.decode(raw),
        }
    }

    /// Each line decodes on its own.
    fn fork(&self) -> Option<Self> {
        Some(LinesDecoder::new())
    }
}

/// Writes each record's line followed by `'\n'`.
pub struct LinesEncoder<T>(PhantomData<fn(&T)>);

impl<T: LineRecord> Default for LinesEncoder<T> {
    fn default() -> Self {
        LinesEncoder::new()
    }
}

impl<T: LineRecord> LinesEncoder<T> {
    pub fn new() -> Self {
        LinesEncoder(PhantomData)
    }
}

/// A copy writes what the original would: it keeps nothing between records.
impl<T> Clone for LinesEncoder<T> {
    fn clone(&self) -> Self {
        LinesEncoder(PhantomData)
    }
}

impl<T: LineRecord> Encoder for LinesEncoder<T> {
    type Input = T;

    fn encode(&mut self, rec: &T, out: &mut Vec<u8>) -> Result<(), EvalError> {
        out.extend_from_slice(rec.line().as_bytes());
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Line(String);

    impl LineRecord for Line {
        fn from_line(line: &str) -> Self {
            Line(line.to_owned())
        }
        fn line(&self) -> &str {
            &self.0
        }
        fn set_line(&mut self, line: &str) {
            self.0.clear();
            self.0.push_str(line);
        }
    }

    #[test]
    fn decoding_over_the_last_line_gives_what_decoding_gives() {
        let mut d = LinesDecoder::<Line>::new();
        let mut into = Ok(None);
        for raw in [&b"a long first line"[..], b"b", b"", b"ab\xFFc", b"after a bad one"] {
            d.decode_into(raw, &mut into);
            assert_eq!(into, d.decode(raw));
        }
    }

    #[test]
    fn lines_round_trip_and_reject_bad_utf8() {
        let mut d = LinesDecoder::<Line>::new();
        let l = d.decode(b"h\xC3\xA9llo").ok().flatten().map(|l| l.0);
        assert_eq!(l.as_deref(), Some("héllo"));
        assert_eq!(d.decode(b"").ok().flatten().map(|l| l.0).as_deref(), Some(""));
        assert_eq!(
            d.decode(b"ab\xFFc").err().map(|e| e.reason).as_deref(),
            Some("invalid UTF-8 at byte 2")
        );
        let mut out = Vec::new();
        assert_eq!(
            LinesEncoder::<Line>::new().encode(&Line("x y".into()), &mut out),
            Ok(())
        );
        assert_eq!(out, b"x y\n");
    }
}
