// SPDX-License-Identifier: GPL-2.0

//! Typed ids: which type each shadow id holds, for the safe Rust API (`rust/livepatch/`).
//!
//! C header: [rust/shadow/rust_klp_shadow.h](../rust_klp_shadow.h)
//!
//! An id is *bound* to a type from its first registration to its last unregistration: a
//! *generation* of the id. Each id ever registered has one [`Binding`], kept until the table
//! unloads, so the pointer a module keeps to it never dangles (the module depends on the table).
//! The rules that make the typed calls sound:
//!
//! - a registration of another type (size, alignment or declared layout) is refused while the id
//!   is bound, with a `pr_err` naming both types and both modules;
//! - a typed call names the generation it was registered in, and the table acts only while the
//!   id is bound in that generation: an allocation is admitted under the shard lock, so the sweep
//!   of the last unregistration cannot miss it, and a lookup checks inside the caller's RCU
//!   read-side critical section, which the last unregistration waits for before the id can be
//!   bound to another type;
//! - the destructor of a typed free is that of a live registration of the id, and every
//!   unregistration waits (`rcu_barrier()`) for the frees that may use its destructor, so no
//!   destructor runs after its module is gone;
//! - a registration its module never unregisters (`core::mem::forget`, or a drop in atomic
//!   context) is unregistered when that module unloads ([`module_going`]);
//! - each id has one lockdep class for the locks inside its data, owned by the table.

use crate::exports::report_refusal;
use crate::glue;
use crate::klp_bindings as kb;
use crate::platform::{Dtor, RcuGuard};
use crate::table::{check_type, AllocError, FreeError, Mode, Retire, TypeError, TypeInfo};
use crate::TABLE;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::alloc::{KBox, KVec};
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::{c_char, c_int, c_ulong, c_void};
use kernel::prelude::*;
use kernel::str::{BStr, CStr};

/// A bound type, copied from a `struct rust_klp_shadow_type`.
struct OwnedType {
    /// NUL-terminated.
    name: KVec<u8>,
    size: usize,
    align: usize,
    layout: u64,
}

impl OwnedType {
    fn info(&self) -> TypeInfo<'_> {
        TypeInfo {
            name: self.name.strip_suffix(&[0]).unwrap_or(&self.name),
            size: self.size,
            align: self.align,
            layout: self.layout,
        }
    }
}

/// Copies `bytes` with a NUL appended.
fn c_string(bytes: &[u8]) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(bytes.len() + 1, GFP_KERNEL)?;
    v.extend_from_slice(bytes, GFP_KERNEL)?;
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// The binding of one id (`struct rust_klp_shadow_binding`).
///
/// # Invariants
///
/// - `state` is `gen << 1 | 1` while the id is bound in generation `gen`, `gen << 1` while it is
///   not; it changes only under the registry mutex.
/// - While bound: `ty` is `Some`, `size` is its size, and `dtor` is the destructor of a live
///   registration of the id (the word of [`Dtor::into_word`]).
/// - `class` is a `struct rks_lock_class` that lives as long as the binding.
pub(crate) struct Binding {
    id: usize,
    state: AtomicUsize,
    size: AtomicUsize,
    dtor: AtomicUsize,
    class: NonNull<c_void>,
    /// Guarded by the registry mutex.
    ty: UnsafeCell<Option<OwnedType>>,
}

impl Binding {
    /// Whether the id is bound in generation `gen`.
    fn bound_in(&self, gen: usize) -> bool {
        self.state.load(Ordering::Acquire) == (gen << 1 | 1)
    }

    /// The way a typed free of generation `gen` retires a variable, if the id is bound in it.
    fn retire(&self, gen: usize) -> Option<Retire> {
        if !self.bound_in(gen) {
            return None;
        }
        // SAFETY: while bound, `dtor` is the word of a live registration's destructor (type
        // invariant), which may be called with the variables of the id until that registration
        // is removed; its removal waits for the frees queued with it (see `unregister`).
        Some(Retire::DtorAfterGp(unsafe {
            Dtor::from_word(self.dtor.load(Ordering::Relaxed))
        }))
    }
}

/// One registration (`struct rust_klp_shadow_reg`).
struct Reg {
    binding: NonNull<Binding>,
    dtor: Option<Dtor>,
    owner: *mut bindings::module,
    /// The owner's name, NUL-terminated, for reports.
    owner_name: KVec<u8>,
}

/// Every binding and registration, guarded by `rks_types_mutex` (`shadow_glue.c`).
struct Registry {
    bindings: KVec<KBox<Binding>>,
    regs: KVec<KBox<Reg>>,
}

struct Types(UnsafeCell<Registry>);

// SAFETY: every access goes through `with_registry`, which holds the mutex. The raw pointers
// inside point to the boxed bindings (which live until `exit`), to modules that are alive while
// they hold registrations, and to lock classes the bindings own.
unsafe impl Sync for Types {}

static REGISTRY: Types = Types(UnsafeCell::new(Registry {
    bindings: KVec::new(),
    regs: KVec::new(),
}));

/// Runs `f` on the registry with its mutex held (process context).
fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    // SAFETY: process context (the callers' contract); paired with the unlock below.
    unsafe { glue::rks_types_lock() };
    // SAFETY: the mutex serialises all accesses, and `f` cannot reach `REGISTRY` again (it would
    // deadlock before aliasing).
    let r = f(unsafe { &mut *REGISTRY.0.get() });
    // SAFETY: locked above.
    unsafe { glue::rks_types_unlock() };
    r
}

/// The name of a module, for reports.
fn module_name(module: *mut bindings::module) -> &'static [u8] {
    // SAFETY: `rks_module_name` returns a C string of the module, or a static one.
    unsafe { CStr::from_char_ptr(glue::rks_module_name(module)) }.as_bytes()
}

/// Reads a type struct.
///
/// # Safety
///
/// `ty` points to a valid `rust_klp_shadow_type` whose `name` is NULL or NUL-terminated, both
/// valid for `'a`.
unsafe fn type_info<'a>(ty: *const kb::rust_klp_shadow_type) -> TypeInfo<'a> {
    // SAFETY: per the function's contract.
    let t = unsafe { &*ty };
    let name = if t.name.is_null() {
        &[]
    } else {
        // SAFETY: per the function's contract.
        unsafe { CStr::from_char_ptr(t.name) }.as_bytes()
    };
    TypeInfo {
        name,
        size: t.size,
        align: t.align,
        layout: t.layout,
    }
}

impl Registry {
    /// The binding of `id`, made (unbound, with its lock class) if the id never had one.
    fn binding(&mut self, id: usize) -> Result<NonNull<Binding>> {
        if let Some(b) = self.bindings.iter().find(|b| b.id == id) {
            return Ok(NonNull::from(&**b));
        }
        self.bindings.reserve(1, GFP_KERNEL)?;
        // SAFETY: process context.
        let class = NonNull::new(unsafe { glue::rks_lock_class_new(id) }).ok_or(ENOMEM)?;
        // INVARIANT: unbound, generation 0; `class` is owned from here on.
        let b = KBox::new(
            Binding {
                id,
                state: AtomicUsize::new(0),
                size: AtomicUsize::new(0),
                dtor: AtomicUsize::new(0),
                class,
                ty: UnsafeCell::new(None),
            },
            GFP_KERNEL,
        );
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                // SAFETY: made above, used by nothing.
                unsafe { glue::rks_lock_class_free(class.as_ptr()) };
                return Err(e.into());
            }
        };
        let p = NonNull::from(&*b);
        // Cannot fail: reserved above.
        self.bindings.push(b, GFP_KERNEL)?;
        Ok(p)
    }

    /// Registers `new` for `id`: see `rust_klp_shadow_type_register()`.
    fn register(
        &mut self,
        id: usize,
        new: &TypeInfo<'_>,
        dtor: Option<Dtor>,
        owner: *mut bindings::module,
    ) -> Result<(NonNull<Reg>, NonNull<Binding>, usize)> {
        let bp = self.binding(id)?;
        // SAFETY: bindings live until `exit`; `ty` is only accessed under the mutex, held.
        let b = unsafe { bp.as_ref() };
        // SAFETY: as above.
        let ty = unsafe { &mut *b.ty.get() };
        let state = b.state.load(Ordering::Relaxed);
        let bound = state & 1 == 1;
        let old = ty.as_ref().filter(|_| bound);
        match check_type(old.map(OwnedType::info).as_ref(), new) {
            Ok(()) => {}
            Err(TypeError::BadAlign) => {
                pr_err!(
                    "Shadow id {:#x}: type {} (size {}, align {}) of {} refused: align must be a power of two <= {}\n",
                    id,
                    BStr::from_bytes(new.name),
                    new.size,
                    new.align,
                    BStr::from_bytes(module_name(owner)),
                    crate::table::DATA_ALIGN
                );
                return Err(EINVAL);
            }
            Err(TypeError::Conflict) => {
                let holder = self
                    .regs
                    .iter()
                    .find(|r| r.binding == bp)
                    .map_or(&b"?"[..], |r| &r.owner_name[..r.owner_name.len() - 1]);
                let old = old.map(OwnedType::info);
                let old = old.as_ref().unwrap_or(new);
                pr_err!(
                    "Shadow id {:#x} is registered by {} for type {} (size {}, align {}, layout {:#018x}); type {} (size {}, align {}, layout {:#018x}) of {} refused\n",
                    id,
                    BStr::from_bytes(holder),
                    BStr::from_bytes(old.name),
                    old.size,
                    old.align,
                    old.layout,
                    BStr::from_bytes(new.name),
                    new.size,
                    new.align,
                    new.layout,
                    BStr::from_bytes(module_name(owner))
                );
                return Err(EINVAL);
            }
        }
        let owned = if bound {
            None
        } else {
            Some(OwnedType {
                name: c_string(new.name)?,
                size: new.size,
                align: new.align,
                layout: new.layout,
            })
        };
        self.regs.reserve(1, GFP_KERNEL)?;
        let reg = KBox::new(
            Reg {
                binding: bp,
                dtor,
                owner,
                owner_name: c_string(module_name(owner))?,
            },
            GFP_KERNEL,
        )?;
        let rp = NonNull::from(&*reg);
        // Cannot fail: reserved above.
        self.regs.push(reg, GFP_KERNEL)?;
        let gen = if let Some(owned) = owned {
            let gen = (state >> 1) + 1;
            b.size.store(owned.size, Ordering::Relaxed);
            b.dtor
                .store(dtor.map_or(0, Dtor::into_word), Ordering::Relaxed);
            *ty = Some(owned);
            // INVARIANT: bound in a new generation, with `ty`, `size` and `dtor` set above, and
            // `dtor` the destructor of the registration just added. Release: a typed call that
            // sees the state sees them.
            b.state.store(gen << 1 | 1, Ordering::Release);
            gen
        } else {
            // Typed frees from now on use the newest registration's destructor: livepatches
            // stack, and the newest one's code is the code that runs (a `Drop` may differ
            // between modules that declare the same type, as the log lines of the samples'
            // destructors do). The previous destructor stays valid: its registration is live,
            // and its removal waits for the frees that read it.
            // INVARIANT: `dtor` is the destructor of the registration just added, which is live.
            b.dtor
                .store(dtor.map_or(0, Dtor::into_word), Ordering::Relaxed);
            state >> 1
        };
        Ok((rp, bp, gen))
    }

    /// Removes the registration `rp`: see `rust_klp_shadow_type_unregister()`. The caller waits
    /// for pending RCU callbacks afterwards.
    fn unregister(&mut self, rp: NonNull<Reg>, why_forgotten: bool) {
        let Some(i) = self.regs.iter().position(|r| NonNull::from(&**r) == rp) else {
            pr_warn!("unregistering an unknown registration\n");
            return;
        };
        let reg = swap_remove(&mut self.regs, i);
        // SAFETY: bindings live until `exit`; `ty` is only accessed under the mutex, held.
        let b = unsafe { reg.binding.as_ref() };
        if why_forgotten {
            pr_warn!(
                "Shadow id {:#x}: {} unloads with a registration it never dropped; dropping it now\n",
                b.id,
                BStr::from_bytes(&reg.owner_name[..reg.owner_name.len() - 1])
            );
        }
        if let Some(other) = self.regs.iter().find(|r| r.binding == reg.binding) {
            // Typed frees from now on use another live registration's destructor; those that
            // read this one under a shard lock have queued their callback once every shard lock
            // was taken once, and the caller's `rcu_barrier()` waits for them.
            // INVARIANT: `other` is live.
            b.dtor
                .store(other.dtor.map_or(0, Dtor::into_word), Ordering::Relaxed);
            TABLE.sync_writers();
            return;
        }
        let state = b.state.load(Ordering::Relaxed);
        // INVARIANT: unbound. From here on every typed call of the generation is refused; an
        // allocation admitted before is under a shard lock the sweep below takes after it.
        b.state.store(state & !1, Ordering::Release);
        // Never refused: the registry mutex is held, so this is process context outside every
        // shard lock.
        let freed = TABLE
            .free_all(b.id, Retire::DtorAfterGp(reg.dtor))
            .unwrap_or(0);
        // SAFETY: as above.
        let ty = unsafe { &mut *b.ty.get() };
        if freed > 0 {
            let name = ty.as_ref().map_or(&b""[..], |t| t.info().name);
            pr_warn!(
                "Shadow id {:#x}: last registration of type {} gone with {} live shadow variables; freeing them with its destructor\n",
                b.id,
                BStr::from_bytes(name),
                freed
            );
        }
        *ty = None;
        // Lookups that saw the id bound are inside RCU read-side critical sections: they end
        // before the id can be bound again, maybe to another type.
        // SAFETY: process context, no spinlock held.
        unsafe { glue::rks_synchronize_rcu() };
    }
}

/// Removes and returns element `i` (`i < v.len()`), moving the last one into its place.
fn swap_remove<T>(v: &mut KVec<T>, i: usize) -> T {
    let last = v.len() - 1;
    v.swap(i, last);
    // SAFETY: `last < len`, so the element is initialised; shrinking the length right after
    // reading it moves it out exactly once.
    unsafe {
        let x = ptr::read(v.as_ptr().add(last));
        v.set_len(last);
        x
    }
}

/// `-ESTALE`: the generation of a typed call is over.
const ESTALE_ERRNO: c_int = -(bindings::ESTALE as c_int);

/// `-EDEADLK`: a typed call refused in its context (NMI, or under a shard lock).
const EDEADLK_ERRNO: c_int = -(bindings::EDEADLK as c_int);

/// Binds `id` to `*ty`; see `rust_klp_shadow.h`.
///
/// # Safety
///
/// Process context. `ty` is NULL or points to a valid `rust_klp_shadow_type` (name NULL or
/// NUL-terminated), whose `dtor`, if not NULL, may be called with the `<obj, data>` of any
/// variable of `id` until the registration is removed, and whose `owner` is the module `dtor`
/// belongs to. `reg`, `binding` and `gen` are valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_type_register(
    id: c_ulong,
    ty: *const kb::rust_klp_shadow_type,
    reg: *mut *mut kb::rust_klp_shadow_reg,
    binding: *mut *mut kb::rust_klp_shadow_binding,
    gen: *mut c_ulong,
) -> c_int {
    if ty.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: per the function's contract.
    let new = unsafe { type_info(ty) };
    // SAFETY: per the function's contract.
    let (dtor, owner) = unsafe { (Dtor::new((*ty).dtor), (*ty).owner) };
    match with_registry(|r| r.register(id, &new, dtor, owner)) {
        Ok((rp, bp, g)) => {
            // SAFETY: valid for writes (contract).
            unsafe {
                *reg = rp.as_ptr().cast();
                *binding = bp.as_ptr().cast();
                *gen = g;
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Removes a registration; see `rust_klp_shadow.h`.
///
/// # Safety
///
/// Process context; `reg` comes from [`rust_klp_shadow_type_register`] (an unknown one is
/// reported and ignored).
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_type_unregister(reg: *mut kb::rust_klp_shadow_reg) {
    if let Some(rp) = NonNull::new(reg.cast::<Reg>()) {
        with_registry(|r| r.unregister(rp, false));
    }
    // SAFETY: process context; no lock held.
    unsafe { bindings::rcu_barrier() };
}

/// A module is unloading (`MODULE_STATE_GOING`): its code is still there. Removes the
/// registrations it never removed, and waits for their destructors.
///
/// # Safety
///
/// Process context; `module` is the module going away.
#[no_mangle]
pub(crate) unsafe extern "C" fn rks_module_going(module: *mut bindings::module) {
    let found = with_registry(|r| {
        let mut found = false;
        while let Some(rp) = r
            .regs
            .iter()
            .find(|reg| reg.owner == module)
            .map(|reg| NonNull::from(&**reg))
        {
            r.unregister(rp, true);
            found = true;
        }
        found
    });
    if found {
        // SAFETY: process context; no lock held.
        unsafe { bindings::rcu_barrier() };
    }
}

/// The binding behind a pointer a typed caller passed.
///
/// # Safety
///
/// `b` comes from [`rust_klp_shadow_type_register`].
unsafe fn binding<'a>(b: *const kb::rust_klp_shadow_binding) -> &'a Binding {
    // SAFETY: bindings are boxed and live until the table unloads, after every module that can
    // hold a pointer to one (they depend on the table).
    unsafe { &*b.cast::<Binding>() }
}

/// The lookup of `rust_klp_shadow_get_bound()`, which holds the RCU read lock around it.
///
/// # Safety
///
/// The caller holds `rcu_read_lock()`; `b` comes from [`rust_klp_shadow_type_register`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rks_get_bound_rcu(
    b: *const kb::rust_klp_shadow_binding,
    gen: c_ulong,
    obj: *mut c_void,
) -> *mut c_void {
    // SAFETY: per the function's contract.
    let b = unsafe { binding(b) };
    // SAFETY: per the function's contract; the guard does not outlive the call.
    let rcu = unsafe { RcuGuard::assume_held() };
    if !b.bound_in(gen) {
        return ptr::null_mut();
    }
    TABLE
        .get(obj as usize, b.id, &rcu)
        .map_or(ptr::null_mut(), |d| d.as_ptr().cast())
}

/// A typed `klp_shadow_alloc()` / `klp_shadow_get_or_alloc()`; see `rust_klp_shadow.h`.
///
/// # Safety
///
/// `b` comes from [`rust_klp_shadow_type_register`]; `ctor`, if not NULL, may be called with
/// `obj`, the new data and `ctor_data`; `data` is valid for writes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn rust_klp_shadow_alloc_bound(
    b: *const kb::rust_klp_shadow_binding,
    gen: c_ulong,
    obj: *mut c_void,
    size: usize,
    gfp: bindings::gfp_t,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
    get_existing: bool,
    data: *mut *mut c_void,
) -> c_int {
    // SAFETY: per the function's contract.
    let b = unsafe { binding(b) };
    let mode = if get_existing {
        Mode::GetOrAlloc
    } else {
        Mode::Alloc
    };
    // The size is that of the bound type, checked with the generation: under the shard lock.
    let admit = || b.bound_in(gen) && b.size.load(Ordering::Relaxed) == size;
    let r = TABLE.get_or_alloc_if(obj as usize, b.id, size, gfp, mode, admit, |d| match ctor {
        None => Ok(()),
        // SAFETY: per the function's contract.
        Some(ctor) => match unsafe { ctor(obj, d.as_ptr().cast(), ctor_data) } {
            0 => Ok(()),
            err => Err(err),
        },
    });
    match r {
        Ok(d) => {
            // SAFETY: valid for writes (contract).
            unsafe { *data = d.as_ptr().cast() };
            0
        }
        Err(AllocError::Duplicate) => EEXIST.to_errno(),
        Err(AllocError::NoMem) => ENOMEM.to_errno(),
        Err(AllocError::TooLarge(_)) => E2BIG.to_errno(),
        Err(AllocError::Ctor(e)) => e,
        Err(AllocError::Refused) if b.bound_in(gen) => EINVAL.to_errno(),
        Err(AllocError::Refused) => ESTALE_ERRNO,
        Err(AllocError::Context(r)) => {
            report_refusal(c_str!("alloc_bound"), obj, b.id, r);
            EDEADLK_ERRNO
        }
    }
}

/// A typed free of `<obj, id>`; see `rust_klp_shadow.h`.
///
/// # Safety
///
/// `b` comes from [`rust_klp_shadow_type_register`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_bound(
    b: *const kb::rust_klp_shadow_binding,
    gen: c_ulong,
    obj: *mut c_void,
) -> c_int {
    // SAFETY: per the function's contract.
    let b = unsafe { binding(b) };
    match TABLE.free_if(obj as usize, b.id, || b.retire(gen)) {
        Ok(_) => 0,
        Err(FreeError::Refused) => ESTALE_ERRNO,
        Err(FreeError::Context(r)) => {
            report_refusal(c_str!("free_bound"), obj, b.id, r);
            EDEADLK_ERRNO
        }
    }
}

/// A typed free of every `<_, id>`; see `rust_klp_shadow.h`.
///
/// # Safety
///
/// `b` comes from [`rust_klp_shadow_type_register`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_all_bound(
    b: *const kb::rust_klp_shadow_binding,
    gen: c_ulong,
) -> c_int {
    // SAFETY: per the function's contract.
    let b = unsafe { binding(b) };
    match TABLE.free_all_if(b.id, || b.retire(gen)) {
        Ok(_) => 0,
        Err(FreeError::Refused) => ESTALE_ERRNO,
        Err(FreeError::Context(r)) => {
            report_refusal(c_str!("free_all_bound"), ptr::null_mut(), b.id, r);
            EDEADLK_ERRNO
        }
    }
}

/// The lock class of the id's shadow data; see `rust_klp_shadow.h`.
///
/// # Safety
///
/// `b` comes from [`rust_klp_shadow_type_register`]; `name` is valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_lock_class(
    b: *const kb::rust_klp_shadow_binding,
    name: *mut *const c_char,
) -> *mut bindings::lock_class_key {
    // SAFETY: per the function's contract.
    let b = unsafe { binding(b) };
    // SAFETY: `class` is the binding's (type invariant); `name` is valid for writes.
    unsafe { glue::rks_lock_class_key(b.class.as_ptr(), name) }
}

/// Calls `f` with a lookup of the name of the type each id is bound to (NULL if none), under the
/// registry mutex (process context).
pub(crate) fn with_bound_names<R>(f: impl FnOnce(&dyn Fn(usize) -> *const c_char) -> R) -> R {
    with_registry(|r| {
        let name_of = |id: usize| {
            r.bindings
                .iter()
                .find(|b| b.id == id)
                // SAFETY: `ty` is only accessed under the mutex, held.
                .and_then(|b| unsafe { &*b.ty.get() }.as_ref())
                .map_or(ptr::null(), |t| t.name.as_ptr().cast())
        };
        f(&name_of)
    })
}

/// Module exit, after every variable was freed and every RCU callback ran: frees the bindings and
/// their lock classes. No registration is left: the modules that made them are gone, and
/// [`rks_module_going`] removed what they left.
pub(crate) fn exit() {
    with_registry(|r| {
        if !r.regs.is_empty() {
            pr_warn!("unloading with {} type registrations left\n", r.regs.len());
        }
        r.regs = KVec::new();
        for b in r.bindings.iter() {
            // SAFETY: the binding's class (type invariant); no lock of it is alive any more.
            unsafe { glue::rks_lock_class_free(b.class.as_ptr()) };
        }
        r.bindings = KVec::new();
    });
}
