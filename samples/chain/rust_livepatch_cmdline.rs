// SPDX-License-Identifier: GPL-2.0

//! A minimal Rust livepatch: `/proc/cmdline` shows a fixed text.
//!
//! The Rust counterpart of `samples/livepatch/livepatch-sample.c`: it replaces the vmlinux
//! function `cmdline_proc_show()` with a Rust function built with the `klp` API
//! (`rust/livepatch/`), which writes the `klp_patch` structures and the `livepatch=Y` module
//! information for it.
//!
//! Usage:
//!
//! ```text
//! $ insmod rust_livepatch_cmdline.ko
//! livepatch: enabling patch 'rust_livepatch_cmdline'
//! livepatch: 'rust_livepatch_cmdline': starting patching transition
//! livepatch: 'rust_livepatch_cmdline': patching complete
//! $ cat /proc/cmdline
//! this has been live patched
//! $ echo 0 > /sys/kernel/livepatch/rust_livepatch_cmdline/enabled
//! $ rmmod rust_livepatch_cmdline
//! $ cat /proc/cmdline
//! <your cmdline>
//! ```

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
use klp::SeqFile;

klp::replacement! {
    /// Shows a fixed line instead of the kernel command line.
    // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)` in fs/proc/cmdline.c;
    // procfs never passes a NULL `m`.
    unsafe fn livepatch_cmdline_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int =
        "cmdline_proc_show"
    {
        klp::seq_print!(m, "this has been live patched\n");
        0
    }
}

/// The livepatch: one function of vmlinux, no state.
struct RustLivepatchCmdline;

impl klp::Livepatch for RustLivepatchCmdline {
    // Object name `None`: vmlinux.
    const OBJECTS: &'static [klp::Object] = &[klp::Object::vmlinux(&[livepatch_cmdline_proc_show])];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchCmdline)
    }
}

klp::livepatch! {
    type: RustLivepatchCmdline,
    name: "rust_livepatch_cmdline",
    author: "rust-klp-shadow developers",
    description: "Rust livepatch sample: patched /proc/cmdline",
    license: "GPL",
}
