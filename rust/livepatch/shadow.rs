// SPDX-License-Identifier: GPL-2.0

//! Typed shadow variables: data attached to an existing object without changing its layout.
//!
//! C header: [`rust/shadow/rust_klp_shadow.h`](../../shadow/rust_klp_shadow.h); the C API it
//! replaces is described in `Documentation/livepatch/shadow-vars.rst`, this one in
//! `Documentation/livepatch/rust-shadow-vars.rst`.
//!
//! A shadow variable is identified by the pair `<obj, id>`: `obj` is the address of the parent
//! object (any pointer or reference, see [`Parent`]), `id` a number. A [`ShadowKey<T>`] binds an
//! id to the Rust type `T` of its data at compile time, and [`ShadowKey::register`] binds it in
//! the table at run time, so that no module can use the id for another type. `T` is
//! [`ShadowData`]: data that may outlive the module that made it, with a declared identity the
//! table compares.
//!
//! | operation                        | context                                               |
//! |----------------------------------|-------------------------------------------------------|
//! | [`ShadowKey::register`], [`barrier`] | process (sleeps; refused with `EINVAL` elsewhere) |
//! | [`Registration`] drop            | process; elsewhere the id stays bound until the module unloads |
//! | [`ShadowKey::get`], [`ShadowKey::contains`] | any                                        |
//! | [`ShadowKey::alloc`]             | any with `GFP_ATOMIC`/`GFP_NOWAIT`; process with `GFP_KERNEL` (refused elsewhere) |
//! | [`ShadowKey::get_or_alloc`]      | any, inside an [`RcuGuard`]: non-sleeping flags only |
//! | [`ShadowKey::free`], [`ShadowKey::free_all`] | any                                       |
//! | the initialiser (a [`PinInit`])  | atomic: under the table's spinlock, must not sleep    |
//! | `T`'s [`Drop`]                   | softirq (an RCU callback) or process: must not sleep |
//!
//! [`barrier`]: super::rcu::barrier

use super::{
    bindings,
    data::ShadowData,
    ffi::{gfp_may_sleep, gfp_raw, may_sleep, might_sleep},
    sync::LockClass,
    RcuGuard,
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::{self, NonNull},
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering},
};
use kernel::{
    alloc::Flags,
    error::{code::*, to_result, Error, Result},
    ffi::{c_int, c_ulong},
    init::PinInit,
    prelude::*,
};

/// The alignment the table guarantees for shadow data: `RUST_KLP_SHADOW_DATA_ALIGN`.
///
/// A [`ShadowKey<T>`] for a `T` with a larger alignment does not compile. (Should the table's
/// guarantee ever be lower, [`ShadowKey::register`] fails with `EINVAL`.)
pub const MAX_ALIGN: usize = 16;

/// Turns a value into an initialiser for shadow data, for [`ShadowKey::alloc`] and
/// [`ShadowKey::get_or_alloc`].
///
/// A plain value is an initialiser for any error type, which leaves the error type of those calls
/// undecided; this one cannot fail.
///
/// # Examples
///
/// ```
/// use kernel::ffi::c_void;
/// use klp::shadow::{self, ShadowKey};
///
/// static SEEN: ShadowKey<()> = ShadowKey::new(0x3001);
///
/// fn mark(obj: *const c_void) -> Result {
///     SEEN.alloc(obj, shadow::value(()), GFP_ATOMIC)
/// }
/// ```
pub fn value<T>(value: T) -> impl PinInit<T> {
    value
}

/// Something whose address identifies the parent object of a shadow variable.
///
/// The address is only used as a key, never dereferenced: any pointer (even dangling) or
/// reference will do. Typically the parent is a C object a replacement function received, e.g.
/// `&Opaque<bindings::sta_info>` or `*mut bindings::task_struct`.
///
/// # Examples
///
/// ```
/// use klp::shadow::Parent;
///
/// let x = 5u32;
/// assert_eq!((&x).shadow_addr(), (&x as *const u32).shadow_addr());
/// ```
pub trait Parent {
    /// The address the table files the shadow variables of this parent under.
    fn shadow_addr(&self) -> *mut c_void;
}

impl<P: ?Sized> Parent for *const P {
    fn shadow_addr(&self) -> *mut c_void {
        self.cast::<c_void>().cast_mut()
    }
}

impl<P: ?Sized> Parent for *mut P {
    fn shadow_addr(&self) -> *mut c_void {
        self.cast::<c_void>()
    }
}

impl<P: ?Sized> Parent for NonNull<P> {
    fn shadow_addr(&self) -> *mut c_void {
        self.as_ptr().cast::<c_void>()
    }
}

impl<P: ?Sized> Parent for &P {
    fn shadow_addr(&self) -> *mut c_void {
        (*self as *const P).shadow_addr()
    }
}

impl<P: ?Sized> Parent for &mut P {
    fn shadow_addr(&self) -> *mut c_void {
        (&**self as *const P).shadow_addr()
    }
}

/// A shadow variable id bound to the type `T` of its data.
///
/// Declare keys as `static`s (a `const` key cannot be registered or used: the methods take
/// `&'static self`, which a `const` with interior mutability does not give). Before any other
/// operation, the module registers the key with [`ShadowKey::register`] and keeps the returned
/// [`Registration`] (typically in its module struct) for as long as it uses the key.
///
/// `T` is [`ShadowData`]: shared between CPUs and modules, dropped by whichever frees it, and
/// holding nothing that points into the module that made it. It never moves once allocated: it
/// is initialised in place by a [`PinInit<T, E>`], so a lock inside it (a [`SpinLockBh`]) works.
/// `T`'s [`Drop`] is the destructor: it runs exactly once for every variable, whichever way it is
/// removed ([`free`](Self::free), [`free_all`](Self::free_all) or the table's teardown when the
/// last registration of the id goes away), after an RCU grace period, in softirq or process
/// context: it must not sleep.
///
/// Ids are global: two modules that use the same id share the variables, and must use the same
/// type. The table compares `T`'s size, alignment and declared identity
/// ([`ShadowData::LAYOUT`]) and refuses another type with `EINVAL` at registration, with a
/// `pr_err` naming both types and both modules. Two modules share an id when they declare the
/// type the same way, typically from a shared source file with
/// [`shadow_data!`](crate::klp::shadow_data). C code that uses the id through the table's
/// untyped functions (`rust_klp_shadow_alloc()`, ...) is outside these guarantees: give Rust and C
/// users different ids.
///
/// [`SpinLockBh`]: super::SpinLockBh
///
/// # Invariants
///
/// `registered` counts the live [`Registration`]s of `self`; while it is non-zero, `binding` is
/// the table's binding of `id` and `gen` the generation those registrations belong to, in which
/// the table binds `id` to a type equal to `T`.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::prelude::*;
/// use klp::{shadow, RcuGuard, ShadowKey};
///
/// static HITS: ShadowKey<AtomicU32> = ShadowKey::new(0x1001);
///
/// let registration = HITS.register()?;
/// let parent = KBox::new(0u64, GFP_KERNEL)?;
///
/// HITS.alloc(&*parent, shadow::value(AtomicU32::new(1)), GFP_KERNEL)?;
/// let again = HITS.alloc(&*parent, shadow::value(AtomicU32::new(1)), GFP_KERNEL);
/// assert_eq!(again, Err(EEXIST));
/// {
///     let rcu = RcuGuard::new();
///     let hits = HITS.get(&*parent, &rcu).ok_or(ENOENT)?;
///     hits.fetch_add(1, Ordering::Relaxed);
///     assert_eq!(hits.load(Ordering::Relaxed), 2);
/// }
/// HITS.free(&*parent)?;
/// drop(registration);
/// # Ok::<(), Error>(())
/// ```
pub struct ShadowKey<T> {
    id: c_ulong,
    registered: AtomicUsize,
    binding: AtomicPtr<bindings::rust_klp_shadow_binding>,
    gen: AtomicUsize,
    /// A refused use was reported since the last registration (reported once, not per call).
    reported: AtomicBool,
    _p: PhantomData<fn() -> T>,
}

/// What a typed call passes to the table: the id's binding and the caller's generation.
#[derive(Clone, Copy)]
struct Bound {
    binding: *const bindings::rust_klp_shadow_binding,
    gen: c_ulong,
}

/// `-ESTALE`: the table's answer when the generation of a call is over.
const ESTALE_ERRNO: c_int = -(kernel::bindings::ESTALE as c_int);

impl<T: ShadowData> ShadowKey<T> {
    /// Creates a key for the shadow variables with id `id`.
    ///
    /// Does not compile when the alignment of `T` exceeds [`MAX_ALIGN`].
    pub const fn new(id: c_ulong) -> Self {
        assert!(
            core::mem::align_of::<T>() <= MAX_ALIGN,
            "shadow data must not need more than MAX_ALIGN (16) bytes of alignment"
        );
        // INVARIANT: no registration.
        ShadowKey {
            id,
            registered: AtomicUsize::new(0),
            binding: AtomicPtr::new(ptr::null_mut()),
            gen: AtomicUsize::new(0),
            reported: AtomicBool::new(false),
            _p: PhantomData,
        }
    }

    /// Returns the id of this key.
    pub const fn id(&self) -> c_ulong {
        self.id
    }

    /// Binds the id to `T` in the table, for as long as the returned [`Registration`] lives.
    ///
    /// Returns `EINVAL` when another module registered the id for a different type (the table
    /// prints both types and modules with `pr_err`), or when called where it may not sleep;
    /// `ENOMEM` when out of memory. A key may be registered more than once; it is usable while
    /// any registration lives.
    ///
    /// Process context only.
    ///
    /// # Examples
    ///
    /// ```
    /// static A: klp::ShadowKey<u64> = klp::ShadowKey::new(0x2000);
    /// static B: klp::ShadowKey<u32> = klp::ShadowKey::new(0x2000);
    ///
    /// let a = A.register()?;
    /// assert_eq!(B.register().err(), Some(EINVAL)); // id 0x2000 holds `u64`s.
    /// drop(a);
    /// let b = B.register()?; // The id is free again.
    /// # drop(b);
    /// # Ok::<(), Error>(())
    /// ```
    #[track_caller]
    pub fn register(&'static self) -> Result<Registration<T>> {
        might_sleep("ShadowKey::register", false)?;
        let name = type_name::<T>(GFP_KERNEL)?;
        let ty = bindings::rust_klp_shadow_type {
            name: name.as_ptr(),
            size: core::mem::size_of::<T>(),
            align: core::mem::align_of::<T>(),
            layout: T::LAYOUT,
            dtor: Some(dtor::<T>),
            owner: crate::THIS_MODULE.as_ptr(),
        };
        let mut reg = ptr::null_mut();
        let mut binding = ptr::null_mut();
        let mut gen = 0;
        // The table admits only types equal to `T` for the id (`ShadowData`'s contract), so
        // `dtor::<T>` may be called with any variable of the id while the registration lives;
        // it is code of `owner`, this module.
        // SAFETY: Process context (checked above). `ty` and its NUL-terminated name are valid
        // for the call (the table copies them); `dtor::<T>` as above; the out pointers are valid.
        to_result(unsafe {
            bindings::rust_klp_shadow_type_register(self.id, &ty, &mut reg, &mut binding, &mut gen)
        })?;
        let reg = NonNull::new(reg).ok_or(EINVAL)?;
        self.binding.store(binding, Ordering::Relaxed);
        self.gen.store(gen, Ordering::Relaxed);
        self.reported.store(false, Ordering::Relaxed);
        // INVARIANT: `binding` and `gen` are set above; Release: an operation that sees the count
        // sees them.
        self.registered.fetch_add(1, Ordering::Release);
        Ok(Registration { key: self, reg })
    }

    /// The binding and generation to pass to the table, if the key is registered; else
    /// `EINVAL` and, the first time, a `pr_err` naming the operation.
    fn bound(&self, op: &str) -> Result<Bound> {
        if self.registered.load(Ordering::Acquire) == 0 {
            self.refused(op, "the key is not registered");
            return Err(EINVAL);
        }
        Ok(Bound {
            binding: self.binding.load(Ordering::Relaxed),
            gen: self.gen.load(Ordering::Relaxed),
        })
    }

    /// Reports a refused operation, once per registration of the key.
    fn refused(&self, op: &str, why: &str) {
        if !self.reported.swap(true, Ordering::Relaxed) {
            pr_err!(
                "shadow id {:#x} ({}): {} refused: {}\n",
                self.id,
                core::any::type_name::<T>(),
                op,
                why
            );
        }
    }

    /// Maps the table's error for `op`: a generation that is over (the registration went while
    /// the call ran) is `EINVAL`, as for an unregistered key.
    fn table_result(&self, op: &str, err: c_int) -> Result {
        match err {
            0 => Ok(()),
            ESTALE_ERRNO => {
                self.refused(op, "the registration went away during the call");
                Err(EINVAL)
            }
            e => Err(Error::from_errno(e)),
        }
    }

    /// Returns the data of the shadow variable `<obj, id>`, if it exists.
    ///
    /// The reference lives as long as the [`RcuGuard`] `rcu`: the variable may be freed
    /// meanwhile (by [`free`](Self::free) on another CPU), but its data stays valid until `rcu`
    /// is dropped. Any context. `None` (with a `pr_err`) when the key is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{bindings, types::Opaque};
    ///
    /// static NAME_LEN: klp::ShadowKey<usize> = klp::ShadowKey::new(0x3000);
    ///
    /// fn name_len(file: &Opaque<bindings::file>) -> usize {
    ///     let rcu = klp::RcuGuard::new();
    ///     NAME_LEN.get(file, &rcu).copied().unwrap_or(0)
    /// }
    /// ```
    pub fn get<'r>(&'static self, obj: impl Parent, rcu: &'r RcuGuard) -> Option<&'r T> {
        let _ = rcu;
        let b = self.bound("get").ok()?;
        // SAFETY: `b.binding` comes from the table (type invariant: the key is registered).
        let data =
            unsafe { bindings::rust_klp_shadow_get_bound(b.binding, b.gen, obj.shadow_addr()) };
        // The table returns only a variable of generation `b.gen`, in which the id is bound to a
        // type equal to `T` (type invariant), so it holds an initialised `T`: every variable of
        // the generation was initialised by an initialiser of such a type (`ShadowData`'s
        // contract), and the variables of the generation before were all freed before it began.
        // It is aligned (`align_of::<T>() <= MAX_ALIGN`, which the table guarantees), and freed
        // only after an RCU grace period, which cannot end before `rcu` is dropped; the id cannot
        // be bound again (to another type) before that grace period either.
        let data = NonNull::new(data.cast::<T>())?;
        // SAFETY: Valid `T` for the borrow of `rcu` (above); shared access is fine: `T: Sync`,
        // and nobody gets a `&mut T` to shadow data.
        Some(unsafe { data.as_ref() })
    }

    /// Whether the shadow variable `<obj, id>` exists: the "shadow variable as a flag" use.
    ///
    /// Any context. `false` (with a `pr_err`) when the key is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::ffi::c_void;
    ///
    /// static SEEN: klp::ShadowKey<()> = klp::ShadowKey::new(0x3001);
    ///
    /// fn first_time(obj: *const c_void) -> bool {
    ///     !SEEN.contains(obj) && SEEN.alloc(obj, klp::shadow::value(()), GFP_ATOMIC).is_ok()
    /// }
    /// ```
    pub fn contains(&'static self, obj: impl Parent) -> bool {
        let rcu = RcuGuard::new();
        self.get(obj, &rcu).is_some()
    }

    /// Calls the table's typed allocation with an initialiser for `T`; returns the data and
    /// whether the initialiser ran (`false`: the variable existed and `get_existing` is set).
    ///
    /// The caller ensures, if `flags` may sleep, that it may sleep.
    fn alloc_raw<E, I>(
        &'static self,
        op: &str,
        obj: impl Parent,
        init: I,
        flags: Flags,
        get_existing: bool,
    ) -> Result<(NonNull<T>, bool)>
    where
        I: PinInit<T, E>,
        Error: From<E>,
    {
        let b = self.bound(op)?;
        let mut ctor_data = CtorData::<T, I, E> {
            init: Some(init),
            outcome: Outcome::NotRun,
            _p: PhantomData,
        };
        let mut data = ptr::null_mut();
        // `ctor::<T, I, E>` is called (at most once, before the call returns, on this task) with
        // `ctor_data` and a zeroed buffer of `size_of::<T>()` bytes aligned to `MAX_ALIGN`.
        // SAFETY: `b.binding` comes from the table (type invariant); `ctor_data` is a valid
        // `CtorData<T, I, E>` for the whole call; `data` is valid for writes.
        let err = unsafe {
            bindings::rust_klp_shadow_alloc_bound(
                b.binding,
                b.gen,
                obj.shadow_addr(),
                core::mem::size_of::<T>(),
                gfp_raw(flags),
                Some(ctor::<T, I, E>),
                (&mut ctor_data as *mut CtorData<T, I, E>).cast::<c_void>(),
                get_existing,
                &mut data,
            )
        };
        // An initialiser the table did not run is dropped with `ctor_data`.
        if let Outcome::Failed(e) = ctor_data.outcome {
            return Err(e);
        }
        self.table_result(op, err)?;
        let data = NonNull::new(data.cast::<T>()).ok_or(EINVAL)?;
        Ok((data, matches!(ctor_data.outcome, Outcome::Initialised)))
    }

    /// Allocates the shadow variable `<obj, id>` and initialises its data in place with `init`.
    ///
    /// Errors: `EEXIST` if the variable exists (the existing one is untouched, and, unlike
    /// `klp_shadow_alloc()`, nothing is `WARN`ed); `ENOMEM`; or the error of `init`, in which case
    /// nothing is inserted. `EINVAL` when the key is not registered, or when `flags` may sleep
    /// and the caller may not (atomic context, inside an [`RcuGuard`]).
    ///
    /// `init` runs under the table's spinlock, in atomic context, at most once: it must not
    /// sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::ffi::c_void;
    /// use klp::{ShadowKey, SpinLockBh};
    ///
    /// static PS_LOCK: ShadowKey<SpinLockBh<()>> = ShadowKey::new(1);
    ///
    /// // Called from the replaced `sta_info_alloc()`: the parent's lifecycle.
    /// fn attach(sta: *mut c_void) -> Result {
    ///     PS_LOCK.alloc(sta, SpinLockBh::new((), &PS_LOCK), GFP_KERNEL)
    /// }
    /// ```
    #[track_caller]
    pub fn alloc<E>(
        &'static self,
        obj: impl Parent,
        init: impl PinInit<T, E>,
        flags: Flags,
    ) -> Result
    where
        Error: From<E>,
    {
        if gfp_may_sleep(flags) {
            might_sleep("ShadowKey::alloc with sleeping GFP flags", false)?;
        }
        match self.alloc_raw("alloc", obj, init, flags, false)? {
            (_, true) => Ok(()),
            (_, false) => Err(EEXIST),
        }
    }

    /// Returns the data of the shadow variable `<obj, id>`, allocating and initialising it with
    /// `init` first if it does not exist: the "in-flight parent objects" use.
    ///
    /// Of several CPUs that race, exactly one runs its initialiser; the others get its data (and
    /// their initialisers are dropped unused).
    ///
    /// Inside the RCU read-side critical section `rcu`, so `flags` must not sleep (`GFP_ATOMIC`,
    /// `GFP_NOWAIT`): sleeping flags are refused with `EINVAL`. Other errors as for
    /// [`alloc`](Self::alloc), except that an existing variable is returned, not `EEXIST`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::ffi::c_void;
    /// use klp::{RcuGuard, ShadowKey, SpinLockBh};
    ///
    /// static PS_LOCK: ShadowKey<SpinLockBh<()>> = ShadowKey::new(1);
    ///
    /// // A station allocated before the patch has no `ps_lock` yet: add it on first use.
    /// fn with_ps_lock(sta: *mut c_void, f: impl FnOnce()) -> Result {
    ///     let rcu = RcuGuard::new();
    ///     let lock = PS_LOCK.get_or_alloc(sta, SpinLockBh::new((), &PS_LOCK), GFP_ATOMIC, &rcu)?;
    ///     let _guard = lock.lock();
    ///     f();
    ///     Ok(())
    /// }
    /// ```
    #[track_caller]
    pub fn get_or_alloc<'r, E>(
        &'static self,
        obj: impl Parent,
        init: impl PinInit<T, E>,
        flags: Flags,
        rcu: &'r RcuGuard,
    ) -> Result<&'r T>
    where
        Error: From<E>,
    {
        let _ = rcu;
        if gfp_may_sleep(flags) {
            might_sleep("ShadowKey::get_or_alloc with sleeping GFP flags", true)?;
        }
        let (data, _) = self.alloc_raw("get_or_alloc", obj, init, flags, true)?;
        // SAFETY: As in `get`: the variable holds an initialised `T` (the initialiser succeeded,
        // or the variable existed in the registered generation), and it cannot be freed before
        // `rcu` is dropped.
        Ok(unsafe { data.as_ref() })
    }

    /// Removes the shadow variable `<obj, id>`, if there is one.
    ///
    /// The variable is unlinked at once (a later [`get`](Self::get) does not find it); its
    /// data is dropped and freed after an RCU grace period, so references other CPUs hold stay
    /// valid until their [`RcuGuard`]s are dropped. Any context. `EINVAL` when the key is not
    /// registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::ffi::c_void;
    /// # static PS_LOCK: klp::ShadowKey<klp::SpinLockBh<()>> = klp::ShadowKey::new(1);
    ///
    /// // Called from the replaced `sta_info_free()`: the parent's lifecycle.
    /// fn detach(sta: *mut c_void) {
    ///     let _ = PS_LOCK.free(sta);
    /// }
    /// ```
    pub fn free(&'static self, obj: impl Parent) -> Result {
        let b = self.bound("free")?;
        let addr = obj.shadow_addr();
        // SAFETY: `b.binding` comes from the table (type invariant). The table drops the `T`
        // with the destructor of a live registration of the id, after a grace period.
        let err = unsafe { bindings::rust_klp_shadow_free_bound(b.binding, b.gen, addr) };
        self.table_result("free", err)
    }

    /// Removes every shadow variable with this id, as [`free`](Self::free) does for one.
    ///
    /// Typically called when a livepatch is disabled (in a `post_unpatch` callback), when the
    /// data is no longer used. Any context. `EINVAL` when the key is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// # static PS_LOCK: klp::ShadowKey<klp::SpinLockBh<()>> = klp::ShadowKey::new(1);
    /// struct Cleanup;
    ///
    /// impl klp::Callbacks for Cleanup {
    ///     fn post_unpatch(_obj: &klp::PatchedObject) {
    ///         let _ = PS_LOCK.free_all();
    ///     }
    /// }
    /// ```
    pub fn free_all(&'static self) -> Result {
        let b = self.bound("free_all")?;
        // SAFETY: As in `free`, for every variable of the id.
        let err = unsafe { bindings::rust_klp_shadow_free_all_bound(b.binding, b.gen) };
        self.table_result("free_all", err)
    }

    /// The lockdep class the table owns for the locks inside this id's data, for
    /// [`SpinLockBh::new`](super::SpinLockBh::new). `EINVAL` when the key is not registered.
    pub fn lock_class(&'static self) -> Result<LockClass> {
        let b = self.bound("lock_class")?;
        let mut name = ptr::null();
        // SAFETY: `b.binding` comes from the table (type invariant); `name` is valid for writes.
        let key = unsafe { bindings::rust_klp_shadow_lock_class(b.binding, &mut name) };
        // SAFETY: The table owns the class and its name until it unloads.
        Ok(unsafe { LockClass::from_table(key, name) })
    }
}

/// The binding of a [`ShadowKey<T>`]'s id to `T` in the table; unbinds on drop.
///
/// Dropping the last registration of an id (of any module) makes the table free the variables
/// left under it, running `T`'s [`Drop`] for each (it prints a warning: a module should free
/// what it allocated). The drop then waits for pending destructors (`rcu_barrier()`), so no
/// destructor of this module runs after it is unloaded.
///
/// Drop it in process context. Dropped where it may not sleep (softirq, a spinlock, an
/// [`RcuGuard`]), it only stops the key's use and prints an error: the table keeps the id bound
/// until the module unloads, and then unbinds it, as it does for a registration that was never
/// dropped (`core::mem::forget`).
///
/// # Invariants
///
/// `reg` is a registration of `key.id` in the table, counted in `key.registered`.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
///
/// static PS_LOCK: klp::ShadowKey<klp::SpinLockBh<()>> = klp::ShadowKey::new(1);
///
/// struct Fix {
///     _ps_lock: klp::shadow::Registration<klp::SpinLockBh<()>>,
/// }
///
/// impl klp::Livepatch for Fix {
///     const OBJECTS: &'static [klp::Object] = &[];
///
///     fn init(_module: &'static ThisModule) -> Result<Self> {
///         Ok(Fix { _ps_lock: PS_LOCK.register()? })
///     }
/// }
/// ```
#[must_use = "the id is unregistered when the registration is dropped"]
pub struct Registration<T: ShadowData> {
    key: &'static ShadowKey<T>,
    reg: NonNull<bindings::rust_klp_shadow_reg>,
}

// SAFETY: The registration handle is only passed to the table's unregister, which any thread may
// call (in process context).
unsafe impl<T: ShadowData> Send for Registration<T> {}
// SAFETY: Nothing is accessed through a shared reference.
unsafe impl<T: ShadowData> Sync for Registration<T> {}

impl<T: ShadowData> Registration<T> {
    /// Returns the key this registration is for.
    pub fn key(&self) -> &'static ShadowKey<T> {
        self.key
    }
}

impl<T: ShadowData> Drop for Registration<T> {
    fn drop(&mut self) {
        self.key.registered.fetch_sub(1, Ordering::AcqRel);
        if !may_sleep() {
            pr_err!(
                "shadow id {:#x}: registration dropped in atomic context; the id stays bound until the module unloads\n",
                self.key.id
            );
            return;
        }
        // SAFETY: Process context (checked above). By the type invariant, `reg` is a
        // registration of the table; it is removed once, here.
        unsafe { bindings::rust_klp_shadow_type_unregister(self.reg.as_ptr()) };
    }
}

/// Returns `core::any::type_name::<T>()`, NUL-terminated, for the table's reports.
fn type_name<T>(flags: Flags) -> Result<KVec<u8>> {
    let name = core::any::type_name::<T>().as_bytes();
    let mut out = KVec::with_capacity(name.len() + 1, flags)?;
    out.extend_from_slice(name, flags)?;
    out.push(0, flags)?;
    Ok(out)
}

/// What became of the initialiser passed to the table.
enum Outcome {
    NotRun,
    Initialised,
    Failed(Error),
}

/// The `ctor_data` of [`ctor`]: the initialiser, and where it reports.
struct CtorData<T, I, E> {
    init: Option<I>,
    outcome: Outcome,
    _p: PhantomData<fn(T) -> E>,
}

/// The table's constructor: runs the initialiser of a [`CtorData`] on the new variable's data.
///
/// # Safety
///
/// `ctor_data` points to a valid `CtorData<T, I, E>` that nothing else accesses during the call;
/// `shadow_data` points to `size_of::<T>()` writable bytes, aligned for `T`, not visible to any
/// other CPU before the call returns 0.
unsafe extern "C" fn ctor<T, I, E>(
    _obj: *mut c_void,
    shadow_data: *mut c_void,
    ctor_data: *mut c_void,
) -> c_int
where
    I: PinInit<T, E>,
    Error: From<E>,
{
    // SAFETY: By the function's safety requirements.
    let ctor_data = unsafe { &mut *ctor_data.cast::<CtorData<T, I, E>>() };
    let Some(init) = ctor_data.init.take() else {
        // A second call: the table broke its contract. Refuse, nothing is initialised.
        return EINVAL.to_errno();
    };
    // SAFETY: `shadow_data` is valid for a `T` and will not move: shadow data stays where it is
    // allocated until it is freed. On error, `init` left it uninitialised, and the table frees
    // it without calling a destructor.
    match unsafe { init.__pinned_init(shadow_data.cast::<T>()) } {
        Ok(()) => {
            ctor_data.outcome = Outcome::Initialised;
            0
        }
        Err(e) => {
            let e = Error::from(e);
            ctor_data.outcome = Outcome::Failed(e);
            e.to_errno()
        }
    }
}

/// The table's destructor: drops the `T` of a variable the table is freeing.
///
/// # Safety
///
/// `shadow_data` points to an initialised `T` that is no longer reachable and is dropped only
/// here.
unsafe extern "C" fn dtor<T>(_obj: *mut c_void, shadow_data: *mut c_void) {
    // SAFETY: By the function's safety requirements.
    unsafe { core::ptr::drop_in_place(shadow_data.cast::<T>()) };
}
