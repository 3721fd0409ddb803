// SPDX-License-Identifier: GPL-2.0

//! rust_klp_relocs - a Rust livepatch that calls a static vmlinux function.
//!
//! Purpose
//! -------
//!
//! Replaces `cmdline_proc_show()` (fs/proc/cmdline.c), as `samples/chain/` does, with a function
//! that calls `version_proc_show()` (fs/proc/version.c), a `static` function that vmlinux does
//! not export: `/proc/cmdline` then shows the kernel version. The call goes through a livepatch
//! relocation, `.klp.rela.vmlinux.text.*` against `.klp.sym.vmlinux.version_proc_show,0`, which
//! `scripts/klp-convert` wrote into the `.ko` and the kernel's `klp` resolves at load (see
//! `Documentation/livepatch/rust-klp-relocations.rst`).
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod rust_klp_relocs.ko
//! livepatch: enabling patch 'rust_klp_relocs'
//! livepatch: 'rust_klp_relocs': starting patching transition
//! livepatch: 'rust_klp_relocs': patching complete
//! # cat /proc/cmdline
//! rust_klp_relocs: Linux version 6.12.<...> (...) #1 SMP PREEMPT ...
//! # echo 0 > /sys/kernel/livepatch/rust_klp_relocs/enabled; rmmod rust_klp_relocs
//! ```

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod proc;
use klp::SeqFile;

klp::replacement! {
    /// Shows the kernel version, from the static `version_proc_show()`, in `/proc/cmdline`.
    // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)` in fs/proc/cmdline.c;
    // procfs never passes a NULL `m`.
    unsafe fn cmdline_shows_version(m: &SeqFile, _v: *mut c_void) -> c_int = "cmdline_proc_show" {
        klp::seq_print!(m, "rust_klp_relocs: ");
        proc::show_version(m)
    }
}

/// The livepatch: one function of vmlinux, no state.
struct RustKlpRelocs;

impl klp::Livepatch for RustKlpRelocs {
    const OBJECTS: &'static [klp::Object] = &[klp::Object::vmlinux(&[cmdline_shows_version])];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustKlpRelocs)
    }
}

klp::livepatch! {
    type: RustKlpRelocs,
    name: "rust_klp_relocs",
    author: "rust-klp-shadow developers",
    description: "Rust livepatch sample: a call to a static vmlinux function",
    license: "GPL",
}
