//! JSON, one object per line (JSON Lines).

mod scan;
mod write;

pub use self::scan::{JsonScan, ScanJson};
pub use self::write::WriteJson;

use super::finite::Finite;
use super::{is_blank, Decoder, Encoder};
use crate::errors::{DecodeError, EvalError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// Decodes one JSON value per record into `T`; blank lines are skipped. The scanner
/// (`T`'s [`ScanJson`]) reads the common shape of a record; serde_json reads everything
/// else, and answers every error.
pub struct JsonDecoder<T>(PhantomData<fn() -> T>);

impl<T: DeserializeOwned + ScanJson> Default for JsonDecoder<T> {
    fn default() -> Self {
        JsonDecoder::new()
    }
}

impl<T: DeserializeOwned + ScanJson> JsonDecoder<T> {
    pub fn new() -> Self {
        JsonDecoder(PhantomData)
    }
}

impl<T: DeserializeOwned + ScanJson + Send + 'static> Decoder for JsonDecoder<T> {
    type Output = T;

    fn decode(&mut self, raw: &[u8]) -> Result<Option<T>, DecodeError> {
        let Some(text) = text(raw) else {
            return Ok(None);
        };
        let mut scan = JsonScan::new(text);
        if let Some(record) = T::scan(&mut scan) {
            if scan.at_end() {
                return Ok(Some(record));
            }
        }
        serde_json::from_slice(text).map(Some).map_err(DecodeError::from)
    }

    fn decode_into(&mut self, raw: &[u8], into: &mut Result<Option<T>, DecodeError>) {
        let Some(text) = text(raw) else {
            *into = Ok(None);
            return;
        };
        let Ok(Some(record)) = into else {
            *into = self.decode(raw);
            return;
        };
        let mut scan = JsonScan::new(text);
        if !(record.scan_into(&mut scan).is_some() && scan.at_end()) {
            // Not the scanner's: serde_json's, without scanning the line a second time.
            *into = serde_json::from_slice(text).map(Some).map_err(DecodeError::from);
        }
    }

    /// Each line decodes on its own.
    fn fork(&self) -> Option<Self> {
        Some(JsonDecoder::new())
    }
}

/// The JSON text of a raw record; `None` for a blank one. A UTF-8 byte order mark
/// (first line of some Windows files) is not JSON.
fn text(raw: &[u8]) -> Option<&[u8]> {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    (!is_blank(raw)).then_some(raw)
}

/// Encodes `T` as one line of compact JSON. A non-finite float is an encode error (not
/// the `null` serde_json would silently write). `T` writes itself ([`WriteJson`]) where
/// it can; serde_json writes the rest, and reports the error.
pub struct JsonEncoder<T>(PhantomData<fn(&T)>);

/// A copy encodes as the original does: it holds nothing.
impl<T> Clone for JsonEncoder<T> {
    fn clone(&self) -> Self {
        JsonEncoder(PhantomData)
    }
}

impl<T: Serialize + WriteJson> Default for JsonEncoder<T> {
    fn default() -> Self {
        JsonEncoder::new()
    }
}

impl<T: Serialize + WriteJson> JsonEncoder<T> {
    pub fn new() -> Self {
        JsonEncoder(PhantomData)
    }
}

impl<T: Serialize + WriteJson> Encoder for JsonEncoder<T> {
    type Input = T;

    fn encode(&mut self, rec: &T, out: &mut Vec<u8>) -> Result<(), EvalError> {
        let start = out.len();
        if rec.write_json(out) {
            out.push(b'\n');
            return Ok(());
        }
        out.truncate(start);
        match serde_json::to_writer(&mut *out, &Finite(rec)) {
            Ok(()) => {
                out.push(b'\n');
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(EvalError::InvalidArgument {
                    function: "json encoding",
                    reason: e.to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
    struct Rec {
        id: String,
        v: f64,
        n: Option<i64>,
    }
    super::scan::tests::scan_record!(Rec { id, v } optional { n });

    super::write::tests::write_record!(Rec {
        id: b"\"id\":",
        v: b"\"v\":",
        n: b"\"n\":"
    });

    fn dec(s: &str) -> Result<Option<Rec>, DecodeError> {
        JsonDecoder::<Rec>::new().decode(s.as_bytes())
    }

    #[test]
    fn decodes_skips_blanks_and_reports_errors() {
        assert_eq!(
            dec(r#"{"id":"a","v":1.5}"#),
            Ok(Some(Rec {
                id: "a".into(),
                v: 1.5,
                n: None
            }))
        );
        assert_eq!(
            dec("\u{feff}{\"id\":\"a\",\"v\":1,\"n\":2}")
                .ok()
                .flatten()
                .and_then(|r| r.n),
            Some(2)
        );
        assert_eq!(dec("  \t"), Ok(None));
        assert_eq!(dec(""), Ok(None));
        let missing = dec(r#"{"v":1}"#).err().map(|e| e.reason).unwrap_or_default();
        assert!(missing.contains("missing field `id`"), "{missing}");
        let wrong = dec(r#"{"id":"a","v":"hot"}"#)
            .err()
            .map(|e| e.reason)
            .unwrap_or_default();
        assert!(wrong.contains("invalid type"), "{wrong}");
        assert!(dec("{not json").is_err());
        assert!(dec(r#"{"id":"a","v":1} trailing"#).is_err());
    }

    #[test]
    fn decoding_over_the_last_record_gives_what_decoding_gives() {
        let lines = [
            r#"{"id":"first, and long enough to need its own buffer","v":1.5,"n":2}"#,
            r#"{"id":"b","v":2}"#,
            r#"{"v":3,"id":"c\u0064"}"#,
            "",
            r#"{"id":"d","v":"hot"}"#,
            r#"{"id":"e","v":5,"n":null}"#,
            r#"{"id":"f","v":6,"n":7} trailing"#,
        ];
        let mut decoder = JsonDecoder::<Rec>::new();
        let mut into = Ok(None);
        for line in lines.iter().chain(&lines) {
            decoder.decode_into(line.as_bytes(), &mut into);
            assert_eq!(into, decoder.decode(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn encodes_one_line_and_rejects_nan() {
        let mut enc = JsonEncoder::<Rec>::new();
        let mut out = Vec::new();
        assert_eq!(
            enc.encode(
                &Rec {
                    id: "a\nb".into(),
                    v: 2.0,
                    n: Some(3)
                },
                &mut out
            ),
            Ok(())
        );
        assert_eq!(out, b"{\"id\":\"a\\nb\",\"v\":2.0,\"n\":3}\n");
        let before = out.len();
        let err = enc.encode(
            &Rec {
                id: "x".into(),
                v: f64::NAN,
                n: None,
            },
            &mut out,
        );
        assert!(matches!(
            err,
            Err(EvalError::InvalidArgument {
                function: "json encoding",
                ..
            })
        ));
        assert_eq!(out.len(), before, "the failed record left nothing behind");
    }
}
