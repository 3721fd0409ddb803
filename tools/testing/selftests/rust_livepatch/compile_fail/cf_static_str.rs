// SPDX-License-Identifier: GPL-2.0

//! Must not compile: shadow data holding a `&'static str` (a string of the module that made it,
//! freed with it).
//!
//! expect: error[E0277]: the trait bound `&'static str: ShadowData` is not satisfied

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

klp::shadow_data! {
    /// A name that points into the module that made the variable.
    struct Named {
        name: &'static str,
    }
}

static NAMED: klp::ShadowKey<Named> = klp::ShadowKey::new(1);

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = NAMED.register()?;
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_static_str",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
