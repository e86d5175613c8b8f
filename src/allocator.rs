//! The process's allocator: glibc's malloc for `chatroom server`, mimalloc for everything else.
//!
//! mimalloc gives every thread pages of its own per size class, so a server with a thread per
//! connection pins a partly used page per size class per thread: `chatroom bench idle`
//! measured 131 KiB per idle client (two threads) with mimalloc and 47 KiB with glibc, whose
//! arenas all threads share (at most eight per core). The model checker and the simulator,
//! which clone and drop whole server states per step, spend about half their time in glibc's
//! allocator, so they keep mimalloc.
//!
//! Transparent huge pages follow the same split. The server turns them off for its process
//! (`PR_SET_THP_DISABLE`), so that on a machine whose THP mode is `always` a thread's few heap
//! pages never become a 2 MiB page each; everything else keeps mimalloc's request for them
//! (`MADV_HUGEPAGE`): without it a simulator run took eight times the page faults and 8-12%
//! more CPU.
//!
//! mimalloc's Rust wrapper asks for every block through its aligned entry point, which costs
//! about twice the instructions of the plain one; every mimalloc block is aligned to 8 bytes
//! at least, so blocks that need no more (nearly all) go through the plain one
//! ([`mi_malloc`]).
//!
//! The choice is made once, at the process's first allocation (before `main`, on the only
//! thread), from the command line in `/proc/self/cmdline`, and never changes: every block is
//! freed by the allocator that made it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use libmimalloc_sys::{mi_malloc, mi_realloc, mi_zalloc};
use mimalloc::MiMalloc;

pub struct Allocator;

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

impl Allocator {
    /// Inlined into every allocation and free: one load and a compare (the simulator and the
    /// model checker allocate often enough for a call here to show in their profiles).
    #[inline(always)]
    fn system(&self) -> bool {
        match CHOICE.load(Ordering::Relaxed) {
            UNDECIDED => decide(),
            choice => choice == SYSTEM,
        }
    }
}

/// The alignment every mimalloc block has (its blocks' sizes are multiples of a word).
const MIMALLOC_ALIGN_MIN: usize = 8;

/// Whether mimalloc's plain entry points give a block aligned for `layout`.
#[inline(always)]
fn plain(layout: &Layout) -> bool {
    layout.align() <= MIMALLOC_ALIGN_MIN
}

/// Makes the choice; only the first allocation, on the process's only thread, gets here.
#[cold]
#[inline(never)]
fn decide() -> bool {
    let choice = if is_server() {
        // SAFETY: a flag on this process only; it takes no pointer and does not allocate.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        SYSTEM
    } else {
        MIMALLOC
    };
    CHOICE.store(choice, Ordering::Relaxed);
    choice == SYSTEM
}

/// Whether the first argument is `server`, read without allocating (the allocator is not
/// chosen yet).
fn is_server() -> bool {
    let mut buf = [0u8; 256];
    let path = c"/proc/self/cmdline";
    // SAFETY: `path` is NUL-terminated; `buf` is valid for writes of its length; the
    // descriptor is closed before returning. None of these calls allocates.
    let n = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let Ok(n) = usize::try_from(n) else { return false };
    buf[..n].split(|&b| b == 0).nth(1) == Some(b"server")
}

// SAFETY: every call goes to one allocator, the same for the whole life of the process, which
// upholds `GlobalAlloc`'s contract itself.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.system() {
            true => System.alloc(layout),
            // SAFETY: mimalloc's blocks are aligned to `MIMALLOC_ALIGN_MIN`, enough for `layout`.
            false if plain(&layout) => unsafe { mi_malloc(layout.size()).cast() },
            false => MiMalloc.alloc(layout),
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.system() {
            true => System.alloc_zeroed(layout),
            // SAFETY: as in `alloc`.
            false if plain(&layout) => unsafe { mi_zalloc(layout.size()).cast() },
            false => MiMalloc.alloc_zeroed(layout),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.system() {
            true => System.dealloc(ptr, layout),
            false => MiMalloc.dealloc(ptr, layout),
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match self.system() {
            true => System.realloc(ptr, layout, new_size),
            // SAFETY: `ptr` is a mimalloc block (every block is freed by the allocator that made
            // it); the new block is aligned as in `alloc`.
            false if plain(&layout) => unsafe { mi_realloc(ptr.cast(), new_size).cast() },
            false => MiMalloc.realloc(ptr, layout, new_size),
        }
    }
}
