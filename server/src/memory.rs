//! Makes freed memory go back to the system.
//!
//! Every password hash (argon2id, m = 19 MiB) allocates and frees one 19 MiB block. glibc serves the
//! first such block with `mmap`, and when it is freed raises its mmap threshold to that size, so every
//! later block comes from its heap arenas instead, and those keep what is freed: 300 registrations left
//! the server holding 2.3 GB (36 MB with a fixed threshold; `loadgen/smoke.sh` checks it). A fixed
//! threshold keeps blocks of 1 MiB and more on `mmap`, unmapped when freed; everyday allocations are far
//! smaller and stay in the arenas.

/// Allocations of at least this many bytes are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 1024 * 1024;

/// Call first thing in `main`, before any thread exists. `false` if the allocator refused the setting;
/// a no-op (`true`) where the allocator is not glibc's.
pub fn return_large_blocks_to_the_system() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes the allocator's tuning; it is called before other threads
        // exist, as glibc asks.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = MMAP_THRESHOLD;
        true
    }
}
