// SPDX-License-Identifier: GPL-2.0

//! rust_klp_relocs_sta - a Rust livepatch that uses static symbols of the module it patches.
//!
//! Purpose
//! -------
//!
//! Replaces the static `sta_model_stats_show()` of `sta_model.ko` (samples/ps_lock/sta_model.c),
//! the show callback of `/sys/kernel/debug/sta_model/stats`, with one that prints the `frames`
//! counter read through two other static symbols of the module, the function
//! `sta_model_counter_get()` and the array `counters` (`sta_stats.rs`). The livepatch
//! relocations are `.klp.rela.sta_model.*` against `.klp.sym.sta_model.*,0`: `klp` writes them
//! when `sta_model` loads, or at once if it is loaded, and clears them when it unloads, so the
//! livepatch may be loaded before its target and the target reloaded.
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod rust_klp_relocs_sta.ko          # before its target: it waits for it
//! livepatch: enabling patch 'rust_klp_relocs_sta'
//! livepatch: 'rust_klp_relocs_sta': starting patching transition
//! livepatch: 'rust_klp_relocs_sta': patching complete
//! # insmod sta_model.ko
//! livepatch: applying patch 'rust_klp_relocs_sta' to loading module 'sta_model'
//! # cat /sys/kernel/debug/sta_model/stats
//! frames 1234 (rust_klp_relocs_sta)
//! # rmmod sta_model
//! livepatch: reverting patch 'rust_klp_relocs_sta' on unloading module 'sta_model'
//! # insmod sta_model.ko; cat /sys/kernel/debug/sta_model/stats
//! livepatch: applying patch 'rust_klp_relocs_sta' to loading module 'sta_model'
//! frames 56 (rust_klp_relocs_sta)
//! ```

use kernel::{
    c_str,
    ffi::{c_int, c_void},
    prelude::*,
};

#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod sta_stats;
use klp::SeqFile;

klp::replacement! {
    /// Shows the `frames` counter only, read through static symbols of `sta_model`.
    // SAFETY: `static int sta_model_stats_show(struct seq_file *m, void *unused)`; the seq_file
    // code never passes a NULL `m`.
    unsafe fn stats_show(m: &SeqFile, _unused: *mut c_void) -> c_int = "sta_model_stats_show" {
        // SAFETY: A replacement of a `sta_model` function runs only while `sta_model` is loaded
        // and patched: `klp` wrote the relocations of `sta_stats` before patching it.
        let frames = unsafe { sta_stats::frames() };
        klp::seq_print!(m, "frames {} (rust_klp_relocs_sta)\n", frames);
        0
    }
}

/// The livepatch: one function of `sta_model`, no state.
struct RustKlpRelocsSta;

impl klp::Livepatch for RustKlpRelocsSta {
    const OBJECTS: &'static [klp::Object] =
        &[klp::Object::module(c_str!("sta_model"), &[stats_show])];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustKlpRelocsSta)
    }
}

klp::livepatch! {
    type: RustKlpRelocsSta,
    name: "rust_klp_relocs_sta",
    author: "rust-klp-shadow developers",
    description: "Rust livepatch sample: static symbols of the patched module",
    license: "GPL",
}
