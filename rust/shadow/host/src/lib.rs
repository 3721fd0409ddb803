// SPDX-License-Identifier: GPL-2.0

//! Host build of the `rust_klp_shadow` table logic, for `cargo test`.
//!
//! `shard.rs` and `table.rs` are the very files the kernel module is built from; they are
//! included here by path. They reach their environment only through `crate::platform` and
//! `crate::sync`, which this crate implements with `std` (and, under `--cfg loom`, with loom's
//! atomics and locks so that loom can explore their interleavings).

// Items only the kernel build uses.
#![allow(dead_code)]
// `platform.rs`'s thread-locals have no `const` initialisers: loom's `thread_local!` takes none.
#![allow(clippy::missing_const_for_thread_local)]

pub mod platform;

/// The atomics the table logic uses: loom's under `--cfg loom`, `core`'s otherwise.
pub(crate) mod sync {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU16, AtomicU32, AtomicUsize, Ordering,
    };

    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU16, AtomicU32, AtomicUsize, Ordering,
    };
}

#[path = "../../shard.rs"]
pub(crate) mod shard;

#[path = "../../table.rs"]
pub(crate) mod table;

impl Drop for table::Table {
    /// Frees what is left and runs every pending RCU callback: a host test table leaks nothing.
    fn drop(&mut self) {
        self.teardown(|_, _, _| {});
        self.env().barrier();
    }
}

#[cfg(test)]
mod tests;
