// SPDX-License-Identifier: GPL-2.0

//! Must not compile: shadow data holding a trait object (its vtable is in the module that made it).
//!
//! expect: error[E0277]: the trait bound `dyn Fn() + Send + Sync: ShadowData` is not satisfied

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

klp::shadow_data! {
    /// A boxed closure: heap data, but a vtable in the module.
    struct Handler {
        f: KBox<dyn Fn() + Send + Sync>,
    }
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_trait_object",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
