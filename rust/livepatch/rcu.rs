// SPDX-License-Identifier: GPL-2.0

//! RCU read-side critical sections, which bound the life of references to shadow data.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use super::bindings;
use core::marker::PhantomData;

/// An RCU read-side critical section: `rcu_read_lock()` now, `rcu_read_unlock()` on drop.
///
/// Shadow data is freed only after an RCU grace period (see [`ShadowKey::free`]), so a reference
/// returned by [`ShadowKey::get`] is valid for as long as the guard it borrows is alive; the
/// borrow checker makes sure it is not used after the guard is dropped.
///
/// Inside the section the code must not sleep (the usual RCU rules): allocate with
/// `GFP_ATOMIC`/`GFP_NOWAIT`, take spinlocks, not mutexes. Sections nest, and may be entered in
/// any context (process, softirq, hardirq).
///
/// The guard is neither [`Send`] nor [`Sync`]: it stays on the CPU (task) that entered the
/// section.
///
/// [`ShadowKey::free`]: super::ShadowKey::free
/// [`ShadowKey::get`]: super::ShadowKey::get
///
/// # Examples
///
/// ```
/// use klp::{RcuGuard, ShadowKey};
///
/// static COUNTER: ShadowKey<core::sync::atomic::AtomicU32> = ShadowKey::new(7);
///
/// fn bump(obj: *const kernel::bindings::task_struct) {
///     let rcu = RcuGuard::new();
///     if let Some(counter) = COUNTER.get(obj, &rcu) {
///         counter.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
///     }
///     // `counter` cannot be used past this point: `rcu` is dropped here.
/// }
/// ```
#[must_use = "the RCU read-side critical section ends immediately when the guard is unused"]
pub struct RcuGuard {
    _not_send: PhantomData<*mut ()>,
}

impl RcuGuard {
    /// Enters an RCU read-side critical section (`rcu_read_lock()`).
    // `#[inline]` here and below: code generated only where used, so that a module that does not
    // use shadow variables does not depend on the table's module.
    #[inline]
    pub fn new() -> Self {
        // SAFETY: `rust_klp_rcu_read_lock()` has no preconditions; the matching unlock is in
        // `drop`, on the same task since the guard is `!Send`.
        unsafe { bindings::rust_klp_rcu_read_lock() };
        RcuGuard {
            _not_send: PhantomData,
        }
    }
}

impl Default for RcuGuard {
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RcuGuard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self` was created by `new`, which entered the section this call leaves, on
        // this task.
        unsafe { bindings::rust_klp_rcu_read_unlock() };
    }
}

/// Waits until every pending RCU callback has run: after it returns, the destructors of all
/// shadow variables freed before the call have completed (`rcu_barrier()`).
///
/// Process context only: it sleeps. Where the caller may not sleep (atomic context, inside an
/// [`RcuGuard`]), it is refused with `EINVAL` and a `pr_err`, and waits for nothing.
///
/// # Examples
///
/// ```
/// static FLAG: klp::ShadowKey<()> = klp::ShadowKey::new(3);
///
/// fn forget(obj: *const kernel::bindings::task_struct) -> Result {
///     FLAG.free(obj)?;
///     klp::rcu::barrier()?; // `()`'s (empty) destructor has run, the memory is freed.
///     Ok(())
/// }
/// ```
#[inline]
#[track_caller]
pub fn barrier() -> kernel::error::Result {
    super::ffi::might_sleep("rcu::barrier", false)?;
    // SAFETY: `rcu_barrier()` has no preconditions beyond process context, checked above.
    unsafe { kernel::bindings::rcu_barrier() };
    Ok(())
}
