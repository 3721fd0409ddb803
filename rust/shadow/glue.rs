// SPDX-License-Identifier: GPL-2.0

//! Raw bindings of `shadow_glue.h`: what `shadow_glue.c` gives the Rust side, and the functions
//! the Rust side defines for it.
//!
//! C header: [rust/shadow/shadow_glue.h](../shadow_glue.h)
//!
//! `glue_generated.rs` is made by `scripts/klp-bindgen` (`make rust/shadow/glue_generated.rs`)
//! from the header, keeping only its `rks_*` functions and taking every kernel type from
//! [`kernel::bindings`]: a prototype that drifts from the C is a compile error, not a silent
//! ABI mismatch. The declarations of the functions Rust defines (`rks_get_bound_rcu`, ...) check the
//! definitions' signatures the same way.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    unreachable_pub,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

use crate::klp_bindings::*;
use kernel::ffi;

include!("glue_generated.rs");
