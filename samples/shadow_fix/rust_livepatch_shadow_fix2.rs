// SPDX-License-Identifier: GPL-2.0

//! rust_livepatch_shadow_fix2 - upstream's `livepatch-shadow-fix2` in Rust, on our table.
//!
//! Purpose
//! -------
//!
//! Stacked on `rust_livepatch_shadow_fix1`, as upstream's fix2 is on fix1: the patched
//! `dummy_check()` counts the checks of every dummy in an `SV_COUNTER` shadow variable, attached
//! on first use with `get_or_alloc` (so dummies allocated before the patch count too), and the
//! patched `dummy_free()` prints the count, then frees the counter and, as fix1's does, the
//! `SV_LEAK` variable (`shadow_fix.rs`). Disabling it frees the `SV_COUNTER` variables; the
//! `SV_LEAK` ones stay for fix1. `rust_livepatch_shadow_fix2_replace` is the same fix as a
//! cumulative patch.
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod samples/livepatch/livepatch-shadow-mod.ko
//! # insmod rust_livepatch_shadow_fix1.ko
//! # insmod rust_livepatch_shadow_fix2.ko
//! livepatch: enabling patch 'rust_livepatch_shadow_fix2'
//! livepatch: 'rust_livepatch_shadow_fix2': patching complete
//! rust_livepatch_shadow_fix2: livepatch_fix2_dummy_free: dummy @ 00000000e03a5348, check counter = 1
//! rust_livepatch_shadow_fix2: livepatch_fix2_dummy_leak_dtor: dummy @ 00000000e03a5348, prevented leak @ 0000000064dce2db
//! # echo 0 > /sys/kernel/livepatch/rust_livepatch_shadow_fix2/enabled
//! # rmmod rust_livepatch_shadow_fix2
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

/// The livepatch module: keeps both ids registered while it is loaded (its `dummy_free()` frees
/// `SV_LEAK` variables too).
struct ShadowFix2 {
    _leak: Registration<SavedLeak>,
    _counter: Registration<AtomicI32>,
}

impl Livepatch for ShadowFix2 {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("livepatch_shadow_mod"),
        &[shadow_fix::fix2_dummy_check, shadow_fix::fix2_dummy_free],
    )
    .callbacks::<shadow_fix::FreeCounters>()];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(ShadowFix2 {
            _leak: shadow_fix::register_leak()?,
            _counter: shadow_fix::register_counter()?,
        })
    }
}

klp::livepatch! {
    type: ShadowFix2,
    name: "rust_livepatch_shadow_fix2",
    author: "rust-klp-shadow developers",
    description: "Rust version of livepatch-shadow-fix2: shadow counter, stacked on fix1",
    license: "GPL",
}
