//! JSON, one object per line (JSON Lines).

mod scan;

pub use self::scan::{JsonScan, ScanJson};

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
        // A UTF-8 byte order mark (first line of some Windows files) is not JSON.
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        if is_blank(raw) {
            return Ok(None);
        }
        let mut scan = JsonScan::new(raw);
        if let Some(record) = T::scan(&mut scan) {
            if scan.at_end() {
                return Ok(Some(record));
            }
        }
        serde_json::from_slice(raw).map(Some).map_err(DecodeError::from)
    }

    /// Each line decodes on its own.
    fn fork(&self) -> Option<Self> {
        Some(JsonDecoder::new())
    }
}

/// Encodes `T` as one line of compact JSON. A non-finite float is an encode error (not
/// the `null` serde_json would silently write).
pub struct JsonEncoder<T>(PhantomData<fn(&T)>);

impl<T: Serialize> Default for JsonEncoder<T> {
    fn default() -> Self {
        JsonEncoder::new()
    }
}

impl<T: Serialize> JsonEncoder<T> {
    pub fn new() -> Self {
        JsonEncoder(PhantomData)
    }
}

impl<T: Serialize> Encoder for JsonEncoder<T> {
    type Input = T;

    fn encode(&mut self, rec: &T, out: &mut Vec<u8>) -> Result<(), EvalError> {
        let start = out.len();
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

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Rec {
        id: String,
        v: f64,
        n: Option<i64>,
    }
    super::scan::tests::scan_record!(Rec { id, v } optional { n });

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
