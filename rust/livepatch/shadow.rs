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
//! the table at run time, so that no module can use the id for another type.
//!
//! | operation                        | context                                               |
//! |----------------------------------|-------------------------------------------------------|
//! | [`ShadowKey::register`], [`Registration`] drop, [`barrier`] | process (sleeps)           |
//! | [`ShadowKey::get`], [`ShadowKey::contains`] | any                                        |
//! | [`ShadowKey::alloc`]             | any with `GFP_ATOMIC`/`GFP_NOWAIT`; process with `GFP_KERNEL`, outside an [`RcuGuard`] |
//! | [`ShadowKey::get_or_alloc`]      | any, inside an [`RcuGuard`]: non-sleeping flags only |
//! | [`ShadowKey::free`], [`ShadowKey::free_all`] | any                                       |
//! | the initialiser (a [`PinInit`])  | atomic: under the table's spinlock, must not sleep    |
//! | `T`'s [`Drop`]                   | softirq (an RCU callback) or process: must not sleep |
//!
//! [`barrier`]: super::rcu::barrier

use super::{bindings, ffi::gfp_may_sleep, ffi::gfp_raw, RcuGuard};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicUsize, Ordering},
};
use kernel::{
    alloc::{AllocError, Flags},
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
/// ```ignore
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
/// ```ignore
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
/// Shadow data is shared between CPUs and dropped by whichever CPU frees it, hence
/// `T: Send + Sync`. It never moves once allocated: it is initialised in place by a
/// [`PinInit<T, E>`], so a lock inside it (e.g. a [`SpinLockBh`]) works. `T`'s [`Drop`] is the
/// destructor: it runs exactly once for every variable, whichever way it is removed
/// ([`free`](Self::free), [`free_all`](Self::free_all) or the table's teardown when the last
/// registration of the id goes away), after an RCU grace period, in softirq or process context:
/// it must not sleep.
///
/// Ids are global: two modules that use the same id share the variables, and must use the same
/// type. The table compares a fingerprint of `T` (its path relative to its crate, size and
/// alignment) and refuses a different one with `EINVAL` at registration. The path is made
/// crate-relative (`crate::PsLock`, not `livepatch_fix1::PsLock`), so two livepatch modules (e.g.
/// a cumulative patch replacing an older one) share an id when they declare the type at the same
/// path, typically from a shared source file. C code that uses the id through the table's
/// untyped functions (`rust_klp_shadow_alloc()`, ...) is outside these guarantees: give Rust and C
/// users different ids.
///
/// [`SpinLockBh`]: super::SpinLockBh
///
/// # Invariants
///
/// `registered` counts the live [`Registration`]s of `self`; while it is non-zero, the table binds
/// `id` to the fingerprint of `T`, so every variable under `id` holds an initialised `T`.
///
/// # Examples
///
/// ```ignore
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
    _p: PhantomData<fn() -> T>,
}

impl<T: Send + Sync> ShadowKey<T> {
    /// Creates a key for the shadow variables with id `id`.
    ///
    /// Does not compile when the alignment of `T` exceeds [`MAX_ALIGN`].
    pub const fn new(id: c_ulong) -> Self {
        assert!(
            core::mem::align_of::<T>() <= MAX_ALIGN,
            "shadow data must not need more than MAX_ALIGN (16) bytes of alignment"
        );
        ShadowKey {
            id,
            registered: AtomicUsize::new(0),
            _p: PhantomData,
        }
    }

    /// Returns the id of this key.
    pub const fn id(&self) -> c_ulong {
        self.id
    }

    /// Binds the id to `T` in the table, for as long as the returned [`Registration`] lives.
    ///
    /// Returns `EINVAL` (and the table prints both types with `pr_err`) when another module
    /// registered the id for a different type; `ENOMEM` when out of memory. A key may be
    /// registered more than once; it is usable while any registration lives.
    ///
    /// Process context only.
    ///
    /// # Examples
    ///
    /// ```ignore
    /// static A: klp::ShadowKey<u64> = klp::ShadowKey::new(0x2000);
    /// static B: klp::ShadowKey<u32> = klp::ShadowKey::new(0x2000);
    ///
    /// let a = A.register()?;
    /// assert_eq!(B.register().err(), Some(EINVAL)); // id 0x2000 holds `u64`s.
    /// drop(a);
    /// let b = B.register()?; // The id is free again.
    /// # Ok::<(), Error>(())
    /// ```
    pub fn register(&'static self) -> Result<Registration<T>> {
        let desc = TypeDesc::new::<T>(GFP_KERNEL)?;
        // `desc.raw` stays at its address (boxed), its `name` pointing into `desc.name`, until
        // `Registration::drop` unregisters it; `dtor::<T>` drops the `T` every variable holds.
        // SAFETY: `desc.raw_ptr()` is valid for as long as the table keeps it (see above).
        to_result(unsafe { bindings::rust_klp_shadow_type_register(self.id, desc.raw_ptr()) })?;
        // INVARIANT: The table now binds `id` to `T`, until the registration is dropped.
        self.registered.fetch_add(1, Ordering::AcqRel);
        Ok(Registration { key: self, desc })
    }

    /// Whether the key is registered; prints an error naming the misused operation if not.
    fn check(&self, op: &str) -> Result {
        if self.registered.load(Ordering::Acquire) > 0 {
            return Ok(());
        }
        pr_err!(
            "shadow id {:#x} ({}): {} before ShadowKey::register()\n",
            self.id,
            core::any::type_name::<T>(),
            op
        );
        Err(EINVAL)
    }

    /// Returns the data of the shadow variable `<obj, id>`, if there is one.
    ///
    /// The reference lives as long as the RCU read-side critical section `rcu`: the variable may
    /// be freed meanwhile by another CPU, but its memory and `T` stay valid until the section
    /// ends. Any context. Returns `None` (with a `pr_err`) when the key is not registered.
    ///
    /// # Examples
    ///
    /// ```ignore
    /// static NAME_LEN: klp::ShadowKey<usize> = klp::ShadowKey::new(0x3000);
    ///
    /// fn name_len(file: &Opaque<bindings::file>) -> usize {
    ///     let rcu = klp::RcuGuard::new();
    ///     NAME_LEN.get(file, &rcu).copied().unwrap_or(0)
    /// }
    /// ```
    pub fn get<'r>(&'static self, obj: impl Parent, rcu: &'r RcuGuard) -> Option<&'r T> {
        let _ = rcu;
        self.check("get").ok()?;
        // SAFETY: No precondition: the table looks the pair up under its own protection.
        let data = unsafe { bindings::rust_klp_shadow_get(obj.shadow_addr(), self.id) };
        // By the type invariant (the key is registered), a variable under `id` holds an
        // initialised `T`, aligned (`align_of::<T>() <= MAX_ALIGN`, which the table guarantees),
        // freed only after an RCU grace period, which cannot end before `rcu` is dropped.
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
    /// ```ignore
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

    /// Calls the table's `get_or_alloc` with an initialiser for `T`; returns the data and whether
    /// the initialiser ran (`false`: the variable existed).
    ///
    /// The caller ensures, if `flags` may sleep, that it may sleep.
    fn get_or_alloc_raw<E, I>(
        &'static self,
        obj: impl Parent,
        init: I,
        flags: Flags,
    ) -> Result<(NonNull<T>, bool)>
    where
        I: PinInit<T, E>,
        Error: From<E>,
    {
        let mut ctor_data = CtorData::<T, I, E> {
            init: Some(init),
            outcome: Outcome::NotRun,
            _p: PhantomData,
        };
        // SAFETY: `ctor::<T, I, E>` is called (at most once, before this call returns, on this
        // task) with `ctor_data`, which is a valid `CtorData<T, I, E>` for the whole call, and
        // with a zeroed buffer of `size_of::<T>()` bytes aligned to at least `MAX_ALIGN`.
        let data = unsafe {
            bindings::rust_klp_shadow_get_or_alloc(
                obj.shadow_addr(),
                self.id,
                core::mem::size_of::<T>(),
                gfp_raw(flags),
                Some(ctor::<T, I, E>),
                (&mut ctor_data as *mut CtorData<T, I, E>).cast::<c_void>(),
            )
        };
        // An initialiser the table did not run is dropped with `ctor_data`.
        match (NonNull::new(data.cast::<T>()), ctor_data.outcome) {
            (Some(data), Outcome::Initialised) => Ok((data, true)),
            (Some(data), Outcome::NotRun) => Ok((data, false)),
            (None, Outcome::Failed(e)) => Err(e),
            (None, Outcome::NotRun) => Err(ENOMEM),
            // The table returned NULL after a successful initialisation, or data after a failed
            // one: it broke its contract.
            (Some(_), Outcome::Failed(e)) => Err(e),
            (None, Outcome::Initialised) => Err(EINVAL),
        }
    }

    /// Allocates the shadow variable `<obj, id>` and initialises its data in place with `init`.
    ///
    /// Errors: `EEXIST` if the variable exists (the existing one is untouched, and, unlike
    /// `klp_shadow_alloc()`, nothing is `WARN`ed); `ENOMEM`; or the error of `init`, in which case
    /// nothing is inserted. `EINVAL` when the key is not registered.
    ///
    /// `init` runs under the table's spinlock, in atomic context, at most once: it must not
    /// sleep. With `GFP_KERNEL`, call from process context, not inside an [`RcuGuard`].
    ///
    /// # Examples
    ///
    /// ```ignore
    /// use klp::{new_spinlock_bh, ShadowKey, SpinLockBh};
    ///
    /// static PS_LOCK: ShadowKey<SpinLockBh<()>> = ShadowKey::new(1);
    ///
    /// // Called from the replaced `sta_info_alloc()`: the parent's lifecycle.
    /// fn attach(sta: *mut c_void) -> Result {
    ///     PS_LOCK.alloc(sta, new_spinlock_bh!((), "ps_lock"), GFP_KERNEL)
    /// }
    /// ```
    pub fn alloc<E>(
        &'static self,
        obj: impl Parent,
        init: impl PinInit<T, E>,
        flags: Flags,
    ) -> Result
    where
        Error: From<E>,
    {
        self.check("alloc")?;
        match self.get_or_alloc_raw(obj, init, flags)? {
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
    /// ```ignore
    /// use klp::{new_spinlock_bh, RcuGuard, ShadowKey, SpinLockBh};
    ///
    /// static PS_LOCK: ShadowKey<SpinLockBh<()>> = ShadowKey::new(1);
    ///
    /// // A station allocated before the patch has no `ps_lock` yet: add it on first use.
    /// fn with_ps_lock(sta: *mut c_void, f: impl FnOnce()) -> Result {
    ///     let rcu = RcuGuard::new();
    ///     let lock = PS_LOCK.get_or_alloc(sta, new_spinlock_bh!((), "ps_lock"), GFP_ATOMIC, &rcu)?;
    ///     let _guard = lock.lock();
    ///     f();
    ///     Ok(())
    /// }
    /// ```
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
        self.check("get_or_alloc")?;
        if gfp_may_sleep(flags) {
            pr_err!(
                "shadow id {:#x} ({}): get_or_alloc with sleeping GFP flags inside an RcuGuard\n",
                self.id,
                core::any::type_name::<T>()
            );
            return Err(EINVAL);
        }
        let (data, _) = self.get_or_alloc_raw(obj, init, flags)?;
        // SAFETY: As in `get`: the variable holds an initialised `T` (the initialiser succeeded,
        // or the variable existed under the registered id), and it cannot be freed before `rcu`
        // is dropped.
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
    /// ```ignore
    /// // Called from the replaced `sta_info_free()`: the parent's lifecycle.
    /// fn detach(sta: *mut c_void) {
    ///     let _ = PS_LOCK.free(sta);
    /// }
    /// ```
    pub fn free(&'static self, obj: impl Parent) -> Result {
        self.check("free")?;
        // SAFETY: By the type invariant, a variable under `id` holds a `T`, which `dtor::<T>`
        // drops; the table calls it once, after a grace period.
        unsafe { bindings::rust_klp_shadow_free_rcu(obj.shadow_addr(), self.id, Some(dtor::<T>)) };
        Ok(())
    }

    /// Removes every shadow variable with this id, as [`free`](Self::free) does for one.
    ///
    /// Typically called when a livepatch is disabled (in a `post_unpatch` callback), when the
    /// data is no longer used. Any context. `EINVAL` when the key is not registered.
    ///
    /// # Examples
    ///
    /// ```ignore
    /// struct Cleanup;
    ///
    /// impl klp::Callbacks for Cleanup {
    ///     fn post_unpatch(_obj: &klp::PatchedObject) {
    ///         let _ = PS_LOCK.free_all();
    ///     }
    /// }
    /// ```
    pub fn free_all(&'static self) -> Result {
        self.check("free_all")?;
        // SAFETY: As in `free`, for every variable under `id`.
        unsafe { bindings::rust_klp_shadow_free_all_rcu(self.id, Some(dtor::<T>)) };
        Ok(())
    }
}

/// The binding of a [`ShadowKey<T>`]'s id to `T` in the table; unbinds on drop.
///
/// Dropping the last registration of an id (of any module) makes the table free the variables
/// left under it, running `T`'s [`Drop`] for each (it prints a warning: a module should free
/// what it allocated). The drop then waits for pending destructors (`rcu_barrier()`), so no
/// destructor of this module runs after it is unloaded. Process context only.
///
/// # Invariants
///
/// `desc` is registered with the table for `key.id`, and counted in `key.registered`.
///
/// # Examples
///
/// ```ignore
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
pub struct Registration<T: Send + Sync + 'static> {
    key: &'static ShadowKey<T>,
    desc: KBox<TypeDesc>,
}

impl<T: Send + Sync + 'static> Registration<T> {
    /// Returns the key this registration is for.
    pub fn key(&self) -> &'static ShadowKey<T> {
        self.key
    }
}

impl<T: Send + Sync + 'static> Drop for Registration<T> {
    fn drop(&mut self) {
        self.key.registered.fetch_sub(1, Ordering::AcqRel);
        // SAFETY: By the type invariant, `desc` is registered for the id; it is unregistered
        // once, here, and outlives the call.
        unsafe { bindings::rust_klp_shadow_type_unregister(self.key.id, self.desc.raw_ptr()) };
        // Destructors of variables freed with `rust_klp_shadow_free_rcu()` are this module's
        // code: let them finish before the module can go away.
        super::rcu::barrier();
    }
}

/// The fingerprint of a shadow data type, as the table sees it, and the storage of its name.
struct TypeDesc {
    raw: bindings::rust_klp_shadow_type,
    /// The NUL-terminated, crate-relative name of the type; `raw.name` points into it.
    _name: KVec<u8>,
}

// SAFETY: `TypeDesc` is only read (by the table) after construction; its raw pointers point to
// its own heap buffer and to code, which any thread may read.
unsafe impl Send for TypeDesc {}
// SAFETY: As above: nothing mutates it after construction.
unsafe impl Sync for TypeDesc {}

impl TypeDesc {
    fn new<T: Send + Sync>(flags: Flags) -> Result<KBox<Self>, AllocError> {
        let name = crate_relative_type_name::<T>(flags)?;
        let raw = bindings::rust_klp_shadow_type {
            name: name.as_ptr(),
            size: core::mem::size_of::<T>(),
            align: core::mem::align_of::<T>(),
            dtor: Some(dtor::<T>),
        };
        KBox::new(TypeDesc { raw, _name: name }, flags)
    }

    fn raw_ptr(&self) -> *const bindings::rust_klp_shadow_type {
        &self.raw
    }
}

/// Returns `core::any::type_name::<T>()` with this crate's name replaced by `crate`,
/// NUL-terminated.
fn crate_relative_type_name<T>(flags: Flags) -> Result<KVec<u8>, AllocError> {
    let name = core::any::type_name::<T>().as_bytes();
    let krate = module_path!().split("::").next().unwrap_or("").as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = KVec::with_capacity(name.len() + 1, flags)?;
    let mut i = 0;
    while i < name.len() {
        let rest = &name[i..];
        let at_start = i == 0 || !is_ident(name[i - 1]);
        if at_start
            && !krate.is_empty()
            && rest.starts_with(krate)
            && rest[krate.len()..].starts_with(b"::")
        {
            out.extend_from_slice(b"crate", flags)?;
            i += krate.len();
        } else {
            out.push(name[i], flags)?;
            i += 1;
        }
    }
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
