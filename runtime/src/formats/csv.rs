//! CSV (RFC 4180): a header line naming the columns, then one record per line.
//!
//! Columns are matched by name, not position, so a file whose columns are reordered or
//! extended still decodes. Each record is parsed into one reused buffer of unescaped
//! field bytes plus field boundaries; the generated `from_csv` then reads fields by
//! column index. Records are single lines: the sources frame by `'\n'`, so a quoted
//! field cannot contain a line break on input (one is quoted correctly on output).

use super::{is_blank, Decoder, Encoder};
use crate::errors::{DecodeError, EvalError};
use crate::time::{self, TsRepr};
use std::io::Write;
use std::marker::PhantomData;

/// A generated record type that can be read from and written to CSV.
pub trait CsvRecord: Sized {
    /// Column names, in the order `from_csv` / `to_csv` use them.
    const COLUMNS: &'static [&'static str];
    /// Reads a record; `row.get(i)` reads the column `COLUMNS[i]`.
    fn from_csv(row: &CsvRow<'_>) -> Result<Self, DecodeError>;
    /// Writes the fields in `COLUMNS` order.
    fn to_csv(&self, w: &mut CsvWriter<'_>);
}

/// A parsed CSV field that converts to a record field type.
pub trait FromCsvField: Sized {
    fn from_csv_field(s: &str) -> Result<Self, String>;
}

impl FromCsvField for String {
    fn from_csv_field(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}

fn parse_trimmed<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty value, expected {what}"));
    }
    t.parse().map_err(|_| format!("invalid {what} `{s}`"))
}

impl FromCsvField for i64 {
    fn from_csv_field(s: &str) -> Result<Self, String> {
        parse_trimmed(s, "integer")
    }
}

impl FromCsvField for u64 {
    fn from_csv_field(s: &str) -> Result<Self, String> {
        parse_trimmed(s, "unsigned integer")
    }
}

impl FromCsvField for f64 {
    fn from_csv_field(s: &str) -> Result<Self, String> {
        parse_trimmed(s, "number")
    }
}

/// `true`/`false` (any case, as spreadsheets write `TRUE`) or `1`/`0`.
impl FromCsvField for bool {
    fn from_csv_field(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("true") || t == "1" {
            Ok(true)
        } else if t.eq_ignore_ascii_case("false") || t == "0" {
            Ok(false)
        } else {
            Err(format!("invalid boolean `{s}`"))
        }
    }
}

/// An empty (or blank) field is `None`.
impl<T: FromCsvField> FromCsvField for Option<T> {
    fn from_csv_field(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            Ok(None)
        } else {
            T::from_csv_field(s).map(Some)
        }
    }
}

/// One decoded CSV record, read by column index (an index into `T::COLUMNS`).
pub struct CsvRow<'a> {
    /// Unescaped bytes of every field, concatenated.
    text: &'a str,
    /// Field boundaries in `text`, in file order.
    fields: &'a [(usize, usize)],
    /// For each of `columns`, its position in the file.
    positions: &'a [usize],
    columns: &'static [&'static str],
}

impl CsvRow<'_> {
    fn column_name(&self, column: usize) -> &'static str {
        self.columns.get(column).copied().unwrap_or("?")
    }

    fn field(&self, column: usize) -> Result<&str, DecodeError> {
        let name = self.column_name(column);
        let pos = *self
            .positions
            .get(column)
            .ok_or_else(|| DecodeError::new(format!("no column number {column}")))?;
        self.fields
            .get(pos)
            .and_then(|&(s, e)| self.text.get(s..e))
            .ok_or_else(|| {
                DecodeError::new(format!(
                    "column `{name}` is missing: the row has {} fields",
                    self.fields.len()
                ))
            })
    }

    pub fn get<T: FromCsvField>(&self, column: usize) -> Result<T, DecodeError> {
        let s = self.field(column)?;
        T::from_csv_field(s)
            .map_err(|reason| DecodeError::new(format!("column `{}`: {reason}", self.column_name(column))))
    }

    pub fn timestamp(&self, column: usize, repr: TsRepr) -> Result<i64, DecodeError> {
        let s = self.field(column)?;
        time::parse_repr(s, repr).ok_or_else(|| {
            DecodeError::new(format!(
                "column `{}`: invalid timestamp `{s}` ({repr:?})",
                self.column_name(column)
            ))
        })
    }

    /// An empty field is `None`.
    pub fn opt_timestamp(&self, column: usize, repr: TsRepr) -> Result<Option<i64>, DecodeError> {
        if self.field(column)?.trim().is_empty() {
            return Ok(None);
        }
        self.timestamp(column, repr).map(Some)
    }
}

/// Splits one line into unescaped fields (RFC 4180: `""` is a quote inside a quoted
/// field; a quoted field may contain the delimiter).
fn parse_row(line: &[u8], delimiter: u8, text: &mut Vec<u8>, fields: &mut Vec<(usize, usize)>) -> Result<(), String> {
    text.clear();
    fields.clear();
    let n = line.len();
    let mut i = 0;
    loop {
        let start = text.len();
        if line.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let rest = &line[i.min(n)..];
                let Some(p) = rest.iter().position(|&b| b == b'"') else {
                    return Err(format!("field {} has an unterminated quote", fields.len() + 1));
                };
                text.extend_from_slice(&rest[..p]);
                i += p + 1;
                if line.get(i) == Some(&b'"') {
                    text.push(b'"');
                    i += 1;
                } else {
                    break;
                }
            }
            if i < n && line[i] != delimiter {
                return Err(format!("field {} has text after its closing quote", fields.len() + 1));
            }
        } else {
            let rest = &line[i.min(n)..];
            let p = rest.iter().position(|&b| b == delimiter).unwrap_or(rest.len());
            text.extend_from_slice(&rest[..p]);
            i += p;
        }
        fields.push((start, text.len()));
        if i >= n {
            return Ok(());
        }
        i += 1; // the delimiter
    }
}

/// Decodes CSV records into `T`. The first non-blank record is the header.
///
/// A header that does not name each column of `T` exactly once (one missing, or one
/// named twice, which would make the column ambiguous) makes every record bad, with
/// the reason: the header comes with the data, after the pipeline started, and the
/// rows stay in the dead letters to be replayed once the file is fixed. Columns `T`
/// does not read may be missing or repeated. A row with more fields than the header
/// is bad (fewer is fine as long as the fields read are there).
pub struct CsvDecoder<T> {
    delimiter: u8,
    /// `None` until the header is read; then the file position of each of
    /// `T::COLUMNS` and the number of fields, or the error every record will report.
    header: Option<Result<Header, String>>,
    text: Vec<u8>,
    fields: Vec<(usize, usize)>,
    _record: PhantomData<fn() -> T>,
}

impl<T: CsvRecord> CsvDecoder<T> {
    pub fn new(delimiter: u8) -> Self {
        CsvDecoder {
            delimiter,
            header: None,
            text: Vec::new(),
            fields: Vec::new(),
            _record: PhantomData,
        }
    }

    fn read_header(&mut self, raw: &[u8]) -> Result<Header, String> {
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        parse_row(raw, self.delimiter, &mut self.text, &mut self.fields).map_err(|e| format!("invalid header: {e}"))?;
        let text = std::str::from_utf8(&self.text).map_err(|_| "invalid header: not UTF-8".to_owned())?;
        let names: Vec<&str> = self
            .fields
            .iter()
            .map(|&(s, e)| text.get(s..e).unwrap_or("").trim())
            .collect();
        let mut positions = Vec::with_capacity(T::COLUMNS.len());
        let mut missing = Vec::new();
        for column in T::COLUMNS {
            let mut at = names.iter().enumerate().filter(|(_, n)| *n == column).map(|(p, _)| p);
            match (at.next(), at.next()) {
                (Some(p), None) => positions.push(p),
                (Some(first), Some(second)) => {
                    return Err(format!(
                        "column `{column}` is named twice in the header (fields {} and {}), so which one to read is ambiguous",
                        first + 1,
                        second + 1
                    ))
                }
                (None, _) => missing.push(format!("`{column}`")),
            }
        }
        match missing.len() {
            0 => Ok(Header {
                positions,
                width: names.len(),
            }),
            1 => Err(format!("missing column {} in header", missing[0])),
            _ => Err(format!("missing columns {} in header", missing.join(", "))),
        }
    }
}

/// What the header line says: where each column read is, and how many fields a row has.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Header {
    positions: Vec<usize>,
    width: usize,
}

impl<T: CsvRecord + Send + 'static> Decoder for CsvDecoder<T> {
    type Output = T;

    /// The header as read (or the error every record reports), once it was read.
    fn save_state(&self) -> Vec<u8> {
        let saved: Option<Result<&Header, &String>> = self.header.as_ref().map(Result::as_ref);
        postcard::to_allocvec(&saved).unwrap_or_default()
    }

    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        self.header = postcard::from_bytes(saved).map_err(|e| format!("the saved CSV header does not decode: {e}"))?;
        Ok(())
    }

    /// Once the header is read, each row decodes on its own.
    fn fork(&self) -> Option<Self> {
        let header = self.header.clone()?;
        Some(CsvDecoder {
            header: Some(header),
            ..CsvDecoder::new(self.delimiter)
        })
    }

    fn decode(&mut self, raw: &[u8]) -> Result<Option<T>, DecodeError> {
        if is_blank(raw) {
            return Ok(None);
        }
        let header = match &self.header {
            None => {
                let header = self.read_header(raw);
                self.header = Some(header);
                return Ok(None);
            }
            Some(Err(e)) => return Err(DecodeError::new(e.clone())),
            Some(Ok(header)) => header,
        };
        parse_row(raw, self.delimiter, &mut self.text, &mut self.fields).map_err(DecodeError::new)?;
        if self.fields.len() > header.width {
            return Err(DecodeError::new(format!(
                "the row has {} fields, more than the {} of the header",
                self.fields.len(),
                header.width
            )));
        }
        let text = std::str::from_utf8(&self.text)
            .map_err(|e| DecodeError::new(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
        let row = CsvRow {
            text,
            fields: &self.fields,
            positions: &header.positions,
            columns: T::COLUMNS,
        };
        T::from_csv(&row).map(Some)
    }
}

/// A value that can be written as one CSV field (unquoted; the writer quotes).
pub trait ToCsvField {
    fn to_csv_field(&self, out: &mut Vec<u8>);
}

impl ToCsvField for str {
    fn to_csv_field(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl ToCsvField for String {
    fn to_csv_field(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

macro_rules! display_field {
    ($($t:ty),*) => {$(
        impl ToCsvField for $t {
            fn to_csv_field(&self, out: &mut Vec<u8>) {
                // Writing into a Vec cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

display_field!(i64, u64, f64, bool);

/// `None` is an empty field.
impl<T: ToCsvField> ToCsvField for Option<T> {
    fn to_csv_field(&self, out: &mut Vec<u8>) {
        if let Some(v) = self {
            v.to_csv_field(out);
        }
    }
}

/// Writes the fields of one record, quoting those that need it.
pub struct CsvWriter<'a> {
    out: &'a mut Vec<u8>,
    delimiter: u8,
    first: bool,
}

impl<'a> CsvWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, delimiter: u8) -> Self {
        CsvWriter {
            out,
            delimiter,
            first: true,
        }
    }

    fn begin(&mut self) -> usize {
        if !self.first {
            self.out.push(self.delimiter);
        }
        self.first = false;
        self.out.len()
    }

    /// Quotes the field that starts at `start` if it contains the delimiter, a quote or
    /// a line break, doubling its quotes — in place, without a scratch buffer.
    fn finish(&mut self, start: usize) {
        let d = self.delimiter;
        let field = &self.out[start..];
        if !field.iter().any(|&b| b == d || b == b'"' || b == b'\n' || b == b'\r') {
            return;
        }
        let quotes = field.iter().filter(|&&b| b == b'"').count();
        let old_end = self.out.len();
        self.out.resize(old_end + quotes + 2, 0);
        let mut w = self.out.len() - 1;
        self.out[w] = b'"';
        let mut r = old_end;
        while r > start {
            r -= 1;
            let b = self.out[r];
            w -= 1;
            self.out[w] = b;
            if b == b'"' {
                w -= 1;
                self.out[w] = b'"';
            }
        }
        self.out[start] = b'"';
    }

    pub fn field<T: ToCsvField + ?Sized>(&mut self, v: &T) {
        let start = self.begin();
        v.to_csv_field(self.out);
        self.finish(start);
    }

    pub fn timestamp(&mut self, ms: i64, repr: TsRepr) {
        let start = self.begin();
        time::write_repr(ms, repr, self.out);
        self.finish(start);
    }

    /// `None` is an empty field.
    pub fn opt_timestamp(&mut self, ms: Option<i64>, repr: TsRepr) {
        match ms {
            Some(ms) => self.timestamp(ms, repr),
            None => {
                self.begin();
            }
        }
    }
}

/// Encodes `T` as CSV lines, with a header line first when asked.
pub struct CsvEncoder<T> {
    delimiter: u8,
    header: bool,
    header_written: bool,
    _record: PhantomData<fn(&T)>,
}

impl<T: CsvRecord> CsvEncoder<T> {
    pub fn new(delimiter: u8, header: bool) -> Self {
        CsvEncoder {
            delimiter,
            header,
            header_written: false,
            _record: PhantomData,
        }
    }
}

impl<T: CsvRecord> Encoder for CsvEncoder<T> {
    type Input = T;

    /// Whether the header line was written.
    fn save_state(&self) -> Vec<u8> {
        vec![u8::from(self.header_written)]
    }

    fn restore_state(&mut self, saved: &[u8]) -> Result<(), String> {
        self.header_written = saved == [1];
        Ok(())
    }

    fn encode(&mut self, rec: &T, out: &mut Vec<u8>) -> Result<(), EvalError> {
        if self.header && !self.header_written {
            let mut w = CsvWriter::new(out, self.delimiter);
            for column in T::COLUMNS {
                w.field(*column);
            }
            out.push(b'\n');
            self.header_written = true;
        }
        rec.to_csv(&mut CsvWriter::new(out, self.delimiter));
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Clone)]
    struct Reading {
        device: String,
        ts: i64,
        temp: f64,
        humidity: Option<f64>,
        ok: bool,
        seen: Option<i64>,
    }

    impl CsvRecord for Reading {
        const COLUMNS: &'static [&'static str] = &["device", "ts", "temp", "humidity", "ok", "seen"];
        fn from_csv(row: &CsvRow<'_>) -> Result<Self, DecodeError> {
            Ok(Reading {
                device: row.get(0)?,
                ts: row.timestamp(1, TsRepr::Rfc3339)?,
                temp: row.get(2)?,
                humidity: row.get(3)?,
                ok: row.get(4)?,
                seen: row.opt_timestamp(5, TsRepr::Seconds)?,
            })
        }
        fn to_csv(&self, w: &mut CsvWriter<'_>) {
            w.field(&self.device);
            w.timestamp(self.ts, TsRepr::Rfc3339);
            w.field(&self.temp);
            w.field(&self.humidity);
            w.field(&self.ok);
            w.opt_timestamp(self.seen, TsRepr::Seconds);
        }
    }

    fn decode_all(delimiter: u8, lines: &[&str]) -> Vec<Result<Option<Reading>, DecodeError>> {
        let mut d = CsvDecoder::<Reading>::new(delimiter);
        lines.iter().map(|l| d.decode(l.as_bytes())).collect()
    }

    #[test]
    fn a_resumed_decoder_and_encoder_remember_the_header() {
        let mut d = CsvDecoder::<Reading>::new(b',');
        let header = "ok,seen,temp,ts,device,humidity";
        let row = "true,,1.5,2024-01-01T00:00:00Z,a,";
        assert!(matches!(d.decode(header.as_bytes()), Ok(None)));
        let first = d.decode(row.as_bytes());
        let mut resumed = CsvDecoder::<Reading>::new(b',');
        assert_eq!(resumed.restore_state(&d.save_state()), Ok(()));
        assert_eq!(resumed.decode(row.as_bytes()), first, "the row is a row, not a header");
        assert!(resumed.restore_state(b"\xff\xff").is_err());

        let mut e = CsvEncoder::<Reading>::new(b',', true);
        let rec = first.ok().flatten().unwrap_or_else(|| panic!("decoded"));
        let mut out = Vec::new();
        assert_eq!(e.encode(&rec, &mut out), Ok(()));
        let mut again = CsvEncoder::<Reading>::new(b',', true);
        assert_eq!(again.restore_state(&e.save_state()), Ok(()));
        let mut more = Vec::new();
        assert_eq!(again.encode(&rec, &mut more), Ok(()));
        assert_eq!(more.iter().filter(|b| **b == b'\n').count(), 1, "no second header");
    }

    #[test]
    fn parses_rfc4180_quoting() {
        let (mut text, mut fields) = (Vec::new(), Vec::new());
        let mut row = |line: &str| {
            parse_row(line.as_bytes(), b',', &mut text, &mut fields).map(|()| {
                fields
                    .iter()
                    .map(|&(s, e)| String::from_utf8_lossy(&text[s..e]).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            row("a,\"b,c\",\"say \"\"hi\"\"\","),
            Ok(vec!["a".into(), "b,c".into(), "say \"hi\"".into(), "".into()])
        );
        assert_eq!(row("\"\""), Ok(vec![String::new()]));
        assert_eq!(
            row("x\"y,z"),
            Ok(vec!["x\"y".into(), "z".into()]),
            "a quote inside an unquoted field is literal"
        );
        assert_eq!(row("a,\"open"), Err("field 2 has an unterminated quote".into()));
        assert_eq!(row("\"a\"b"), Err("field 1 has text after its closing quote".into()));
    }

    #[test]
    fn maps_header_by_name_and_skips_blank_lines() {
        let out = decode_all(
            b',',
            &[
                "",
                "\u{feff}extra, ok ,device,ts,temp,humidity,seen",
                "x,true,\"dev,1\",2024-01-01T00:00:00Z,21.5,,1.5",
                "  ",
                "x,0,dev2,1970-01-01T00:00:01.000Z,-3,40,",
            ],
        );
        assert_eq!(out[0], Ok(None));
        assert_eq!(out[1], Ok(None), "header is not a record");
        assert_eq!(
            out[2],
            Ok(Some(Reading {
                device: "dev,1".into(),
                ts: 1_704_067_200_000,
                temp: 21.5,
                humidity: None,
                ok: true,
                seen: Some(1500)
            }))
        );
        assert_eq!(out[3], Ok(None));
        assert_eq!(
            out[4],
            Ok(Some(Reading {
                device: "dev2".into(),
                ts: 1000,
                temp: -3.0,
                humidity: Some(40.0),
                ok: false,
                seen: None
            }))
        );
    }

    #[test]
    fn missing_column_fails_every_record() {
        let out = decode_all(b',', &["device,ts,temp,humidity,ok", "a,1,2,3,true", "b,1,2,3,true"]);
        assert_eq!(out[0], Ok(None));
        for r in &out[1..] {
            assert_eq!(
                r.as_ref().err().map(|e| e.reason.as_str()),
                Some("missing column `seen` in header")
            );
        }
        let out = decode_all(b',', &["device", "a"]);
        assert_eq!(
            out[1].as_ref().err().map(|e| e.reason.as_str()),
            Some("missing columns `ts`, `temp`, `humidity`, `ok`, `seen` in header")
        );
    }

    #[test]
    fn a_column_named_twice_fails_every_record_unless_it_is_not_read() {
        let out = decode_all(b',', &["device,ts,temp,humidity,ok,seen,temp", "a,1,2,3,true,,4"]);
        assert_eq!(
            out[1].as_ref().err().map(|e| e.reason.as_str()),
            Some("column `temp` is named twice in the header (fields 3 and 7), so which one to read is ambiguous")
        );
        // A column the schema does not read may repeat.
        let out = decode_all(
            b',',
            &[
                "note,device,ts,temp,humidity,ok,seen,note",
                "x,a,1970-01-01T00:00:00Z,2,,true,,y",
            ],
        );
        assert!(out[1].as_ref().is_ok_and(Option::is_some), "{:?}", out[1]);
    }

    #[test]
    fn a_row_with_more_fields_than_the_header_is_bad() {
        let out = decode_all(
            b',',
            &[
                "device,ts,temp,humidity,ok,seen",
                "a,1970-01-01T00:00:00Z,2,,true,,extra",
                "a,1970-01-01T00:00:00Z,2,,true,",
            ],
        );
        assert_eq!(
            out[1].as_ref().err().map(|e| e.reason.as_str()),
            Some("the row has 7 fields, more than the 6 of the header")
        );
        assert!(out[2].as_ref().is_ok_and(Option::is_some), "{:?}", out[2]);
    }

    #[test]
    fn bad_fields_name_their_column() {
        let header = "device;ts;temp;humidity;ok;seen";
        let out = decode_all(
            b';',
            &[
                header,
                "a;2024-01-01T00:00:00Z;hot;;true;",
                "a;yesterday;1;;true;",
                "a;2024-01-01T00:00:00Z;1",
                "a;2024-01-01T00:00:00Z;1;;maybe;",
                "a;\"x",
            ],
        );
        let reasons: Vec<String> = out[1..]
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.reason.clone()).unwrap_or_default())
            .collect();
        assert_eq!(
            reasons,
            [
                "column `temp`: invalid number `hot`",
                "column `ts`: invalid timestamp `yesterday` (Rfc3339)",
                "column `humidity` is missing: the row has 3 fields",
                "column `ok`: invalid boolean `maybe`",
                "field 2 has an unterminated quote",
            ]
        );
        let mut d = CsvDecoder::<Reading>::new(b',');
        assert_eq!(d.decode(header.replace(';', ",").as_bytes()), Ok(None));
        assert!(d.decode(b"\xff,1,2,,true,").is_err_and(|e| e.reason.contains("UTF-8")));
    }

    #[test]
    fn encode_then_decode_round_trips_awkward_values() {
        let records = vec![
            Reading {
                device: "plain".into(),
                ts: 0,
                temp: 1.25,
                humidity: Some(3.0),
                ok: true,
                seen: Some(1_700_000_000_500),
            },
            Reading {
                device: "comma, \"quoted\"\rcr".into(),
                ts: 1_704_067_200_123,
                temp: -0.5,
                humidity: None,
                ok: false,
                seen: None,
            },
            Reading {
                device: "".into(),
                ts: -1,
                temp: 1e21,
                humidity: Some(0.1),
                ok: true,
                seen: Some(-1500),
            },
        ];
        let mut enc = CsvEncoder::<Reading>::new(b',', true);
        let mut out = Vec::new();
        for r in &records {
            assert_eq!(enc.encode(r, &mut out), Ok(()));
        }
        let text = String::from_utf8(out).unwrap_or_default();
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "device,ts,temp,humidity,ok,seen");
        assert_eq!(lines[1], "plain,1970-01-01T00:00:00.000Z,1.25,3,true,1700000000.5");
        assert_eq!(
            lines[2],
            "\"comma, \"\"quoted\"\"\rcr\",2024-01-01T00:00:00.123Z,-0.5,,false,"
        );
        let decoded: Vec<Option<Reading>> = decode_all(b',', &lines)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(decoded[0], None);
        let decoded: Vec<Reading> = decoded.into_iter().flatten().collect();
        assert_eq!(decoded, records);
    }

    #[test]
    fn header_only_written_once_and_only_when_asked() {
        let rec = Reading {
            device: "d".into(),
            ts: 0,
            temp: 0.0,
            humidity: None,
            ok: true,
            seen: None,
        };
        let mut out = Vec::new();
        let mut enc = CsvEncoder::<Reading>::new(b'\t', false);
        assert_eq!(enc.encode(&rec, &mut out), Ok(()));
        assert_eq!(out, b"d\t1970-01-01T00:00:00.000Z\t0\t\ttrue\t\n");
        let mut out = Vec::new();
        let mut enc = CsvEncoder::<Reading>::new(b',', true);
        assert!(enc.encode(&rec, &mut out).is_ok() && enc.encode(&rec, &mut out).is_ok());
        assert_eq!(String::from_utf8_lossy(&out).matches("device").count(), 1);
    }
}
