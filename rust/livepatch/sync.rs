// SPDX-License-Identifier: GPL-2.0

//! A spinlock taken with bottom halves disabled (`spin_lock_bh()`), for data that softirqs share.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! [`kernel::sync::SpinLock`] only does `spin_lock()`: taken in process context with softirqs
//! enabled, and in a softirq on the same CPU, it deadlocks (and lockdep reports an inconsistent
//! lock state). [`SpinLockBh`] is a [`Lock`] with a backend that disables bottom halves while the
//! lock is held, the locking the `ps_lock` of `Documentation/livepatch/shadow-vars.rst` needs, and
//! a lockdep class owned by the shadow variable table ([`LockClass`]), so that it may be shadow
//! data that outlives the module that initialised it.

use super::{data::layout, data::ShadowData, ShadowKey};
use kernel::{
    bindings,
    error::Error,
    ffi::c_char,
    init::PinInit,
    prelude::*,
    str::CStr,
    sync::{
        lock::{Backend, Guard, Lock},
        LockClassKey,
    },
};

#[cfg(CONFIG_PREEMPT_RT)]
compile_error!("SpinLockBhBackend relies on the !PREEMPT_RT layout of spinlock_t");

/// A lockdep class owned by the shadow variable table: one per shadow id, from
/// [`ShadowKey::lock_class`].
///
/// The table keeps it until it unloads, which is after every module that uses it (they depend on
/// the table) and after every shadow variable (the table frees them first): a lock initialised
/// with it stays valid, and lockdep's reports about it readable, after the module that
/// initialised the lock unloaded. A class made by `static_lock_class!()` is a static of the
/// module that initialised the lock, freed with it.
///
/// # Invariants
///
/// `key` and `name` are owned by the table and valid until it unloads.
#[derive(Clone, Copy)]
pub struct LockClass {
    key: &'static LockClassKey,
    name: &'static CStr,
}

impl LockClass {
    /// Wraps a class of the table.
    ///
    /// # Safety
    ///
    /// `key` and `name` (NUL-terminated) are owned by the table and valid until it unloads.
    pub(crate) unsafe fn from_table(
        key: *mut bindings::lock_class_key,
        name: *const c_char,
    ) -> Self {
        // INVARIANT: by the function's safety requirements. The lifetimes are `'static` for
        // `Lock::new`, which stores the pointers in the lock: no lock initialised with the class
        // outlives the table (see the type's documentation).
        // SAFETY: `LockClassKey` is `repr(transparent)` over `Opaque<lock_class_key>`; `key` and
        // `name` are valid for as long as anything initialised with them can be used.
        unsafe {
            LockClass {
                key: &*key.cast::<LockClassKey>(),
                name: CStr::from_char_ptr(name),
            }
        }
    }
}

/// A spinlock taken with `spin_lock_bh()`, for shadow data.
///
/// Exposes the kernel's [`spinlock_t`], locked with bottom halves (softirqs) disabled on the local
/// CPU: the data it protects may be shared between process context and softirqs (timers,
/// tasklets, RCU callbacks, the network stack). Lock it in softirq context too (there,
/// `spin_lock_bh()` is equivalent to `spin_lock()`); not in hardirq context.
///
/// Its lockdep class is the table's class of a shadow id ([`LockClass`]), never one of the module
/// that initialised it: the lock is shadow data ([`ShadowData`]) that modules share, and it stays
/// usable after that module unloaded. All the locks of one id share a class, so lockdep reports
/// taking two of them at once as recursive locking: data that nests locks needs an id per level.
///
/// It must be pinned: create it with [`SpinLockBh::new`] as (part of) the initialiser of a shadow
/// variable.
///
/// # Examples
///
/// A shadow spinlock that the TX path (process context) and a timer (softirq) both take:
///
/// ```
/// use kernel::ffi::c_void;
/// use klp::{RcuGuard, ShadowKey, SpinLockBh};
///
/// static PS_LOCK: ShadowKey<SpinLockBh<u32>> = ShadowKey::new(1);
///
/// fn buffer_frame(sta: *mut c_void) -> Result {
///     let rcu = RcuGuard::new();
///     let lock = PS_LOCK.get_or_alloc(sta, SpinLockBh::new(0, &PS_LOCK), GFP_ATOMIC, &rcu)?;
///     *lock.lock() += 1;
///     Ok(())
/// }
/// ```
///
/// [`spinlock_t`]: srctree/include/linux/spinlock.h
#[pin_data]
pub struct SpinLockBh<T> {
    #[pin]
    inner: Lock<T, SpinLockBhBackend>,
}

/// The guard of a locked [`SpinLockBh`]: unlocks (`spin_unlock_bh()`) when dropped.
pub type SpinLockBhGuard<'a, T> = Guard<'a, T, SpinLockBhBackend>;

impl<T> SpinLockBh<T> {
    /// An initialiser of an unlocked lock holding `value`, of the lockdep class of `key`'s id.
    ///
    /// Fails with `EINVAL` (with a `pr_err`) when `key` is not registered.
    pub fn new<K: ShadowData>(value: T, key: &'static ShadowKey<K>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- {
                let class = key.lock_class()?;
                Lock::new(value, class.name, class.key)
            },
        }? Error)
    }

    /// Takes the lock (`spin_lock_bh()`); it is released when the guard is dropped.
    pub fn lock(&self) -> SpinLockBhGuard<'_, T> {
        self.inner.lock()
    }
}

// SAFETY: A `SpinLockBh<T>` holds a `T` and a `spinlock_t` whose lockdep key and name are the
// table's (the only constructor, `new`, takes them from `ShadowKey::lock_class`), never a module's.
// Dropping it does not sleep (a spinlock needs no teardown).
unsafe impl<T: ShadowData> ShadowData for SpinLockBh<T> {
    const LAYOUT: u64 = layout::mix(layout::named("klp::SpinLockBh"), T::LAYOUT);
}

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
