// SPDX-License-Identifier: GPL-2.0

//! Must not compile: a `Registration` in shadow data (shadow data is dropped in softirq
//! context, where a registration cannot be dropped).
//!
//! expect: error[E0277]: the trait bound `Registration<u64>: ShadowData` is not satisfied

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

klp::shadow_data! {
    /// A registration, dropped with the variable in an RCU callback.
    struct Holder {
        reg: klp::shadow::Registration<u64>,
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
    name: "cf_registration",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
