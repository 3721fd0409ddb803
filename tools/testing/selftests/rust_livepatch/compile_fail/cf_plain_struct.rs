// SPDX-License-Identifier: GPL-2.0

//! Must not compile: a struct used as shadow data without `shadow_data!` (or the `unsafe`
//! contract of `ShadowData`).
//!
//! expect: error[E0277]: the trait bound `Plain: ShadowData` is not satisfied
//! expect: error[E0599]: the method `register` exists for struct `ShadowKey<Plain>`, but its trait bounds were not satisfied

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

/// Plain data, but nothing declares it fit to be shared.
struct Plain {
    _v: u64,
}

static PLAIN: klp::ShadowKey<Plain> = klp::ShadowKey::new(1);

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = PLAIN.register()?;
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_plain_struct",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
