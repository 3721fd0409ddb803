// SPDX-License-Identifier: GPL-2.0

//! A spinlock taken with bottom halves disabled (`spin_lock_bh()`), for data that softirqs share.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! [`kernel::sync::SpinLock`] only does `spin_lock()`: taken in process context with softirqs
//! enabled, and in a softirq on the same CPU, it deadlocks (and lockdep reports an inconsistent
//! lock state). [`SpinLockBh`] is the same [`Lock`] with a backend that disables bottom halves
//! while the lock is held, the locking the `ps_lock` of `Documentation/livepatch/shadow-vars.rst`
//! needs.

use kernel::{
    bindings,
    ffi::c_char,
    sync::lock::{Backend, Lock},
};

#[cfg(CONFIG_PREEMPT_RT)]
compile_error!("SpinLockBhBackend relies on the !PREEMPT_RT layout of spinlock_t");

/// Creates a [`SpinLockBh`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number. Each call site is its own lockdep class, as with
/// [`new_spinlock!`](kernel::sync::new_spinlock).
///
/// # Examples
///
/// ```ignore
/// use klp::{new_spinlock_bh, SpinLockBh};
///
/// let lock = KBox::pin_init(new_spinlock_bh!(0u32, "counter"), GFP_KERNEL)?;
/// *lock.lock() += 1;
/// assert_eq!(*lock.lock(), 1);
/// # Ok::<(), Error>(())
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __klp_new_spinlock_bh {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::klp::sync::SpinLockBh::new(
            $inner,
            ::kernel::optional_name!($($name)?),
            ::kernel::static_lock_class!(),
        )
    };
}
#[doc(inline)]
pub use crate::__klp_new_spinlock_bh as new_spinlock_bh;

/// A spinlock taken with `spin_lock_bh()`.
///
/// Exposes the kernel's [`spinlock_t`], locked with bottom halves (softirqs) disabled on the local
/// CPU: the data it protects may be shared between process context and softirqs (timers,
/// tasklets, RCU callbacks, the network stack). Lock it in softirq context too (there,
/// `spin_lock_bh()` is equivalent to `spin_lock()`); not in hardirq context.
///
/// Instances need a lock class and must be pinned: create them with [`new_spinlock_bh!`], inside
/// `pin_init!` or as the initialiser of a shadow variable.
///
/// # Examples
///
/// A shadow spinlock that the TX path (process context) and a timer (softirq) both take:
///
/// ```ignore
/// use klp::{new_spinlock_bh, RcuGuard, ShadowKey, SpinLockBh};
///
/// static PS_LOCK: ShadowKey<SpinLockBh<u32>> = ShadowKey::new(1);
///
/// fn buffer_frame(sta: *mut c_void) -> Result {
///     let rcu = RcuGuard::new();
///     let lock = PS_LOCK.get_or_alloc(sta, new_spinlock_bh!(0, "ps_lock"), GFP_ATOMIC, &rcu)?;
///     *lock.lock() += 1;
///     Ok(())
/// }
/// ```
///
/// [`spinlock_t`]: srctree/include/linux/spinlock.h
pub type SpinLockBh<T> = Lock<T, SpinLockBhBackend>;

/// A kernel `spinlock_t` lock backend that locks with `spin_lock_bh()`.
pub struct SpinLockBhBackend;

/// Returns the `raw_spinlock_t` inside a `spinlock_t`.
///
/// `bindings::spinlock_t` is opaque to bindgen. Without `PREEMPT_RT` (refused above),
/// `struct spinlock` is a union whose first member is `struct raw_spinlock rlock`, at offset 0:
/// `spin_lock_bh(lock)` is `raw_spin_lock_bh(&lock->rlock)`.
fn rlock(ptr: *mut bindings::spinlock_t) -> *mut bindings::raw_spinlock_t {
    ptr.cast::<bindings::raw_spinlock_t>()
}

// SAFETY: The underlying kernel `spinlock_t` object ensures mutual exclusion: `lock` and `relock`
// (the default, which calls `lock`) both take it with `_raw_spin_lock_bh()`, and `unlock`
// releases it with the matching `_raw_spin_unlock_bh()`.
unsafe impl Backend for SpinLockBhBackend {
    type State = bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(ptr: *mut Self::State, name: *const c_char, key: *mut bindings::lock_class_key) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before; `rlock` is its `raw_spinlock_t`.
        unsafe { bindings::_raw_spin_lock_bh(rlock(ptr)) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller is the owner of the spinlock, which it took with `_raw_spin_lock_bh()`.
        unsafe { bindings::_raw_spin_unlock_bh(rlock(ptr)) }
    }
}
