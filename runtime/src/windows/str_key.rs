//! `StrKey`: the key of a window or table keyed by one string, its bytes kept inside it
//! when they fit (22 bytes: device ids, user ids, hostnames), on the heap otherwise.
//!
//! A `String` key keeps its bytes elsewhere in memory, so every lookup compared them
//! there and every result copied them from there. Where the state is larger than the
//! cache (a hopping window holds a pane per key per slide), each was a fetch from
//! memory: a fifth of the hopping benchmark's time. An inline key is compared and copied
//! from the entry the lookup reads anyway.
//!
//! Records hand their key over as a [`StrKeyRef`] (a `str` under another name), whose
//! owned form is a `StrKey`: the operators' `process(key: &Q)` with `Q: ToOwned<Owned =
//! Key>` then stores a key without building a `String` first. Both hash and compare as
//! the `str` they hold, so a `StrKey` is also found by a `&str` (a lookup join's key).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest key kept inline.
const INLINE: usize = 22;

/// A string key, inline up to 22 bytes (see the module's docs).
#[derive(Clone)]
pub struct StrKey(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

/// A borrowed [`StrKey`]: what a record hands a window or table.
#[repr(transparent)]
pub struct StrKeyRef(str);

impl StrKeyRef {
    #[inline]
    pub fn new(s: &str) -> &StrKeyRef {
        // SAFETY: `StrKeyRef` is `repr(transparent)` over `str`, so the two pointers
        // have the same layout and metadata (as `Path` over `OsStr` in std).
        unsafe { &*(std::ptr::from_ref::<str>(s) as *const StrKeyRef) }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl StrKey {
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                // (`min`: never more than `INLINE`, and no bounds check to panic.)
                let bytes = &bytes[..usize::from(*len).min(INLINE)];
                // SAFETY: inline bytes are only ever copied whole from a `&str` (`From`).
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Heap(s) => s,
        }
    }
}

impl From<&str> for StrKey {
    #[inline]
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            StrKey(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            StrKey(Repr::Heap(s.into()))
        }
    }
}

impl From<&StrKey> for String {
    #[inline]
    fn from(key: &StrKey) -> String {
        key.as_str().to_owned()
    }
}

impl ToOwned for StrKeyRef {
    type Owned = StrKey;
    #[inline]
    fn to_owned(&self) -> StrKey {
        StrKey::from(&self.0)
    }
}

impl Borrow<StrKeyRef> for StrKey {
    #[inline]
    fn borrow(&self) -> &StrKeyRef {
        StrKeyRef::new(self.as_str())
    }
}

impl Borrow<str> for StrKey {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// Hash and equality are the `str`'s, as `Borrow` requires.
impl Hash for StrKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Hash for StrKeyRef {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for StrKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        same_bytes(self.as_str().as_bytes(), other.as_str().as_bytes())
    }
}

impl Eq for StrKey {}

impl PartialEq for StrKeyRef {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        same_bytes(self.0.as_bytes(), other.0.as_bytes())
    }
}

/// `a == b`, comparing a short key (4 to 16 bytes: most ids) as two words that may
/// overlap, inline: slices' `==` calls `memcmp`, whose call cost more than a short
/// comparison (every lookup compares the key it finds).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
    };
    let half = |s: &[u8], at: usize| {
        s.get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap_or_default()))
    };
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

impl Eq for StrKeyRef {}

impl Ord for StrKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for StrKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for StrKey {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for StrKey {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Saved as the string it is, as a `String` key was: checkpoints read either.
impl Serialize for StrKey {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StrKey {
    #[inline]
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(StrKey::from(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::KeyHasher;
    use std::hash::BuildHasher;

    #[test]
    fn keys_are_equal_exactly_when_their_bytes_are() {
        let mut rng = crate::aggregates::SplitMix64::new(17);
        for _ in 0..100_000 {
            let len = (rng.next_u64() % 26) as usize;
            let a: Vec<u8> = (0..len).map(|_| b"ab"[(rng.next_u64() % 2) as usize]).collect();
            let mut b = a.clone();
            match rng.next_u64() % 3 {
                0 if len > 0 => {
                    let at = (rng.next_u64() % len as u64) as usize;
                    b[at] ^= 3;
                }
                1 => b.push(b'a'),
                _ => {}
            }
            let (a, b) = (std::str::from_utf8(&a).unwrap(), std::str::from_utf8(&b).unwrap());
            assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            assert_eq!(StrKey::from(a) == StrKey::from(b), a == b, "{a:?} {b:?}");
            assert_eq!(StrKeyRef::new(a) == StrKeyRef::new(b), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_key_is_as_large_as_a_string() {
        assert_eq!(std::mem::size_of::<StrKey>(), std::mem::size_of::<String>());
    }

    #[test]
    fn short_and_long_keys_hash_compare_and_save_as_their_strings() {
        let hasher = KeyHasher::default();
        let long = "k".repeat(INLINE + 1);
        let samples = [
            "",
            "_",
            "a_b",
            "a__b",
            "dev-0042",
            "héllo wörld ✓",
            &long[..INLINE],
            &long,
        ];
        for s in samples {
            let key = StrKey::from(s);
            assert_eq!(key.as_str(), s);
            assert_eq!(String::from(&key), s);
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(s));
            assert_eq!(hasher.hash_one(StrKeyRef::new(s)), hasher.hash_one(s));
            let as_ref: &StrKeyRef = key.borrow();
            assert_eq!(as_ref.as_str(), s);
            assert_eq!(StrKeyRef::new(s).to_owned(), key);
            let json = serde_json::to_string(&key).expect("a key saves");
            assert_eq!(json, serde_json::to_string(s).expect("a str saves"));
            let back: StrKey = serde_json::from_str(&json).expect("a key restores");
            assert_eq!(back, key);
            assert_eq!(format!("{key} {key:?}"), format!("{s} {s:?}"));
        }
        let mut sorted: Vec<StrKey> = samples.iter().map(|s| StrKey::from(*s)).collect();
        sorted.sort();
        let mut expected = samples.to_vec();
        expected.sort_unstable();
        assert_eq!(sorted.iter().map(StrKey::as_str).collect::<Vec<_>>(), expected);
    }
}
