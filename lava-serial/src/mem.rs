//! Keeping a long-running port's heap small (glibc): malloc tuned once at start and trimmed after
//! bursts, so memory a burst used goes back to the system instead of staying in the process for
//! its (months-long) life. Elsewhere (musl and others) these do nothing.

/// Allocations from this size up get pages of their own, returned when freed. Fixed: glibc
/// otherwise raises it after each large free, and big buffers then stay in the heap for good.
const MMAP_THRESHOLD: i32 = 64 * 1024;
/// Free memory at the top of the heap beyond this is returned at once (fixed, likewise).
const TRIM_THRESHOLD: i32 = 128 * 1024;

/// Tunes malloc; call once at start, before any thread. One arena: the console log's thread
/// would otherwise get an arena of its own, which keeps its high-water mark.
#[allow(unsafe_code)]
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's parameters; it is called before any other thread
    // exists, and takes plain integers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Returns free heap pages (also those between live allocations) to the system. Cheap at this
/// heap's size; called after a burst and when a client leaves, never on the byte path.
#[allow(unsafe_code)]
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe (it takes the arena locks) and takes a plain integer.
    unsafe {
        libc::malloc_trim(0);
    }
}
