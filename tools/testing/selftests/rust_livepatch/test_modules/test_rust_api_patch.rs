// SPDX-License-Identifier: GPL-2.0

//! Test of the livepatch builder of `rust/livepatch/`: a patch of vmlinux with callbacks and a
//! system state.
//!
//! Replaces `cmdline_proc_show()` (selected with `sympos = 1`), so `/proc/cmdline` reads
//! `test_rust_api_patch: patched`; prints each callback, and `init`/`exit` of its data, so that
//! `test-api-patch.sh` can check their order. Establishes state `0x7e57` version 1, which
//! `test_rust_api_patch_replace` takes over.
//!
//! ```text
//! $ insmod test_rust_api_patch.ko
//! test_rust_api_patch: init
//! test_rust_api_patch: pre_patch vmlinux
//! test_rust_api_patch: post_patch vmlinux
//! $ echo 0 > /sys/kernel/livepatch/test_rust_api_patch/enabled
//! test_rust_api_patch: pre_unpatch vmlinux
//! test_rust_api_patch: post_unpatch vmlinux
//! $ rmmod test_rust_api_patch
//! test_rust_api_patch: exit
//! ```

use kernel::{
    bindings,
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
use klp::{Callbacks, Object, PatchedObject, SeqFile, State};

klp::replacement! {
    /// `/proc/cmdline` names the active test patch.
    // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`, fs/proc/cmdline.c;
    // `m` is never NULL.
    unsafe fn cmdline_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int =
        "cmdline_proc_show", sympos = 1
    {
        klp::seq_print!(m, "test_rust_api_patch: patched\n");
        0
    }
}

klp::replacement! {
    /// Never patched: compiles only if the signature matches the prototype of
    /// `generic_file_open()` that bindgen generated from `<linux/fs.h>`.
    // SAFETY: `int generic_file_open(struct inode *inode, struct file *filp)`.
    pub unsafe fn checked_generic_file_open(
        _inode: *mut bindings::inode,
        _filp: *mut bindings::file,
    ) -> c_int = "generic_file_open", prototype = bindings::generic_file_open
    {
        0
    }
}

/// Prints each callback.
struct Trace;

fn object_name(obj: &PatchedObject) -> &str {
    obj.name()
        .and_then(|n| n.to_str().ok())
        .unwrap_or("vmlinux")
}

impl Callbacks for Trace {
    fn pre_patch(obj: &PatchedObject) -> Result {
        pr_info!("pre_patch {}\n", object_name(obj));
        Ok(())
    }

    fn post_patch(obj: &PatchedObject) {
        pr_info!("post_patch {}\n", object_name(obj));
    }

    fn pre_unpatch(obj: &PatchedObject) {
        pr_info!("pre_unpatch {}\n", object_name(obj));
    }

    fn post_unpatch(obj: &PatchedObject) {
        pr_info!("post_unpatch {}\n", object_name(obj));
    }
}

struct TestRustApiPatch;

impl klp::Livepatch for TestRustApiPatch {
    const OBJECTS: &'static [Object] =
        &[Object::vmlinux(&[cmdline_proc_show]).callbacks::<Trace>()];
    const STATES: &'static [State] = &[State::new(0x7e57, 1)];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("init\n");
        Ok(TestRustApiPatch)
    }
}

impl Drop for TestRustApiPatch {
    fn drop(&mut self) {
        pr_info!("exit\n");
    }
}

klp::livepatch! {
    type: TestRustApiPatch,
    name: "test_rust_api_patch",
    author: "rust-klp-shadow developers",
    description: "Test of the Rust livepatch builder: callbacks and states",
    license: "GPL",
}
