// SPDX-License-Identifier: GPL-2.0

//! Must not compile: shadow data aligned to more than the table guarantees (16 bytes).
//!
//! expect: error[E0080]: evaluation panicked: shadow data must not need more than MAX_ALIGN (16) bytes of alignment

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;

klp::shadow_data! {
    /// Cache-line aligned: more than `MAX_ALIGN`.
    #[repr(align(64))]
    struct Line {
        v: u64,
    }
}

static LINE: klp::ShadowKey<Line> = klp::ShadowKey::new(1);

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = LINE.register()?;
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "cf_overaligned",
    author: "rust-klp-shadow developers",
    description: "Must not compile",
    license: "GPL",
}
