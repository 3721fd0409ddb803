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
//! - `shard.rs`: the cache-line buckets it is made of (the logic's `unsafe` code; also on the
//!   host);
//! - `platform.rs`: the kernel services they use (the twin of the host tests' `platform.rs`);
//! - `exports.rs`: the exported C ABI;
//! - `types.rs`: the registry of typed ids (which type each id holds, lock classes, module
//!   unloads), for the safe Rust API;
//! - `debugfs.rs`: the `ids` and `stats` files;
//! - `glue.rs`: the bindgen'd prototypes of `shadow_glue.c`, which has what Rust for Linux 6.12
//!   lacks (IRQ-safe spinlocks, per-CPU data, `in_nmi()`, debugfs and seq_file) and the
//!   `EXPORT_SYMBOL_GPL()`s.

use kernel::prelude::*;

/// The bindgen'd types of the C ABI (only a few of its items are used here).
#[allow(dead_code)]
#[path = "../livepatch/bindings.rs"]
mod klp_bindings;

mod debugfs;
mod exports;
mod glue;
mod platform;
mod shard;
mod table;
mod types;

use debugfs::IdCounts;
use kernel::bindings;
use table::Table;

/// The atomics of `shard.rs` and `table.rs` (loom's in the host tests).
mod sync {
    pub(crate) use core::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU16, AtomicU32, AtomicUsize, Ordering,
    };
}

/// The global table, shared by every module that uses this one.
pub(crate) static TABLE: Table = Table::new();

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
        init()?;
        Ok(RustKlpShadow)
    }
}

impl Drop for RustKlpShadow {
    fn drop(&mut self) {
        exit();
    }
}

/// Module init: the table, then debugfs.
fn init() -> Result {
    if TABLE.init(table::MIN_LINES, bindings::GFP_KERNEL).is_err() {
        TABLE.teardown(|_, _, _| {});
        // SAFETY: process context.
        unsafe { bindings::rcu_barrier() };
        return Err(ENOMEM);
    }
    // SAFETY: process context, once; undone in `exit`.
    let err = unsafe { glue::rks_module_notifier_init() };
    if err != 0 {
        TABLE.teardown(|_, _, _| {});
        // SAFETY: process context.
        unsafe { bindings::rcu_barrier() };
        return Err(Error::from_errno(err));
    }
    // SAFETY: process context, once.
    unsafe { glue::rks_debugfs_init() };
    Ok(())
}

/// Module exit: reports and frees the variables left, then waits for every RCU callback of this
/// module. Nobody can call the table any more: its users are modules that depend on this one.
fn exit() {
    // SAFETY: process context; the module notifier first (it waits for a running callback), then
    // debugfs, so no reader of `ids` runs during teardown.
    unsafe {
        glue::rks_module_notifier_exit();
        glue::rks_debugfs_exit();
    }
    let mut left = IdCounts::new();
    TABLE.teardown(|_, id, size| left.add(id, size));
    for c in left.ids.iter() {
        pr_warn!(
            "unloading with {} live shadow variables of id {:#x} ({} bytes): freed without their destructors, which the table does not know\n",
            c.count,
            c.id,
            c.bytes
        );
    }
    if left.incomplete {
        pr_warn!(
            "unloading with {} live shadow variables ({} bytes) in total: freed without their destructors\n",
            left.total.count,
            left.total.bytes
        );
    }
    // Teardown and the frees before it retire through RCU.
    // SAFETY: process context.
    unsafe { bindings::rcu_barrier() };
    crate::types::exit();
}
