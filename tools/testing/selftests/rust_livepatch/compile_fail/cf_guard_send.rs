// SPDX-License-Identifier: GPL-2.0

//! Must not compile: an `RcuGuard` sent to another task (the read-side critical section belongs
//! to the task that entered it).
//!
//! expect: error[E0277]: `*mut ()` cannot be sent between threads safely

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let rcu = klp::RcuGuard::new();
        let _ = kernel::workqueue::system().try_spawn(GFP_KERNEL, move || drop(rcu));
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_guard_send",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
