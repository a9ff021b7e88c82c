//! Running out of memory as a counted state, not a trap.
//!
//! A module lives in memory its host sizes. Rust aborts (in WebAssembly: traps, and the host
//! drops the record) when an allocation fails, so every cap is in bytes; this is the net under
//! them, for a host that gives less memory than the caps need. Before a record is read, memory
//! for its copies (a few times its size) must be there, or the record passes through unread
//! (counted `out_of_memory`). The module's allocator also holds a reserve: when an allocation
//! fails all the same, the reserve is given back and the allocation retried, so the record at
//! hand completes; records then pass unread until the reserve can be taken again.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Enough to finish a record of ordinary size after memory ran out.
const RESERVE: Layout = match Layout::from_size_align(4 << 20, 16) {
    Ok(layout) => layout,
    Err(_) => panic!("reserve layout"),
};

/// What reading a record may copy of it at once, in record lengths (a field as a group key,
/// the same in a result row and in the record carrying it out).
const COPIES: usize = 8;

static RESERVED: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// The system allocator with the reserve in front of its failures.
pub struct ReservingAllocator;

impl ReservingAllocator {
    /// Gives the reserve back so a failed allocation can be retried; false when it is spent.
    fn release() -> bool {
        let reserve = RESERVED.swap(std::ptr::null_mut(), Ordering::Relaxed);
        if reserve.is_null() {
            return false;
        }
        // SAFETY: `reserve` came from `System.alloc(RESERVE)` in `reserve_held` and is freed once.
        unsafe { System.dealloc(reserve, RESERVE) };
        true
    }

    fn retried(ptr: *mut u8, again: impl FnOnce() -> *mut u8) -> *mut u8 {
        if ptr.is_null() && Self::release() {
            again()
        } else {
            ptr
        }
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments.
unsafe impl GlobalAlloc for ReservingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::retried(System.alloc(layout), || System.alloc(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::retried(System.alloc_zeroed(layout), || System.alloc_zeroed(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::retried(System.realloc(ptr, layout, new_size), || System.realloc(ptr, layout, new_size))
    }
}

/// Records below this are covered by the reserve alone: no probe on the hot path.
const PROBED_FROM: usize = 64 << 10;

/// Whether there is memory to read a record of `length` bytes: the reserve is held (or can be
/// taken again) and, for a large record, its copies would fit. Where the reserving allocator is
/// not installed (native builds) memory never runs out here.
pub fn available(length: usize) -> bool {
    if !cfg!(target_family = "wasm") {
        return true;
    }
    reserve_held() && (length < PROBED_FROM || fits(length.saturating_mul(COPIES)))
}

/// Asks the system allocator itself, so a probe that fails does not spend the reserve.
fn fits(bytes: usize) -> bool {
    let Ok(layout) = Layout::from_size_align(bytes.max(1), 1) else { return false };
    // SAFETY: a non-zero size; the block is freed at once. `black_box`: the optimizer may
    // otherwise drop an allocation nothing uses, and with it the probe.
    unsafe {
        let block = std::hint::black_box(System.alloc(layout));
        if block.is_null() {
            return false;
        }
        System.dealloc(block, layout);
    }
    true
}

fn reserve_held() -> bool {
    if !RESERVED.load(Ordering::Relaxed).is_null() {
        return true;
    }
    // SAFETY: a plain allocation of a non-zero size.
    let reserve = unsafe { System.alloc(RESERVE) };
    if reserve.is_null() {
        return false;
    }
    RESERVED.store(reserve, Ordering::Relaxed);
    true
}

#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOCATOR: ReservingAllocator = ReservingAllocator;
