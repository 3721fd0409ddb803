// SPDX-License-Identifier: GPL-2.0

//! The host's stand-ins for the kernel services the table logic uses.
//!
//! The kernel's versions are in `rust/shadow/ffi.rs`. Differences that matter for tests:
//!
//! - RCU: callbacks are queued per [`Env`] and run by [`Env::barrier`], which first waits until
//!   no reader is inside a read-side critical section. Tests call it at quiescent points.
//! - Contexts: [`set_may_sleep`] and [`set_in_nmi`] set, per thread, what the kernel's
//!   `rust_klp_may_sleep()` and `in_nmi()` would say; [`ShardLock`] marks the thread while it
//!   holds one, as the kernel's per-CPU flag does.
//! - Allocation: [`Gfp`] can make allocations fail on purpose, and allocations of `8 mod 16`
//!   bytes are only 8-byte aligned, like the kernel's `kmalloc()` guarantees, so both data
//!   placement paths run. Live allocations are counted ([`live_allocations`]) to find leaks.

use crate::table::Refusal;
use core::cell::Cell;
use core::ptr::NonNull;
use std::alloc::Layout;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;

/// Allocation flags: whether the caller may sleep, and failures to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gfp {
    /// Like `gfpflags_allow_blocking()`.
    pub can_block: bool,
    /// Every allocation of a shadow variable fails.
    pub fail_entry: bool,
    /// Every allocation of a bucket array fails.
    pub fail_table: bool,
}

/// Like `GFP_KERNEL`.
pub const GFP_KERNEL: Gfp = Gfp {
    can_block: true,
    fail_entry: false,
    fail_table: false,
};
/// Like `GFP_ATOMIC`.
pub const GFP_ATOMIC: Gfp = Gfp {
    can_block: false,
    fail_entry: false,
    fail_table: false,
};

/// What `kmalloc()` guarantees on 64-bit: 8-byte alignment.
pub(crate) const MIN_ALIGN: usize = 8;

/// Like `KMALLOC_MAX_SIZE` (4 MiB).
pub(crate) fn max_alloc() -> usize {
    1 << 22
}

/// Like the kernel's: the size to allocate for `bytes`, and whether an allocation of that size is
/// aligned to `align` (a power of two). Here: sizes that are multiples of `align` (up to 16).
pub(crate) fn alloc_size(bytes: usize, align: usize) -> (usize, bool) {
    (bytes, align <= 16 && bytes % align == 0)
}

static LIVE: StdAtomicUsize = StdAtomicUsize::new(0);

/// The number of allocations not freed yet, all tables together.
pub fn live_allocations() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Room for the size and offset words in front of every allocation; also the alignment of the
/// allocations (tables are aligned further, as the kernel aligns power-of-two sizes).
const PREFIX: usize = 64;

fn alloc(bytes: usize, fail: bool) -> Option<NonNull<u8>> {
    if fail {
        return None;
    }
    let misalign = if bytes % 16 == 8 { 8 } else { 0 };
    let total = bytes + PREFIX + misalign;
    let layout = Layout::from_size_align(total, PREFIX).ok()?;
    // SAFETY: `layout` has a non-zero size.
    let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
    let off = PREFIX + misalign;
    // SAFETY: `off <= total`; the two words before `user` are inside the allocation, aligned.
    unsafe {
        let user = base.as_ptr().add(off);
        user.sub(16).cast::<usize>().write(total);
        user.sub(8).cast::<usize>().write(off);
        LIVE.fetch_add(1, Ordering::SeqCst);
        Some(NonNull::new_unchecked(user))
    }
}

/// # Safety
///
/// `p` comes from `alloc` and is not used any more.
unsafe fn free_any(p: NonNull<u8>) {
    // SAFETY: per the contract, the prefix written by `alloc` is in front of `p`.
    unsafe {
        let total = p.as_ptr().sub(16).cast::<usize>().read();
        let off = p.as_ptr().sub(8).cast::<usize>().read();
        let layout = Layout::from_size_align_unchecked(total, PREFIX);
        std::alloc::dealloc(p.as_ptr().sub(off), layout);
    }
    LIVE.fetch_sub(1, Ordering::SeqCst);
}

/// Like `kzalloc()`.
pub(crate) fn alloc_zeroed(bytes: usize, gfp: Gfp) -> Option<NonNull<u8>> {
    alloc(bytes, gfp.fail_entry)
}

/// Like `kfree()`.
///
/// # Safety
///
/// `p` comes from `alloc_zeroed` and is not used any more.
pub(crate) unsafe fn free(p: NonNull<u8>) {
    // SAFETY: per the contract.
    unsafe { free_any(p) }
}

/// Like `kvzalloc()`.
pub(crate) fn alloc_table_zeroed(bytes: usize, gfp: Gfp) -> Option<NonNull<u8>> {
    alloc(bytes, gfp.fail_table)
}

/// Like `kvfree()`.
///
/// # Safety
///
/// `p` comes from `alloc_table_zeroed` and is not used any more.
pub(crate) unsafe fn free_table(p: NonNull<u8>) {
    // SAFETY: per the contract.
    unsafe { free_any(p) }
}

/// A destructor: `klp_shadow_dtor_t`.
#[derive(Clone, Copy)]
pub struct Dtor(pub fn(usize, NonNull<u8>));

impl Dtor {
    pub(crate) fn call(self, obj: usize, data: NonNull<u8>) {
        (self.0)(obj, data)
    }

    pub(crate) fn into_word(self) -> usize {
        self.0 as usize
    }

    /// # Safety
    ///
    /// `w` is 0 or comes from `into_word`.
    pub(crate) unsafe fn from_word(w: usize) -> Option<Self> {
        // SAFETY: per the contract `w` is a `fn(usize, NonNull<u8>)`.
        (w != 0).then(|| Dtor(unsafe { core::mem::transmute::<usize, fn(usize, NonNull<u8>)>(w) }))
    }
}

/// Like `struct rcu_head`.
#[repr(C)]
pub struct RcuHead {
    next: usize,
    func: usize,
}

pub(crate) const fn new_rcu_head() -> RcuHead {
    RcuHead { next: 0, func: 0 }
}

/// Like `rcu_callback_t`.
pub(crate) type RcuCallback = unsafe extern "C" fn(*mut RcuHead);

enum Deferred {
    Call(*mut RcuHead, RcuCallback),
    Free(*mut u8),
}

// SAFETY: the pointers are exclusively owned by the queue until the callback runs.
unsafe impl Send for Deferred {}

/// Proof of being inside an RCU read-side critical section.
pub struct RcuGuard<'a> {
    env: &'a Env,
    phase: usize,
}

impl Drop for RcuGuard<'_> {
    fn drop(&mut self) {
        self.env.readers[self.phase].fetch_sub(1, Ordering::SeqCst);
    }
}

/// The table's environment: RCU and the deferred worker.
///
/// The grace period is userspace-RCU style: readers count themselves in the counter of the
/// current phase; [`Env::barrier`] flips the phase and waits for the old phase's readers only,
/// so it is not starved by readers that keep coming.
pub struct Env {
    phase: StdAtomicUsize,
    readers: [StdAtomicUsize; 2],
    gp: StdMutex<()>,
    queue: StdMutex<Vec<Deferred>>,
}

impl Env {
    pub(crate) const fn new() -> Self {
        Self {
            phase: StdAtomicUsize::new(0),
            readers: [StdAtomicUsize::new(0), StdAtomicUsize::new(0)],
            gp: StdMutex::new(()),
            queue: StdMutex::new(Vec::new()),
        }
    }

    /// Like `rcu_read_lock()`.
    pub fn read_lock(&self) -> RcuGuard<'_> {
        loop {
            let phase = self.phase.load(Ordering::SeqCst) & 1;
            self.readers[phase].fetch_add(1, Ordering::SeqCst);
            // Counted before any flip that `barrier` waits on.
            if self.phase.load(Ordering::SeqCst) & 1 == phase {
                return RcuGuard { env: self, phase };
            }
            self.readers[phase].fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn push(&self, d: Deferred) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(d);
    }

    /// Like `call_rcu()`.
    ///
    /// # Safety
    ///
    /// `head` stays valid until `f(head)` runs.
    pub(crate) unsafe fn call_rcu(&self, head: *mut RcuHead, f: RcuCallback) {
        self.push(Deferred::Call(head, f));
    }

    /// Like `kvfree_call_rcu()`.
    ///
    /// # Safety
    ///
    /// `p` comes from `alloc_zeroed` and is not used after the grace period.
    pub(crate) unsafe fn kfree_rcu(&self, _head: *mut RcuHead, p: *mut u8) {
        self.push(Deferred::Free(p));
    }

    /// Like the kernel's reschedule point between the shards of a long operation: nothing to do
    /// here (threads are preempted).
    pub(crate) fn resched_point(&self) {}

    /// The number of queued RCU callbacks.
    pub fn pending_callbacks(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Like `synchronize_rcu()` + `rcu_barrier()`: waits until no reader is inside a read-side
    /// critical section, then runs the callbacks queued before the call.
    pub fn barrier(&self) {
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let _gp = self.gp.lock().unwrap_or_else(|e| e.into_inner());
        // Every reader that may have seen the queued memory counted itself in the phase before
        // the flip; new readers count in the other one.
        let old = self.phase.fetch_add(1, Ordering::SeqCst) & 1;
        while self.readers[old].load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        for d in batch {
            // SAFETY: queued by `call_rcu`/`kfree_rcu`, whose callers handed the memory over;
            // every reader that could see it has left its critical section.
            unsafe {
                match d {
                    Deferred::Call(head, f) => f(head),
                    Deferred::Free(p) => free(NonNull::new_unchecked(p)),
                }
            }
        }
    }
}

#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard};

/// The shard lock (`spinlock_t` taken with `spin_lock_irqsave()` in the kernel).
pub struct ShardLock(Mutex<()>);

/// A held shard lock.
pub struct ShardGuard<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

impl ShardLock {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(()))
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self(Mutex::new(()))
    }

    pub(crate) fn init(&self) {}

    pub(crate) fn lock(&self) -> ShardGuard<'_> {
        #[cfg(not(loom))]
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(loom)]
        let g = self.0.lock().unwrap();
        IN_SHARD.with(|f| f.set(true));
        ShardGuard(g)
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        IN_SHARD.with(|f| f.set(false));
    }
}

// Per thread; loom's threads are not OS threads, so under loom its own thread-locals.
#[cfg(not(loom))]
use std::thread_local;

#[cfg(loom)]
use loom::thread_local;

// Not `const` initialisers: loom's `thread_local!` does not take them.
thread_local! {
    static IN_SHARD: Cell<bool> = Cell::new(false);
    static MAY_SLEEP: Cell<bool> = Cell::new(true);
    static IN_NMI: Cell<bool> = Cell::new(false);
}

/// Like `GFP_KERNEL`: what the table allocates with where the caller may sleep.
pub(crate) const GFP_SLEEP: Gfp = GFP_KERNEL;

/// Like `rust_klp_may_sleep()`: true unless the thread set it otherwise.
pub(crate) fn may_sleep() -> bool {
    MAY_SLEEP.with(|f| f.get())
}

/// Makes this thread's calls behave as if made where the caller may (or may not) sleep.
pub fn set_may_sleep(v: bool) {
    MAY_SLEEP.with(|f| f.set(v));
}

/// Why a writer may not run on this thread: "in NMI" ([`set_in_nmi`]), or the thread holds a
/// shard lock (the caller runs in a constructor or destructor).
pub(crate) fn writer_refusal() -> Option<Refusal> {
    if IN_NMI.with(|f| f.get()) {
        Some(Refusal::Nmi)
    } else if IN_SHARD.with(|f| f.get()) {
        Some(Refusal::Nested)
    } else {
        None
    }
}

/// Makes this thread's calls behave as if made from an NMI handler.
pub fn set_in_nmi(v: bool) {
    IN_NMI.with(|f| f.set(v));
}
