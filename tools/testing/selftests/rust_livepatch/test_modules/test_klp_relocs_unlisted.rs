// SPDX-License-Identifier: GPL-2.0

//! Test of `klp::extern_symbols!`: a symbol of an object the patch does not list.
//!
//! The livepatch patches vmlinux only, but its replacement calls a static function of
//! `sta_model`. `klp-convert` writes the call as a livepatch relocation for object `sta_model`,
//! which `klp` would never write (it writes the relocations of the patch's objects only): the
//! call would go to the zero bytes `klp-convert` left. The module's init refuses it.
//!
//! ```text
//! $ insmod test_klp_relocs_unlisted.ko
//! test_klp_relocs_unlisted: livepatch relocation section .klp.rela.sta_model.text.<...> is for
//!   object 'sta_model', which the patch does not list in Livepatch::OBJECTS: klp would never
//!   write it
//! insmod: ERROR: could not insert module test_klp_relocs_unlisted.ko: Invalid parameters
//! ```

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
use klp::SeqFile;

klp::extern_symbols! {
    object = "sta_model";

    /// `static int sta_model_counter_get(void *data, u64 *val)` in
    /// `samples/ps_lock/sta_model.c`: reads the `atomic64_t` at `data` into `*val`.
    fn sta_model_counter_get(data: *mut c_void, val: *mut u64) -> c_int;
}

klp::replacement! {
    /// Never in effect: the module is refused before the patch is enabled.
    // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`, fs/proc/cmdline.c;
    // `m` is never NULL.
    unsafe fn cmdline_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int = "cmdline_proc_show" {
        let mut val = 0;
        // SAFETY: Wrong on purpose, and never run: `sta_model` is not an object of this patch, so
        // nothing resolves the symbol. `check_relocation_objects()` refuses the module.
        unsafe { sta_model_counter_get(core::ptr::null_mut(), &mut val) };
        klp::seq_print!(m, "{}\n", val);
        0
    }
}

/// The livepatch: vmlinux only, although `sta_model`'s symbol is used.
struct Unlisted;

impl klp::Livepatch for Unlisted {
    const OBJECTS: &'static [klp::Object] = &[klp::Object::vmlinux(&[cmdline_proc_show])];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Unlisted)
    }
}

klp::livepatch! {
    type: Unlisted,
    name: "test_klp_relocs_unlisted",
    author: "rust-klp-shadow developers",
    description: "Test: extern_symbols! of an object the patch does not list is refused",
    license: "GPL",
}
