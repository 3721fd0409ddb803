// SPDX-License-Identifier: GPL-2.0

//! Safe Rust view of static functions of `fs/proc/`, reached through livepatch relocations.
//!
//! The one FFI layer of the sample: the functions are declared with
//! [`extern_symbols!`](crate::klp::extern_symbols) and wrapped here with their `// SAFETY:`
//! comments, so the livepatch itself has no `unsafe` block.

use crate::klp::{self, SeqFile};
use kernel::ffi::{c_int, c_void};

klp::extern_symbols! {
    object = "vmlinux";

    /// `static int version_proc_show(struct seq_file *m, void *v)` in fs/proc/version.c: the
    /// show callback of `/proc/version`. Static, and its address is taken, so it is not inlined
    /// away; one symbol of that name in vmlinux (`nm vmlinux | grep version_proc_show`).
    fn version_proc_show(m: &SeqFile, v: *mut c_void) -> c_int;
}

/// Writes the line of `/proc/version` to `m`, the `seq_file` of a procfs show callback.
pub fn show_version(m: &SeqFile) -> c_int {
    // SAFETY: `version_proc_show()` is a procfs show callback: it writes to `m` with `seq_printf`
    // and ignores `v`. `m` is a valid `seq_file` for the duration of the borrow. vmlinux is
    // always there: `klp` resolved the symbol when this module loaded, or the load failed.
    unsafe { version_proc_show(m, core::ptr::null_mut()) }
}
