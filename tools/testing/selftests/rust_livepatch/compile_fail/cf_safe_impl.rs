// SPDX-License-Identifier: GPL-2.0

//! Must not compile: `ShadowData` implemented without `unsafe`: its contract must be signed.
//!
//! expect: error[E0200]: the trait `ShadowData` requires an `unsafe impl` declaration

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

/// Claims to be shadow data.
struct Claimed {
    _name: &'static str,
}

impl klp::ShadowData for Claimed {
    const LAYOUT: u64 = 1;
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_safe_impl",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
