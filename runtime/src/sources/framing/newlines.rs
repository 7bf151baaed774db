//! Finding the line ends of a buffer of short lines, many at a time.
//!
//! `memchr` per line starts a vector search for each ~100-byte record and was the
//! line splitter's largest cost. Here each 64 bytes become one mask of their `'\n'`s
//! (SSE2, part of every x86_64), and each line end costs a count of trailing zeros.
//! Elsewhere `memchr`'s iterator does the same job.

/// Appends to `ends` the positions in `bytes` of its first `limit` newlines (fewer if
/// it has fewer), in order.
pub(crate) fn find(bytes: &[u8], limit: usize, ends: &mut Vec<usize>) {
    let wanted = ends.len() + limit;
    #[cfg(target_arch = "x86_64")]
    let scanned = by_mask(bytes, wanted, ends);
    #[cfg(not(target_arch = "x86_64"))]
    let scanned = 0;
    if ends.len() < wanted {
        let rest = memchr::memchr_iter(b'\n', &bytes[scanned..]).map(|i| scanned + i);
        ends.extend(rest.take(wanted - ends.len()));
    }
}

/// Scans `bytes` 64 at a time until `ends` holds `wanted` positions; returns where the
/// scan stopped (what follows was not looked at).
#[cfg(target_arch = "x86_64")]
fn by_mask(bytes: &[u8], wanted: usize, ends: &mut Vec<usize>) -> usize {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut at = 0;
    while ends.len() < wanted {
        let Some(block) = bytes.get(at..at + 64) else { break };
        let mut mask = 0u64;
        for (k, lane) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of every x86_64; `lane` is 16 readable bytes and the
            // load has no alignment requirement.
            let hits = unsafe {
                let v = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)))
            };
            mask |= u64::from(hits as u16) << (16 * k);
        }
        while mask != 0 {
            if ends.len() == wanted {
                // The rest of this block is for the next call: scan it again then.
                return at;
            }
            ends.push(at + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
        at += 64;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(bytes: &[u8], limit: usize) -> Vec<usize> {
        let all = bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i);
        all.take(limit).collect()
    }

    #[test]
    fn finds_the_first_newlines_wherever_they_fall() {
        // Lines of every length around the 16- and 64-byte lanes, and runs of newlines.
        let mut bytes = Vec::new();
        for len in 0..200 {
            bytes.extend(std::iter::repeat_n(b'x', len % 131));
            bytes.push(b'\n');
            if len % 7 == 0 {
                bytes.extend_from_slice(b"\n\n");
            }
        }
        bytes.extend_from_slice(b"no end");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let from = (state % bytes.len() as u64) as usize;
            let to = from + ((state >> 20) % (bytes.len() - from) as u64) as usize;
            let limit = ((state >> 40) % 300) as usize;
            let mut found = vec![7];
            find(&bytes[from..to], limit, &mut found);
            let mut expected = vec![7];
            expected.extend(naive(&bytes[from..to], limit));
            assert_eq!(found, expected, "{from}..{to}, limit {limit}");
        }
    }
}
