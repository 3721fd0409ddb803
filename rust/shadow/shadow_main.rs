// SPDX-License-Identifier: GPL-2.0

//! `rust_klp_shadow`: one global table of livepatch shadow variables, in Rust.
//!
//! C header: [rust/shadow/rust_klp_shadow.h](../rust_klp_shadow.h)
//!
//! The table has the semantics of the kernel's `klp_shadow_*()` (`kernel/livepatch/shadow.c`)
//! and exports them as `rust_klp_shadow_*()` with the same C signatures, plus RCU-deferred frees
//! and typed ids for the safe Rust API (`rust/livepatch/`). Unlike the kernel's table it stays
//! O(1) at any size, and it shows its contents in `/sys/kernel/debug/rust_klp_shadow/`.
//! Documentation: `Documentation/livepatch/rust-klp-shadow.rst`.
//!
//! - `table.rs`: the table's logic (safe code; also built and tested on the host);
//! - `shard.rs`: the RCU hash chains it is made of (the logic's `unsafe` code; also on the host);
//! - `ffi.rs`: the kernel services they use, and the exported C ABI;
//! - `types.rs`: typed ids (which type each id holds, lock classes, module unloads), for the
//!   safe Rust API;
//! - `shadow_glue.c`: what Rust for Linux 6.12 lacks (IRQ-safe spinlocks, RCU, debugfs and
//!   seq_file, the work item) and the `EXPORT_SYMBOL_GPL()`s.

use kernel::prelude::*;

/// The bindgen'd types of the C ABI (only a few of its items are used here).
#[allow(dead_code)]
#[path = "../livepatch/bindings.rs"]
mod klp_bindings;

mod ffi;
mod shard;
mod table;
mod types;

/// What `shard.rs` and `table.rs` use from the kernel.
use ffi as platform;

/// The atomics of `shard.rs` and `table.rs` (loom's in the host tests).
mod sync {
    pub(crate) use core::hint::spin_loop;
    pub(crate) use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
}

module! {
    type: RustKlpShadow,
    name: "rust_klp_shadow",
    author: "rust_livepatch project",
    description: "Shadow variables for livepatches, in a Rust table",
    license: "GPL",
}

struct RustKlpShadow;

impl kernel::Module for RustKlpShadow {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        ffi::init()?;
        Ok(RustKlpShadow)
    }
}

impl Drop for RustKlpShadow {
    fn drop(&mut self) {
        ffi::exit();
    }
}
