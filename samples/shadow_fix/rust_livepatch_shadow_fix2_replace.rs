// SPDX-License-Identifier: GPL-2.0

//! rust_livepatch_shadow_fix2_replace - `rust_livepatch_shadow_fix2` as a cumulative patch.
//!
//! Purpose
//! -------
//!
//! Carries both fixes (fix1's `dummy_alloc()`, fix2's `dummy_check()` and `dummy_free()`,
//! `shadow_fix.rs`) and sets `replace`: loaded over `rust_livepatch_shadow_fix1` (and any
//! `rust_livepatch_shadow_fix2`), it atomically replaces them. The replaced patches' callbacks do
//! not run, so the `SV_LEAK` variables fix1 made stay, and this patch frees them with their
//! dummies. Disabling it frees every `SV_LEAK` and `SV_COUNTER` variable.
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod samples/livepatch/livepatch-shadow-mod.ko
//! # insmod rust_livepatch_shadow_fix1.ko
//! # insmod rust_livepatch_shadow_fix2_replace.ko
//! livepatch: enabling patch 'rust_livepatch_shadow_fix2_replace'
//! livepatch: 'rust_livepatch_shadow_fix2_replace': patching complete
//! # rmmod rust_livepatch_shadow_fix1                  # replaced, hence disabled
//! # echo 0 > /sys/kernel/livepatch/rust_livepatch_shadow_fix2_replace/enabled
//! # rmmod rust_livepatch_shadow_fix2_replace
//! ```

use core::sync::atomic::AtomicI32;
use kernel::{c_str, prelude::*};

pub mod dummy;
#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod shadow_fix;

use klp::{shadow::Registration, Livepatch, Object};
use shadow_fix::SavedLeak;

/// The name upstream's log lines give the patched functions (`livepatch_fix2_dummy_free`, ...).
pub const FIX: &str = "livepatch_fix2";

/// The livepatch module: keeps both ids registered while it is loaded.
struct ShadowFix2Replace {
    _leak: Registration<SavedLeak>,
    _counter: Registration<AtomicI32>,
}

impl Livepatch for ShadowFix2Replace {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("livepatch_shadow_mod"),
        &[
            shadow_fix::fix1_dummy_alloc,
            shadow_fix::fix2_dummy_check,
            shadow_fix::fix2_dummy_free,
        ],
    )
    .callbacks::<shadow_fix::FreeAll>()];

    /// Atomic replace: takes over from fix1 (and a stacked fix2) with their variables.
    const REPLACE: bool = true;

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(ShadowFix2Replace {
            _leak: shadow_fix::register_leak()?,
            _counter: shadow_fix::register_counter()?,
        })
    }
}

klp::livepatch! {
    type: ShadowFix2Replace,
    name: "rust_livepatch_shadow_fix2_replace",
    author: "rust-klp-shadow developers",
    description: "Rust livepatch-shadow-fix2 as a cumulative patch replacing fix1",
    license: "GPL",
}
