// SPDX-License-Identifier: GPL-2.0

//! Tests of the safe API (issue 19), module A of two (`test-api-sound.sh`); no `unsafe` here.
//!
//! - Hole 1, data that outlives its module: at load, makes `LOCKS_N` shadow `SpinLockBh`s and
//!   takes each once, so that lockdep knows their class. Module B keeps their id registered and
//!   takes them after this module is gone: their class and name are the table's, not statics of
//!   this module, and lockdep reports nothing.
//! - Hole 2, type confusion: registers three ids, each with a variable, for types that module B
//!   declares under the same names and sizes: `State` (a `u64` here, a `KBox<u64>` in B), `Pair`
//!   (B swaps its two `u32`s) and `Same` (declared once, in `sound_shared.rs`).
//! - Hole 3, `core::mem::forget(Registration)`: at load, registers `NOISY` and makes `NOISY_N`
//!   variables whose destructor is this module's code and prints a line; at unload, frees two
//!   (their destructors are queued for after a grace period) and forgets the registration
//!   instead of dropping it. The table drops it when the module unloads, while its code is still
//!   there: every destructor runs before the module is gone, and nothing is left.
//!
//! ```text
//! $ insmod test_rust_api_sound_a.ko
//! test_rust_api_sound_a: PASS made 4 shadow locks and took each once
//! test_rust_api_sound_a: PASS registered 3 ids for B to try, one variable each
//! $ insmod test_rust_api_sound_b.ko; rmmod test_rust_api_sound_a
//! test_rust_api_sound_a: forgetting the registration of NOISY, 2 frees queued
//! rust_klp_shadow: Shadow id 0x7e570030: test_rust_api_sound_a unloads with a registration it never dropped; dropping it now
//! test_rust_api_sound_a: dropped 0
//! ...
//! ```

use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
mod sound_shared;

use klp::{shadow, shadow::Registration, shadow_data, RcuGuard, ShadowKey, SpinLockBh};
use sound_shared::{parent, report, Same, LOCKS, LOCKS_N, SAME};

shadow_data! {
    /// A counter (B's holds a `KBox<u64>`).
    struct State {
        v: u64,
    }
}

shadow_data! {
    /// Two counts (B swaps them).
    struct Pair {
        count: u32,
        flags: u32,
    }
}

static STATE: ShadowKey<State> = ShadowKey::new(0x7e57_0020);
static PAIR: ShadowKey<Pair> = ShadowKey::new(0x7e57_0021);

/// How many `Noisy` variables the module makes.
const NOISY_N: u64 = 6;

shadow_data! {
    /// Shadow data whose destructor is this module's code.
    struct Noisy {
        n: u64,
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        pr_info!("dropped {}\n", self.n);
    }
}

static NOISY: ShadowKey<Noisy> = ShadowKey::new(0x7e57_0030);

struct SoundA {
    _locks: Registration<SpinLockBh<u64>>,
    _state: Registration<State>,
    _pair: Registration<Pair>,
    _same: Registration<Same>,
    noisy: Option<Registration<Noisy>>,
}

/// Hole 1: the locks, each taken once.
fn make_locks() -> Result {
    for i in 0..LOCKS_N {
        LOCKS.alloc(parent(i), SpinLockBh::new(0, &LOCKS), GFP_KERNEL)?;
        let rcu = RcuGuard::new();
        let lock = LOCKS.get(parent(i), &rcu).ok_or(ENOENT)?;
        *lock.lock() += 1;
    }
    Ok(())
}

/// Hole 2: a variable under each id, of this module's types.
fn make_typed() -> Result {
    // A counter value that is not a valid pointer: read as a `KBox`, it would fault.
    STATE.alloc(parent(0), shadow::value(State { v: 0x7e57 }), GFP_KERNEL)?;
    let pair = Pair {
        count: 1,
        flags: 0x8000_0000,
    };
    PAIR.alloc(parent(0), shadow::value(pair), GFP_KERNEL)?;
    SAME.alloc(parent(0), shadow::value(Same { v: 42 }), GFP_KERNEL)
}

impl kernel::Module for SoundA {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let a = SoundA {
            _locks: LOCKS.register()?,
            _state: STATE.register()?,
            _pair: PAIR.register()?,
            _same: SAME.register()?,
            noisy: Some(NOISY.register()?),
        };
        let r = make_locks();
        report(
            "made 4 shadow locks and took each once",
            r.is_ok(),
            "alloc or get failed",
        );
        let r = make_typed();
        report(
            "registered 3 ids for B to try, one variable each",
            r.is_ok(),
            "alloc failed",
        );
        for n in 0..NOISY_N {
            NOISY.alloc(parent(n as usize), shadow::value(Noisy { n }), GFP_KERNEL)?;
        }
        Ok(a)
    }
}

impl Drop for SoundA {
    fn drop(&mut self) {
        let _ = STATE.free_all();
        let _ = PAIR.free_all();
        let _ = SAME.free_all();
        // Hole 3.
        let _ = NOISY.free(parent(0));
        let _ = NOISY.free(parent(1));
        pr_info!("forgetting the registration of NOISY, 2 frees queued\n");
        // No `unsafe`: forgetting a value is safe Rust. The table must cope.
        core::mem::forget(self.noisy.take());
    }
}

module! {
    type: SoundA,
    name: "test_rust_api_sound_a",
    author: "rust-klp-shadow developers",
    description: "Tests of the safe API's soundness (module A)",
    license: "GPL",
}
