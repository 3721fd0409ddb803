// SPDX-License-Identifier: GPL-2.0

//! A minimal Rust module: proves the test kernel loads out-of-tree Rust.
//!
//! Usage:
//!
//! ```text
//! $ insmod rust_minimal.ko
//! rust_minimal: Rust module loaded (kernel Rust works)
//! $ rmmod rust_minimal
//! rust_minimal: Rust module unloaded
//! ```

use kernel::prelude::*;

module! {
    type: RustMinimal,
    name: "rust_minimal",
    author: "rust-klp-shadow developers",
    description: "Minimal out-of-tree Rust module",
    license: "GPL",
}

/// The module's state: a vector filled at load, to exercise the allocator.
struct RustMinimal {
    numbers: KVec<u32>,
}

impl kernel::Module for RustMinimal {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut numbers = KVec::new();
        for i in 1..=3 {
            numbers.push(i * 14, GFP_KERNEL)?;
        }
        pr_info!("Rust module loaded (kernel Rust works)\n");
        Ok(RustMinimal { numbers })
    }
}

impl Drop for RustMinimal {
    fn drop(&mut self) {
        pr_info!(
            "Rust module unloaded, sum {}\n",
            self.numbers.iter().sum::<u32>()
        );
    }
}
