// SPDX-License-Identifier: GPL-2.0

//! Must not compile: shadow data holding a function pointer (code of the module that made it).
//!
//! expect: error[E0277]: the trait bound `fn(): ShadowData` is not satisfied

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

klp::shadow_data! {
    /// A callback into the module that made the variable.
    struct Callback {
        f: fn(),
    }
}

static CALLBACK: klp::ShadowKey<Callback> = klp::ShadowKey::new(1);

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = CALLBACK.register()?;
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_fn_pointer",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
