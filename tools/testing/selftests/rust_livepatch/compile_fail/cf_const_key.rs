// SPDX-License-Identifier: GPL-2.0

//! Must not compile: a `const` key (each use would be a new temporary: it could never stay
//! registered).
//!
//! expect: error[E0716]: temporary value dropped while borrowed

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

const KEY: klp::ShadowKey<u64> = klp::ShadowKey::new(1);

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _reg = KEY.register()?;
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_const_key",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
