// SPDX-License-Identifier: GPL-2.0

//! Must not compile: a kernel `SpinLock` in shadow data (its lockdep class and name are statics
//! of the module that initialised it).
//!
//! expect: error[E0277]: the trait bound `Lock<u32, SpinLockBackend>: ShadowData` is not satisfied

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

klp::shadow_data! {
    /// A lock whose class is a static of the module that made the variable.
    #[pin_data]
    struct Locked {
        #[pin]
        lock: kernel::sync::SpinLock<u32>,
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
    name: "cf_kernel_lock",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
