//! The fast path of JSON encoding: a generated record writes itself ([`WriteJson`]), its
//! keys escaped once by the compiler and each value written as serde_json writes it (a
//! number with the formatter serde_json uses, `itoa` or `zmij`), so the bytes are the
//! ones serde_json would write for the whole record. Where it cannot (a non-finite
//! float, or a record with the empty impl: timestamps in seconds or RFC 3339) it answers
//! `false`, and the encoder has serde_json write (or refuse) the record.

use std::cell::RefCell;

/// A value that writes itself as JSON, as serde_json would.
pub trait WriteJson {
    /// Appends the value; `false` where it cannot, with `out` left for the caller to cut
    /// back.
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }
}

/// A value serde_json writes (writing into a `Vec` cannot fail).
fn serde_writes<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> bool {
    serde_json::to_writer(out, value).is_ok()
}

impl WriteJson for String {
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        let bytes = self.as_bytes();
        // Most strings have nothing serde_json escapes (a quote, a backslash, a control
        // character): their bytes go between quotes as they are, found a word at a time.
        if super::scan::plain_run(bytes).is_none() {
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            extend_short(out, bytes);
            out.push(b'"');
            return true;
        }
        serde_writes(self.as_str(), out)
    }
}

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
        true
    }
}

/// Formatted by itoa, as serde_json formats it.
impl WriteJson for i64 {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        write_i64(out, *self);
        true
    }
}

/// An integer and its text.
#[derive(Clone, Copy)]
struct Formatted {
    value: i64,
    len: u8,
    text: [u8; 20],
}

/// Integers from this many up (in magnitude) are looked up among the last ones written.
const RECENT_FROM: u64 = 1_000_000;

thread_local! {
    /// The last two integers of [`RECENT_FROM`] or more written on this thread, with
    /// their text: every row of a window repeats its bounds (ms since 1970, 13 digits),
    /// and formatting them again was a twentieth of the instructions of a hopping window
    /// whose rows are encoded. Small integers are formatted quicker than looked up.
    static RECENT: RefCell<[Formatted; 2]> = const {
        RefCell::new([Formatted { value: 0, len: 0, text: [0; 20] }; 2])
    };
}

fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value.unsigned_abs() < RECENT_FROM {
        extend_short(out, itoa::Buffer::new().format(value).as_bytes());
        return;
    }
    RECENT.with_borrow_mut(|recent| {
        // `len` is 0 only in an entry never written, whose `value` (0) is never looked up.
        if let Some(seen) = recent.iter().find(|seen| seen.value == value) {
            extend_short(out, &seen.text[..usize::from(seen.len)]);
            return;
        }
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(value).as_bytes();
        recent[1] = recent[0];
        recent[0] = Formatted {
            value,
            len: text.len() as u8,
            text: [0; 20],
        };
        recent[0].text[..text.len()].copy_from_slice(text);
        extend_short(out, text);
    });
}

impl WriteJson for u64 {
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        extend_short(out, itoa::Buffer::new().format(*self).as_bytes());
        true
    }
}

/// Formatted by zmij, as serde_json formats it. serde_json writes a non-finite float as
/// `null`; the encoder's serde path refuses it.
impl WriteJson for f64 {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        if !self.is_finite() {
            return false;
        }
        extend_short(out, zmij::Buffer::new().format_finite(*self).as_bytes());
        true
    }
}

/// `out.extend_from_slice(bytes)`, with up to 32 bytes copied in place rather than by a
/// call to `memmove`: a row's numbers and short strings are a few bytes each, and those
/// calls took a twentieth of the time of a hopping window whose rows are encoded (the
/// copies here are two loads and two stores of fixed size, overlapping).
#[inline(always)]
fn extend_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n > 32 {
        out.extend_from_slice(bytes);
        return;
    }
    let at = out.len();
    out.extend_from_slice(&[0; 32]);
    let into = &mut out[at..at + 32];
    match n {
        16..=32 => {
            into[..16].copy_from_slice(&bytes[..16]);
            into[n - 16..n].copy_from_slice(&bytes[n - 16..]);
        }
        8..=15 => {
            into[..8].copy_from_slice(&bytes[..8]);
            into[n - 8..n].copy_from_slice(&bytes[n - 8..]);
        }
        4..=7 => {
            into[..4].copy_from_slice(&bytes[..4]);
            into[n - 4..n].copy_from_slice(&bytes[n - 4..]);
        }
        _ => {
            for (to, &from) in into.iter_mut().zip(bytes) {
                *to = from;
            }
        }
    }
    out.truncate(at + n);
}

impl<T: WriteJson> WriteJson for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Some(value) => value.write_json(out),
            None => {
                out.extend_from_slice(b"null");
                true
            }
        }
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if !item.write_json(out) {
                return false;
            }
        }
        out.push(b']');
        true
    }
}

/// Untyped values (the runtime's tests, dead letters) go through serde_json.
impl WriteJson for serde_json::Value {}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::formats::finite::Finite;
    use crate::test_util::Rng;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Rec {
        s: String,
        i: i64,
        u: u64,
        f: f64,
        b: bool,
        o: Option<f64>,
        l: Vec<Option<String>>,
        #[serde(rename = "n\"ested")]
        n: Option<Inner>,
    }

    #[derive(Serialize)]
    struct Inner {
        x: f64,
    }

    /// What the compiler generates (`codegen/records.rs`): each key after `{` or `,`,
    /// escaped as serde_json escapes it, then the value.
    macro_rules! write_record {
        ($name:ident { $($field:ident: $key:literal),* }) => {
            impl WriteJson for $name {
                fn write_json(&self, out: &mut Vec<u8>) -> bool {
                    let mut before = b'{';
                    $(
                        out.push(before);
                        before = b',';
                        out.extend_from_slice($key);
                        if !self.$field.write_json(out) {
                            return false;
                        }
                    )*
                    let _ = before;
                    out.push(b'}');
                    true
                }
            }
        };
    }
    pub(in crate::formats::json) use write_record;

    write_record!(Rec {
        s: b"\"s\":",
        i: b"\"i\":",
        u: b"\"u\":",
        f: b"\"f\":",
        b: b"\"b\":",
        o: b"\"o\":",
        l: b"\"l\":",
        n: b"\"n\\\"ested\":"
    });
    write_record!(Inner { x: b"\"x\":" });

    impl Rng {
        fn float(&mut self) -> f64 {
            match self.next() % 8 {
                0 => [
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    0.0,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                    5e-324,
                ][(self.next() % 8) as usize],
                1 => f64::from_bits(self.next()),
                _ => (self.next() as i64 >> (self.next() % 60)) as f64 / 10f64.powi((self.next() % 20) as i32 - 5),
            }
        }
        fn text(&mut self) -> String {
            // Escapes in the first word, in a later word, in the tail, and none.
            [
                "",
                "dev-1",
                "é€😀",
                "a\"b\\c",
                "line\nbreak\t\u{1}\u{7f}",
                "</script>",
                "0123456789abcdef\"quoted",
                "sixteen plain b\u{1f}",
                "a plain device name, forty bytes long ..",
            ][(self.next() % 9) as usize]
                .to_owned()
        }
    }

    #[test]
    fn integers_written_again_from_the_last_ones_are_the_ones_itoa_writes() {
        let mut rng = Rng(3);
        let edges = [i64::MIN, i64::MAX, -1_000_000, 999_999, 1_000_000, -999_999, 0];
        let mut recent: Vec<i64> = Vec::new();
        for step in 0..200_000 {
            let value = match rng.next() % 4 {
                // Repeats of the last few, as a window's bounds repeat.
                0 | 1 if !recent.is_empty() => recent[(rng.next() % recent.len() as u64) as usize],
                2 => edges[(rng.next() % edges.len() as u64) as usize],
                _ => (rng.next() as i64) >> (rng.next() % 64),
            };
            recent.push(value);
            if recent.len() > 3 {
                recent.remove(0);
            }
            let mut out = b"x".to_vec();
            assert!(value.write_json(&mut out));
            assert_eq!(&out[1..], itoa::Buffer::new().format(value).as_bytes(), "step {step}");
        }
    }

    #[test]
    fn a_short_copy_appends_exactly_the_bytes_at_every_length() {
        let source: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut out = b"kept".to_vec();
            extend_short(&mut out, &source[..n]);
            assert_eq!(&out[..4], b"kept");
            assert_eq!(&out[4..], &source[..n], "{n} bytes");
        }
    }

    /// The record writes the bytes serde_json writes (behind the encoder's `Finite`),
    /// and refuses exactly the records serde_json refuses there.
    #[test]
    fn writes_what_serde_json_writes() {
        let mut rng = Rng(7);
        let (mut refused, mut written) = (0, 0);
        for _ in 0..100_000 {
            let rec = Rec {
                s: rng.text(),
                i: rng.next() as i64 >> (rng.next() % 64),
                u: rng.next() >> (rng.next() % 64),
                f: rng.float(),
                b: rng.next().is_multiple_of(2),
                o: (!rng.next().is_multiple_of(3)).then(|| rng.float()),
                l: (0..rng.next() % 3)
                    .map(|_| (!rng.next().is_multiple_of(4)).then(|| rng.text()))
                    .collect(),
                n: rng.next().is_multiple_of(2).then(|| Inner { x: rng.float() }),
            };
            let mut out = b"before".to_vec();
            let fast = rec.write_json(&mut out);
            let slow = serde_json::to_vec(&Finite(&rec));
            match slow {
                Ok(bytes) => {
                    assert!(
                        fast,
                        "refused what serde_json writes: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                    assert_eq!(String::from_utf8_lossy(&out[6..]), String::from_utf8_lossy(&bytes));
                    written += 1;
                }
                Err(_) => {
                    assert!(
                        !fast,
                        "wrote what serde_json refuses: {}",
                        String::from_utf8_lossy(&out)
                    );
                    refused += 1;
                }
            }
        }
        assert!(
            written > 40_000 && refused > 1_000,
            "{written} written, {refused} refused"
        );
    }
}
