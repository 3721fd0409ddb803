// SPDX-License-Identifier: GPL-2.0

//! Raw bindings for `klp_*` and our table's `rust_klp_*` C ABI.
//!
//! C headers: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h),
//! [`rust/shadow/rust_klp_shadow.h`](../../shadow/rust_klp_shadow.h).
//!
//! `bindings_generated.rs` is made by `scripts/klp-bindgen` (`make rust/livepatch/bindings_generated.rs`)
//! with the kernel's own clang flags; it keeps only `klp_*`/`rust_klp_*` items and takes every
//! other type (`list_head`, `kobject`, `module`, ...) from [`kernel::bindings`]. Never write these
//! layouts by hand.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    missing_docs,
    unreachable_pub,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

use kernel::ffi;

include!("bindings_generated.rs");
