// SPDX-License-Identifier: GPL-2.0

//! Test of the livepatch builder of `rust/livepatch/`: a cumulative patch (atomic replace).
//!
//! Replaces `test_rust_api_patch` (`REPLACE`), takes its state `0x7e57` over at version 2 and
//! prints, in `pre_patch`, the version the replaced patch established. `/proc/cmdline` reads
//! `test_rust_api_patch_replace: patched`.
//!
//! ```text
//! $ insmod test_rust_api_patch.ko && insmod test_rust_api_patch_replace.ko
//! test_rust_api_patch_replace: pre_patch vmlinux, previous state version 1
//! test_rust_api_patch_replace: post_patch vmlinux
//! ```

use kernel::{
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
use klp::{Callbacks, Object, PatchedObject, SeqFile, State};

/// The state `test_rust_api_patch` establishes.
const STATE_ID: usize = 0x7e57;

klp::replacement! {
    /// `/proc/cmdline` names the active test patch.
    // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`, fs/proc/cmdline.c;
    // `m` is never NULL.
    unsafe fn cmdline_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int = "cmdline_proc_show" {
        klp::seq_print!(m, "test_rust_api_patch_replace: patched\n");
        0
    }
}

/// Prints each callback; `pre_patch` also the previous version of the state.
struct Trace;

impl Callbacks for Trace {
    fn pre_patch(obj: &PatchedObject) -> Result {
        match obj.prev_state_version(STATE_ID) {
            Some(v) => pr_info!("pre_patch vmlinux, previous state version {}\n", v),
            None => pr_info!("pre_patch vmlinux, no previous state\n"),
        }
        Ok(())
    }

    fn post_patch(_obj: &PatchedObject) {
        pr_info!("post_patch vmlinux\n");
    }

    fn pre_unpatch(_obj: &PatchedObject) {
        pr_info!("pre_unpatch vmlinux\n");
    }

    fn post_unpatch(_obj: &PatchedObject) {
        pr_info!("post_unpatch vmlinux\n");
    }
}

struct TestRustApiPatchReplace;

impl klp::Livepatch for TestRustApiPatchReplace {
    const OBJECTS: &'static [Object] =
        &[Object::vmlinux(&[cmdline_proc_show]).callbacks::<Trace>()];
    const REPLACE: bool = true;
    const STATES: &'static [State] = &[State::new(STATE_ID, 2)];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(TestRustApiPatchReplace)
    }
}

klp::livepatch! {
    type: TestRustApiPatchReplace,
    name: "test_rust_api_patch_replace",
    author: "rust-klp-shadow developers",
    description: "Test of the Rust livepatch builder: atomic replace",
    license: "GPL",
}
