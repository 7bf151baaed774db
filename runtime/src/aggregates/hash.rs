//! A stable, seedless 64-bit hash for the approximate aggregates.
//!
//! `std`'s `RandomState` is seeded per process, so a sketch built with it would give a
//! slightly different estimate on every run. This hasher has no seed: FNV-1a over the
//! bytes that `Hash` feeds it, finished with MurmurHash3's `fmix64` so every input bit
//! reaches every output bit (HyperLogLog reads the top bits, which raw FNV mixes poorly).
//! Integers are fed little-endian and `usize` as `u64`, so the hash of a value is the
//! same on every platform; it is stable as long as the value's `Hash` impl is.

use std::hash::{Hash, Hasher};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a with an `fmix64` finish; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct StableHasher {
    state: u64,
}

impl StableHasher {
    pub(crate) fn new() -> Self {
        StableHasher { state: FNV_OFFSET }
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher::new()
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection with full avalanche.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    fn finish(&self) -> u64 {
        fmix64(self.state)
    }

    // Fixed byte order (the defaults use native order) and a fixed width for `usize`.
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as u64);
    }
}

/// The stable 64-bit hash of `value`.
pub(crate) fn hash64<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = StableHasher::new();
    value.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_core_matches_the_reference_vectors() {
        // FNV-1a 64 test vectors (before the finaliser).
        let fnv = |bytes: &[u8]| {
            let mut h = StableHasher::new();
            h.write(bytes);
            h.state
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn hashes_are_pinned() {
        // Computed with an independent implementation. A change here changes every
        // approximate result a pipeline has ever produced.
        assert_eq!(hash64(&0u64), 0x7bd3_144f_29c0_cc9e);
        assert_eq!(hash64(&300u64), 0x86ac_d5cb_4252_c9b8);
        assert_eq!(hash64("ab"), 0xac5b_c11d_a938_a7ec, "str hashes its bytes, then 0xff");
        assert_eq!(hash64(&String::from("ab")), hash64("ab"));
        assert_eq!(
            hash64(&300i64),
            hash64(&300u64),
            "integers hash their little-endian bytes"
        );
        assert_eq!(hash64(&300usize), hash64(&300u64), "usize is hashed as u64");
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn top_bits_are_well_spread_for_sequential_integers() {
        // HyperLogLog picks a register from the top 12 bits: sequential keys must fill
        // the 4096 registers about evenly (expected 16 per register for 65,536 keys).
        let mut counts = vec![0u32; 4096];
        for i in 0..65_536u64 {
            counts[(hash64(&i) >> 52) as usize] += 1;
        }
        let chi2: f64 = counts.iter().map(|&c| (f64::from(c) - 16.0).powi(2) / 16.0).sum();
        // 4095 degrees of freedom: mean 4095, standard deviation ~90.
        assert!(chi2 < 4095.0 + 5.0 * 90.0, "chi² = {chi2}");
    }
}
