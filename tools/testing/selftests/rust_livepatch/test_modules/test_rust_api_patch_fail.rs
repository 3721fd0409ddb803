// SPDX-License-Identifier: GPL-2.0

//! Test of the livepatch builder of `rust/livepatch/`: a `pre_patch` callback that fails.
//!
//! The error cancels the patch: the module load fails with it (`ENODEV`), no other callback
//! runs, and the module's data is dropped.
//!
//! ```text
//! $ insmod test_rust_api_patch_fail.ko
//! test_rust_api_patch_fail: pre_patch vmlinux: refusing
//! livepatch: pre-patch callback failed for object 'vmlinux'
//! test_rust_api_patch_fail: data dropped
//! insmod: ERROR: could not insert module test_rust_api_patch_fail.ko: No such device
//! ```

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
use klp::{Callbacks, Object, PatchedObject, SeqFile};

klp::replacement! {
    /// Never in effect: the patch is refused.
    // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`, fs/proc/cmdline.c;
    // `m` is never NULL.
    unsafe fn cmdline_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int = "cmdline_proc_show" {
        klp::seq_print!(m, "test_rust_api_patch_fail: patched\n");
        0
    }
}

/// Refuses in `pre_patch`; the others must not run.
struct Refuse;

impl Callbacks for Refuse {
    fn pre_patch(_obj: &PatchedObject) -> Result {
        pr_info!("pre_patch vmlinux: refusing\n");
        Err(ENODEV)
    }

    fn post_patch(_obj: &PatchedObject) {
        pr_err!("post_patch ran\n");
    }

    fn pre_unpatch(_obj: &PatchedObject) {
        pr_err!("pre_unpatch ran\n");
    }

    fn post_unpatch(_obj: &PatchedObject) {
        pr_err!("post_unpatch ran\n");
    }
}

struct TestRustApiPatchFail;

impl klp::Livepatch for TestRustApiPatchFail {
    const OBJECTS: &'static [Object] =
        &[Object::vmlinux(&[cmdline_proc_show]).callbacks::<Refuse>()];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(TestRustApiPatchFail)
    }
}

impl Drop for TestRustApiPatchFail {
    fn drop(&mut self) {
        pr_info!("data dropped\n");
    }
}

klp::livepatch! {
    type: TestRustApiPatchFail,
    name: "test_rust_api_patch_fail",
    author: "rust-klp-shadow developers",
    description: "Test of the Rust livepatch builder: failing pre_patch",
    license: "GPL",
}
