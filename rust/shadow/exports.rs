// SPDX-License-Identifier: GPL-2.0

//! The exported C ABI of `rust_klp_shadow.ko`: `rust_klp_shadow_*()`, with the signatures and
//! semantics of the kernel's `klp_shadow_*()`.
//!
//! C header: [rust/shadow/rust_klp_shadow.h](../rust_klp_shadow.h)
//!
//! Each function converts its raw arguments once and calls the safe table. Reports that print
//! pointers (`%p`) are made in `shadow_glue.c`, with the exact texts of
//! `kernel/livepatch/shadow.c`. The `EXPORT_SYMBOL_GPL()`s are there too.

use crate::glue;
use crate::klp_bindings as kb;
use crate::platform::{Dtor, Gfp};
use crate::table::{AllocError, Mode, Refusal, Retire};
use crate::TABLE;
use core::ptr;
use kernel::c_str;
use kernel::ffi::{c_ulong, c_void};
use kernel::str::CStr;

/// Reports a writer call refused in its context (`call` names it: "alloc", "free"...).
pub(crate) fn report_refusal(call: &CStr, obj: *mut c_void, id: c_ulong, r: Refusal) {
    // SAFETY: only prints its arguments (`obj` with `%p`); `call` is a C string.
    unsafe { glue::rks_err_context(call.as_char_ptr(), obj, id, r == Refusal::Nmi) };
}

/// `klp_shadow_get()`: the data of `<obj, id>`, or NULL. Safe in any context, NMI included.
///
/// The whole lookup is this one function: the RCU read lock is inline where the kernel's
/// `rcu_read_lock()` is a compiler barrier ([`crate::platform::Env::read_lock`]), and the
/// table's fast path is inlined here.
#[no_mangle]
pub(crate) extern "C" fn rust_klp_shadow_get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    let rcu = TABLE.env().read_lock();
    match TABLE.get(obj as usize, id, &rcu) {
        Some(data) => data.as_ptr().cast(),
        None => ptr::null_mut(),
    }
}

/// `klp_shadow_alloc()` / `klp_shadow_get_or_alloc()`.
///
/// # Safety
///
/// `ctor`, if not NULL, may be called with `obj`, the new data and `ctor_data`.
unsafe fn alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: Gfp,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
    mode: Mode,
) -> *mut c_void {
    let r = TABLE.get_or_alloc(obj as usize, id, size, gfp, mode, |data| match ctor {
        None => Ok(()),
        // SAFETY: per the function's contract.
        Some(ctor) => match unsafe { ctor(obj, data.as_ptr().cast(), ctor_data) } {
            0 => Ok(()),
            err => Err(err),
        },
    });
    match r {
        Ok(data) => return data.as_ptr().cast(),
        Err(AllocError::Context(r)) => {
            let call = match mode {
                Mode::Alloc => c_str!("alloc"),
                Mode::GetOrAlloc => c_str!("get_or_alloc"),
            };
            report_refusal(call, obj, id, r);
        }
        // SAFETY: only prints its arguments (`obj` with `%p`).
        Err(AllocError::Duplicate) => unsafe { glue::rks_warn_duplicate(obj, id) },
        Err(AllocError::NoMem) => {}
        // SAFETY: as above.
        Err(AllocError::TooLarge(max)) => unsafe { glue::rks_err_too_large(obj, id, size, max) },
        // SAFETY: as above.
        Err(AllocError::Ctor(err)) => unsafe { glue::rks_err_ctor(obj, id, err) },
        // Only typed calls are refused (`types.rs`).
        Err(AllocError::Refused) => {}
    }
    ptr::null_mut()
}

/// `klp_shadow_alloc()`: a new zeroed variable, `ctor` run under the lock; NULL with a WARN if
/// `<obj, id>` exists.
///
/// # Safety
///
/// As `klp_shadow_alloc()`: `ctor`, if not NULL, may be called with `obj`, the new data and
/// `ctor_data`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: Gfp,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    // SAFETY: per the function's contract.
    unsafe { alloc(obj, id, size, gfp, ctor, ctor_data, Mode::Alloc) }
}

/// `klp_shadow_get_or_alloc()`: the existing variable, or a new one like
/// [`rust_klp_shadow_alloc`].
///
/// # Safety
///
/// As [`rust_klp_shadow_alloc`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: Gfp,
    ctor: kb::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    // SAFETY: per the function's contract.
    unsafe { alloc(obj, id, size, gfp, ctor, ctor_data, Mode::GetOrAlloc) }
}

/// A free of `<obj, id>` (all of `id` if `obj` is `None`), retired with `dtor` as `after_gp`
/// says; a refusal is reported under the name `call`.
///
/// # Safety
///
/// `dtor`, if not NULL, may be called with the `<obj, data>` of the variables it frees, until an
/// `rcu_barrier()` if `after_gp`.
unsafe fn free(
    call: &CStr,
    obj: Option<*mut c_void>,
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
    after_gp: bool,
) {
    // SAFETY: per the function's contract.
    let dtor = unsafe { Dtor::new(dtor) };
    let how = if after_gp {
        Retire::DtorAfterGp(dtor)
    } else {
        Retire::DtorNow(dtor)
    };
    let r = match obj {
        Some(obj) => TABLE.free(obj as usize, id, how).map(drop),
        None => TABLE.free_all(id, how).map(drop),
    };
    if let Err(r) = r {
        report_refusal(call, obj.unwrap_or(ptr::null_mut()), id, r);
    }
}

/// `klp_shadow_free()`: `dtor(obj, data)` now, under the lock; memory after a grace period.
///
/// # Safety
///
/// `dtor`, if not NULL, may be called with `obj` and the variable's data.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free(
    obj: *mut c_void,
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
) {
    // SAFETY: per the function's contract.
    unsafe { free(c_str!("free"), Some(obj), id, dtor, false) }
}

/// `klp_shadow_free_all()`.
///
/// # Safety
///
/// `dtor`, if not NULL, may be called with the `<obj, data>` of every variable of `id`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_all(id: c_ulong, dtor: kb::klp_shadow_dtor_t) {
    // SAFETY: per the function's contract.
    unsafe { free(c_str!("free_all"), None, id, dtor, false) }
}

/// Removes `<obj, id>` now; `dtor(obj, data)` and the freeing after a grace period.
///
/// # Safety
///
/// As [`rust_klp_shadow_free`], and `dtor` stays callable until an `rcu_barrier()`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_rcu(
    obj: *mut c_void,
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
) {
    // SAFETY: per the function's contract.
    unsafe { free(c_str!("free_rcu"), Some(obj), id, dtor, true) }
}

/// [`rust_klp_shadow_free_rcu`] of every variable of `id`.
///
/// # Safety
///
/// As [`rust_klp_shadow_free_all`], and `dtor` stays callable until an `rcu_barrier()`.
#[no_mangle]
pub(crate) unsafe extern "C" fn rust_klp_shadow_free_all_rcu(
    id: c_ulong,
    dtor: kb::klp_shadow_dtor_t,
) {
    // SAFETY: per the function's contract.
    unsafe { free(c_str!("free_all_rcu"), None, id, dtor, true) }
}
