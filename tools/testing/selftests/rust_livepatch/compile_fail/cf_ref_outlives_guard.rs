// SPDX-License-Identifier: GPL-2.0

//! Must not compile: a reference to shadow data used after its `RcuGuard` is dropped (the data
//! may be freed after the grace period).
//!
//! expect: error[E0505]: cannot move out of `rcu` because it is borrowed

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

static COUNT: klp::ShadowKey<u64> = klp::ShadowKey::new(1);

fn read(obj: *const u8) -> Option<u64> {
    let rcu = klp::RcuGuard::new();
    let count = COUNT.get(obj, &rcu);
    drop(rcu);
    count.copied()
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = read(core::ptr::null());
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_ref_outlives_guard",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
