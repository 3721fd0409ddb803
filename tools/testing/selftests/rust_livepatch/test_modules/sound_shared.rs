// SPDX-License-Identifier: GPL-2.0

//! What `test_rust_api_sound_a` and `test_rust_api_sound_b` share: the keys of the shadow locks
//! and of `Same` (one source file, so both modules declare the same type for each id), and the
//! parents.

use crate::klp::{shadow_data, ShadowKey, SpinLockBh};

/// How many shadow locks module A makes.
pub(crate) const LOCKS_N: usize = 4;

/// The shadow locks: a counter under a `spin_lock_bh()` lock, as the `ps_lock` samples use.
pub(crate) static LOCKS: ShadowKey<SpinLockBh<u64>> = ShadowKey::new(0x7e57_0010);

shadow_data! {
    /// Declared the same way in both modules: B's registration of `SAME` is accepted.
    pub(crate) struct Same {
        pub(crate) v: u64,
    }
}

/// An id both modules register with `Same`.
pub(crate) static SAME: ShadowKey<Same> = ShadowKey::new(0x7e57_0022);

/// The parent of the `i`-th variable of an id: an address used as a key only, never
/// dereferenced.
pub(crate) fn parent(i: usize) -> *const u8 {
    (0x7e57_0000 + 64 * i) as *const u8
}

/// Prints `PASS <name>` or `FAIL <name>: <why>`.
pub(crate) fn report(name: &str, ok: bool, why: &str) {
    if ok {
        kernel::pr_info!("PASS {}\n", name);
    } else {
        kernel::pr_err!("FAIL {}: {}\n", name, why);
    }
}
