//! `prefetch`: a hint that memory will soon be read. Operators that visit many keys one
//! after another (a join sweeping its keys, a hopping window firing) ask for a key a few
//! ahead while they work on this one, so the fetches from memory overlap.

/// Asks for the memory at `at` to be brought into the cache, without waiting for it.
/// Where Rust has no stable way to (other than x86_64), it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address, and SSE is
    // part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
