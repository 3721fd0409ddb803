// SPDX-License-Identifier: GPL-2.0

//! rust_livepatch_shadow_fix1 - upstream's `livepatch-shadow-fix1` in Rust, on our table.
//!
//! Purpose
//! -------
//!
//! Fixes the memory leak of the kernel's `livepatch-shadow-mod.ko` (built from
//! `samples/livepatch/livepatch-shadow-mod.c` of the kernel source): the patched `dummy_alloc()`
//! keeps the allocation the target forgets in an `SV_LEAK` shadow variable of the dummy, and the
//! patched `dummy_free()` frees it (`shadow_fix.rs`). Dummies allocated before the patch are
//! reported as leaked when they are freed, as upstream does. Disabling the patch frees every
//! `SV_LEAK` variable with its allocation (`post_unpatch`).
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod samples/livepatch/livepatch-shadow-mod.ko
//! # insmod rust_livepatch_shadow_fix1.ko
//! livepatch: enabling patch 'rust_livepatch_shadow_fix1'
//! livepatch: 'rust_livepatch_shadow_fix1': patching complete
//! rust_livepatch_shadow_fix1: livepatch_fix1_dummy_free: dummy @ 0000000022661555 leaked!
//! rust_livepatch_shadow_fix1: livepatch_fix1_dummy_alloc: dummy @ 000000009837c079, expires @ 100152ce1
//! rust_livepatch_shadow_fix1: livepatch_fix1_dummy_leak_dtor: dummy @ 000000000cb5e49b, prevented leak @ 00000000e14a978f
//! # grep '^id 0x1 ' /sys/kernel/debug/rust_klp_shadow/ids     # the SV_LEAK variables
//! # echo 0 > /sys/kernel/livepatch/rust_livepatch_shadow_fix1/enabled
//! # rmmod rust_livepatch_shadow_fix1
//! ```

use kernel::{c_str, prelude::*};

pub mod dummy;
#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod shadow_fix;

use klp::{shadow::Registration, Livepatch, Object};
use shadow_fix::SavedLeak;

/// The name upstream's log lines give the patched functions (`livepatch_fix1_dummy_alloc`, ...).
pub const FIX: &str = "livepatch_fix1";

/// The livepatch module: keeps `SV_LEAK` registered while it is loaded.
struct ShadowFix1 {
    _leak: Registration<SavedLeak>,
}

impl Livepatch for ShadowFix1 {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("livepatch_shadow_mod"),
        &[shadow_fix::fix1_dummy_alloc, shadow_fix::fix1_dummy_free],
    )
    .callbacks::<shadow_fix::FreeLeaks>()];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(ShadowFix1 {
            _leak: shadow_fix::register_leak()?,
        })
    }
}

klp::livepatch! {
    type: ShadowFix1,
    name: "rust_livepatch_shadow_fix1",
    author: "rust-klp-shadow developers",
    description: "Rust version of livepatch-shadow-fix1: shadow variable for the leaked pointer",
    license: "GPL",
}
