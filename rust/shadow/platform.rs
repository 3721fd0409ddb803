// SPDX-License-Identifier: GPL-2.0

//! The kernel services the table logic (`shard.rs`, `table.rs`) uses: the kernel twin of the host
//! tests' `host/src/platform.rs`, with the same names.
//!
//! C headers: [include/linux/slab.h](srctree/include/linux/slab.h),
//! [include/linux/rcupdate.h](srctree/include/linux/rcupdate.h),
//! [include/linux/spinlock.h](srctree/include/linux/spinlock.h)
//!
//! Each wrapper is safe to call: what it needs is in its signature or checked by the kernel.
//! What Rust for Linux 6.12 cannot express (IRQ-safe spinlocks, `kvmalloc` with the caller's
//! flags, `in_nmi()`, per-CPU data) is a few lines of `shadow_glue.c`, reached through
//! [`crate::glue`].

use crate::glue;
use crate::klp_bindings as kb;
use crate::table::Refusal;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use core::sync::atomic::{compiler_fence, Ordering};
use kernel::bindings;
use kernel::ffi::{c_ulong, c_void};
use kernel::types::Opaque;

/// Allocation flags (`gfp_t`), passed through from the caller.
pub(crate) type Gfp = bindings::gfp_t;

/// The alignment every `kmalloc()` allocation has (`ARCH_KMALLOC_MINALIGN`, checked at build
/// time in `shadow_glue.c`).
pub(crate) const MIN_ALIGN: usize = 8;

/// `KMALLOC_MAX_SIZE`.
pub(crate) fn max_alloc() -> usize {
    bindings::KMALLOC_MAX_SIZE as usize
}

/// The size to `kmalloc()` for `bytes`, and whether that allocation is aligned to `align` (a
/// power of two): `kmalloc()` of a power of two is naturally aligned
/// (`Documentation/core-api/memory-allocation.rst`), so when `bytes` rounds up to one anyway,
/// asking for the rounded size costs nothing.
pub(crate) fn alloc_size(bytes: usize, align: usize) -> (usize, bool) {
    // SAFETY: `kmalloc_size_roundup()` takes any size.
    let r = unsafe { bindings::kmalloc_size_roundup(bytes) };
    if r.is_power_of_two() && r >= align {
        (r, true)
    } else {
        (bytes, MIN_ALIGN >= align)
    }
}

/// `kzalloc()`.
pub(crate) fn alloc_zeroed(bytes: usize, gfp: Gfp) -> Option<NonNull<u8>> {
    // SAFETY: `kzalloc()` may be called with any size and flags.
    NonNull::new(unsafe { glue::rks_kzalloc(bytes, gfp) }.cast())
}

/// `kfree()`.
///
/// # Safety
///
/// `p` comes from [`alloc_zeroed`] and is not used any more.
pub(crate) unsafe fn free(p: NonNull<u8>) {
    // SAFETY: per the function's contract.
    unsafe { bindings::kfree(p.as_ptr().cast()) };
}

/// A zeroed bucket array: `kvzalloc()` where `gfp` may sleep, `kzalloc()` otherwise; never warns.
pub(crate) fn alloc_table_zeroed(bytes: usize, gfp: Gfp) -> Option<NonNull<u8>> {
    // SAFETY: allocation with any size and flags is allowed (`__GFP_NOWARN` is added).
    NonNull::new(unsafe { glue::rks_table_alloc(bytes, gfp) }.cast())
}

/// `kvfree()`.
///
/// # Safety
///
/// `p` comes from [`alloc_table_zeroed`] and is not used any more.
pub(crate) unsafe fn free_table(p: NonNull<u8>) {
    // SAFETY: per the function's contract.
    unsafe { bindings::kvfree(p.as_ptr().cast()) };
}

/// A destructor given by a caller of the C ABI (`klp_shadow_dtor_t`).
///
/// # Invariants
///
/// The function may be called with the `<obj, data>` of any variable it is used for.
#[derive(Clone, Copy)]
pub(crate) struct Dtor(unsafe extern "C" fn(*mut c_void, *mut c_void));

impl Dtor {
    /// Wraps a C destructor.
    ///
    /// # Safety
    ///
    /// `f` may be called with the `<obj, data>` of the variables it is used for (the contract of
    /// `klp_shadow_free()`).
    pub(crate) unsafe fn new(f: kb::klp_shadow_dtor_t) -> Option<Self> {
        // INVARIANT: per the function's contract.
        f.map(Dtor)
    }

    pub(crate) fn call(self, obj: usize, data: NonNull<u8>) {
        // SAFETY: by the type invariant.
        unsafe { (self.0)(obj as *mut c_void, data.as_ptr().cast()) }
    }

    pub(crate) fn into_word(self) -> usize {
        self.0 as usize
    }

    /// # Safety
    ///
    /// `w` is 0 or comes from [`Dtor::into_word`].
    pub(crate) unsafe fn from_word(w: usize) -> Option<Self> {
        if w == 0 {
            return None;
        }
        // SAFETY: per the function's contract `w` is such a function pointer (and the type
        // invariant held for it).
        let f = unsafe {
            core::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void, *mut c_void)>(w)
        };
        Some(Dtor(f))
    }
}

/// `struct rcu_head`.
pub(crate) type RcuHead = bindings::callback_head;

/// An empty `struct rcu_head`.
pub(crate) const fn new_rcu_head() -> RcuHead {
    RcuHead {
        next: ptr::null_mut(),
        func: None,
    }
}

/// `rcu_callback_t`, never NULL.
pub(crate) type RcuCallback = unsafe extern "C" fn(*mut RcuHead);

/// Proof that the current thread is inside an RCU read-side critical section.
pub(crate) struct RcuGuard<'a>(PhantomData<(&'a (), *mut ())>);

impl RcuGuard<'_> {
    /// A guard for a critical section the caller entered itself.
    ///
    /// # Safety
    ///
    /// The caller holds `rcu_read_lock()` for as long as the guard (and anything obtained with
    /// it) is used.
    pub(crate) unsafe fn assume_held() -> ManuallyDrop<RcuGuard<'static>> {
        ManuallyDrop::new(RcuGuard(PhantomData))
    }
}

/// Whether this kernel's `rcu_read_lock()` and `rcu_read_unlock()` are compiler barriers and
/// nothing else: no preemptible RCU (which counts readers), no preempt count (which
/// `preempt_disable()` would increment), no lockdep (`rcu_lock_acquire()`), no strict grace
/// periods. Readers then do what the C inlines do, without calling out of Rust.
const RCU_READ_IS_BARRIER: bool = cfg!(not(any(
    CONFIG_PREEMPT_RCU,
    CONFIG_PREEMPT_COUNT,
    CONFIG_DEBUG_LOCK_ALLOC,
    CONFIG_PROVE_RCU,
    CONFIG_RCU_STRICT_GRACE_PERIOD
)));

impl Drop for RcuGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if RCU_READ_IS_BARRIER {
            // `barrier()`.
            compiler_fence(Ordering::SeqCst);
        } else {
            // SAFETY: the guard was made by `Env::read_lock`, whose lock this releases.
            unsafe { kb::rust_klp_rcu_read_unlock() };
        }
    }
}

/// The table's environment in the kernel: RCU. Stateless.
pub(crate) struct Env;

impl Env {
    pub(crate) const fn new() -> Self {
        Env
    }

    /// `rcu_read_lock()`: inline where it is a compiler barrier, a call into C otherwise.
    #[inline(always)]
    pub(crate) fn read_lock(&self) -> RcuGuard<'_> {
        if RCU_READ_IS_BARRIER {
            // `barrier()`.
            compiler_fence(Ordering::SeqCst);
        } else {
            // SAFETY: no precondition; the guard's drop unlocks.
            unsafe { kb::rust_klp_rcu_read_lock() };
        }
        RcuGuard(PhantomData)
    }

    /// `call_rcu()`.
    ///
    /// # Safety
    ///
    /// `head` stays valid, and is not used by anyone else, until `f(head)` runs.
    pub(crate) unsafe fn call_rcu(&self, head: *mut RcuHead, f: RcuCallback) {
        // SAFETY: per the function's contract.
        unsafe { bindings::call_rcu(head, Some(f)) };
    }

    /// `kvfree_rcu()`: frees `p` after a grace period.
    ///
    /// # Safety
    ///
    /// `p` comes from [`alloc_zeroed`], `head` is inside it, and neither is used after the call.
    pub(crate) unsafe fn kfree_rcu(&self, head: *mut RcuHead, p: *mut u8) {
        // SAFETY: per the function's contract.
        unsafe { bindings::kvfree_call_rcu(head, p.cast()) };
    }

    /// A point where a long operation lets the CPU reschedule, if the caller may sleep.
    pub(crate) fn resched_point(&self) {
        // SAFETY: no precondition: it checks the context before it may sleep.
        unsafe { glue::rks_resched_point() };
    }
}

/// A shard lock: a `spinlock_t` always taken with `spin_lock_irqsave()`.
pub(crate) struct ShardLock(Opaque<bindings::spinlock_t>);

// SAFETY: a spinlock is made to be shared between CPUs.
unsafe impl Sync for ShardLock {}
// SAFETY: it may be initialised on any CPU.
unsafe impl Send for ShardLock {}

impl ShardLock {
    pub(crate) const fn new() -> Self {
        Self(Opaque::uninit())
    }

    /// `spin_lock_init()`; before the first `lock`.
    pub(crate) fn init(&self) {
        // SAFETY: the lock is in a `static` (the table), not in use yet.
        unsafe { glue::rks_lock_init(self.0.get()) };
    }

    pub(crate) fn lock(&self) -> ShardGuard<'_> {
        // SAFETY: initialised by `init` (the table is initialised in module init, before any of
        // its functions can be called).
        let flags = unsafe { glue::rks_lock(self.0.get()) };
        ShardGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

/// A held shard lock; unlocked, and interrupts restored, when dropped.
pub(crate) struct ShardGuard<'a> {
    lock: &'a ShardLock,
    flags: c_ulong,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `ShardLock::lock` on this CPU, with these flags.
        unsafe { glue::rks_unlock(self.lock.0.get(), self.flags) };
    }
}

/// The flags of an allocation where the caller may sleep (`GFP_KERNEL`).
pub(crate) const GFP_SLEEP: Gfp = bindings::GFP_KERNEL;

/// Whether the caller may sleep: `rust_klp_may_sleep()`, the one may-sleep check of this
/// project (what `__might_sleep()` checks; false where the kernel cannot tell).
pub(crate) fn may_sleep() -> bool {
    // SAFETY: no precondition.
    unsafe { kb::rust_klp_may_sleep() }
}

/// Why a writer (alloc, free) may not run where it was called from, in one call into C:
/// `in_nmi()`, or the current task holds a shard lock on this CPU (the caller runs in a
/// constructor or destructor called under it, or in an NMI that interrupted its holder).
pub(crate) fn writer_refusal() -> Option<Refusal> {
    // SAFETY: no precondition.
    match unsafe { glue::rks_writer_context() } as u32 {
        glue::rks_context_RKS_CTX_NMI => Some(Refusal::Nmi),
        glue::rks_context_RKS_CTX_SHARD_LOCK => Some(Refusal::Nested),
        _ => None,
    }
}
