// SPDX-License-Identifier: GPL-2.0

//! Static symbols of `sta_model.ko` (samples/ps_lock/sta_model.c), reached through livepatch
//! relocations that `klp` writes when `sta_model` loads.
//!
//! The FFI layer of `rust_klp_relocs_sta`: the declarations and their one `unsafe` wrapper.

use crate::klp;
use kernel::{
    bindings,
    ffi::{c_int, c_void},
    types::Opaque,
};

klp::extern_symbols! {
    object = "sta_model";

    /// `static int sta_model_counter_get(void *data, u64 *val)`: reads the `atomic64_t` at
    /// `data` into `*val` (the debugfs getter of the model's counters); returns 0.
    fn sta_model_counter_get(data: *mut c_void, val: *mut u64) -> c_int;

    /// `static atomic64_t counters[NR_COUNTERS]`: the model's counters; its first element is
    /// `counters[CNT_FRAMES]`, the frames sent to the model. Only its address is used.
    static counters: Opaque<bindings::atomic64_t>;
}

/// Returns the model's `frames` counter, read by its own `sta_model_counter_get()`.
///
/// # Safety
///
/// `sta_model` must be loaded and patched by this livepatch, so that `klp` wrote the relocations
/// of both symbols: call it only from a replacement of a `sta_model` function.
pub unsafe fn frames() -> u64 {
    let mut val = 0;
    // SAFETY: By the function's safety requirements, both symbols are resolved to `sta_model`'s
    // `sta_model_counter_get()` and `counters`, which live as long as the module. The getter
    // reads one `atomic64_t` (the first counter) and writes the `u64` we own.
    unsafe { sta_model_counter_get(counters.get().cast(), &mut val) };
    val
}
