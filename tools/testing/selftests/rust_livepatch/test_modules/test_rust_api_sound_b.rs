// SPDX-License-Identifier: GPL-2.0

//! Tests of the safe API (issue 19), module B of two (`test-api-sound.sh`); no `unsafe` here.
//!
//! - Hole 1: registers the id of module A's shadow locks at load, so that they stay when A is
//!   unloaded; at unload (after A's), takes each lock and checks the count A left in it. Under
//!   lockdep nothing is reported: the locks' class is the table's.
//! - Hole 2: at load, registers A's three ids with types named and sized as A's: its own
//!   `State`, which holds a `KBox<u64>` where A's holds a `u64`, its own `Pair`, with A's two
//!   `u32` fields swapped (a cumulative patch that changes a field but not the size), and `Same`,
//!   declared once for both (`sound_shared.rs`). The first two must be refused (`EINVAL`, and
//!   the table's `pr_err` names both types and both modules); the third accepted, reading A's
//!   value. A registration wrongly accepted is dropped unused: reading A's counter as a `KBox`
//!   would fault.
//! - Hole 4: at load, two workers allocate and free `Old` variables through the key `OLD` in a
//!   loop, with `GFP_KERNEL` (so they may sleep between the key's check and the insert).
//!   Meanwhile, `CYCLES` times, the module registers `OLD`, lets the workers run for a moment,
//!   drops the registration (the last of the id: its variables are freed), registers the same id
//!   with another type of the same size, `New`, and looks for variables under it. There must be
//!   none: an allocation that passed `OLD`'s check must not land after the sweep, and no
//!   variable made as an `Old` may be read as a `New`.
//!
//! ```text
//! $ insmod test_rust_api_sound_a.ko; insmod test_rust_api_sound_b.ko
//! rust_klp_shadow: Shadow id 0x7e570020 is registered by test_rust_api_sound_a for type ...
//! test_rust_api_sound_b: PASS State (KBox<u64> for u64) refused
//! test_rust_api_sound_b: PASS Pair (fields swapped) refused
//! test_rust_api_sound_b: PASS Same (declared the same way) accepted, reads 42
//! test_rust_api_sound_b: PASS nothing left behind by allocations racing the last drop (...)
//! test_rust_api_sound_b: PASS no variable read as another type
//! $ rmmod test_rust_api_sound_a; rmmod test_rust_api_sound_b
//! test_rust_api_sound_b: PASS took the 4 locks test_rust_api_sound_a made, after it unloaded
//! ```

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    workqueue,
};

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
mod sound_shared;

use klp::{shadow, shadow::Registration, shadow_data, RcuGuard, ShadowKey, SpinLockBh};
use sound_shared::{parent, report, LOCKS, LOCKS_N, SAME};

// --- Hole 2 ----------------------------------------------------------------------------------

shadow_data! {
    /// A boxed counter: the same size as A's `State`.
    struct State {
        v: KBox<u64>,
    }
}

shadow_data! {
    /// A's `Pair` with its fields swapped.
    struct Pair {
        flags: u32,
        count: u32,
    }
}

static STATE: ShadowKey<State> = ShadowKey::new(0x7e57_0020);
static PAIR: ShadowKey<Pair> = ShadowKey::new(0x7e57_0021);

fn try_types() {
    let state = STATE.register();
    report(
        "State (KBox<u64> for u64) refused",
        state.as_ref().err() == Some(&EINVAL),
        "registration accepted",
    );
    let pair = PAIR.register();
    report(
        "Pair (fields swapped) refused",
        pair.as_ref().err() == Some(&EINVAL),
        "registration accepted",
    );
    // Dropped unused if accepted.
    drop((state, pair));
    let same = SAME.register();
    let value = same.as_ref().ok().and_then(|_| {
        let rcu = RcuGuard::new();
        SAME.get(parent(0), &rcu).map(|s| s.v)
    });
    report(
        "Same (declared the same way) accepted, reads 42",
        value == Some(42),
        "refused, or A's value not found",
    );
}

// --- Hole 4 ----------------------------------------------------------------------------------

/// The id both types take in turn.
const ID: usize = 0x7e57_0040;
/// Register / drop cycles.
const CYCLES: usize = 32;
/// Parents per worker.
const PARENTS: usize = 32;
/// Workers.
const WORKERS: usize = 2;
/// What an `Old` holds.
const MAGIC_OLD: u64 = 0x01d0_01d0_01d0_01d0;
/// What a `New` holds.
const MAGIC_NEW: u64 = 0x0e30_0e30_0e30_0e30;

shadow_data! {
    /// The type the workers allocate.
    struct Old {
        magic: u64,
    }
}

shadow_data! {
    /// The type the id gets between cycles: same size, another type.
    struct New {
        tag: u64,
    }
}

static OLD: ShadowKey<Old> = ShadowKey::new(ID);
static NEW: ShadowKey<New> = ShadowKey::new(ID);

/// What the module and its workers share.
#[pin_data]
struct Shared {
    stop: AtomicBool,
    allocated: AtomicUsize,
    /// Workers still running.
    #[pin]
    running: Mutex<usize>,
    #[pin]
    done: CondVar,
}

/// A worker: allocates and frees its parents' variables until told to stop, sleeping a jiffy
/// after each pass (kernel threads are not preempted here: a worker that never sleeps would keep
/// the module's init off its CPU).
fn worker(shared: Arc<Shared>, first: usize) {
    while !shared.stop.load(Ordering::Relaxed) {
        for i in 0..PARENTS {
            let p = parent(first + i);
            if OLD
                .alloc(p, shadow::value(Old { magic: MAGIC_OLD }), GFP_KERNEL)
                .is_ok()
            {
                shared.allocated.fetch_add(1, Ordering::Relaxed);
            }
            if i % 3 == 0 {
                let _ = OLD.free(p);
            }
        }
        sleep(&shared, 1);
    }
    *shared.running.lock() -= 1;
    shared.done.notify_all();
}

/// Sleeps about `ms` milliseconds (no signal can arrive at a module's init).
fn sleep(shared: &Shared, ms: u32) {
    let mut guard = shared.running.lock();
    let _ = shared
        .done
        .wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(ms));
}

/// One cycle: `OLD` registered for a moment, dropped, `NEW` registered; returns the variables
/// found under the id then, and how many of them were not `New`s.
fn cycle(shared: &Shared) -> Result<(usize, usize)> {
    let old = OLD.register()?;
    sleep(shared, 2);
    // The last registration of the id: what the workers allocated is freed, and every allocation
    // still in flight must be refused.
    drop(old);
    let new = NEW.register()?;
    let (mut found, mut wrong) = (0, 0);
    {
        let rcu = RcuGuard::new();
        for i in 0..WORKERS * PARENTS {
            if let Some(v) = NEW.get(parent(i), &rcu) {
                found += 1;
                if v.tag != MAGIC_NEW {
                    wrong += 1;
                }
            }
        }
    }
    let _ = NEW.free_all();
    drop(new);
    Ok((found, wrong))
}

/// Hole 4: the workers, and `CYCLES` cycles.
fn race() -> Result {
    let shared = Arc::pin_init(
        pin_init!(Shared {
            stop: AtomicBool::new(false),
            allocated: AtomicUsize::new(0),
            running <- new_mutex!(0),
            done <- new_condvar!(),
        }),
        GFP_KERNEL,
    )?;
    for w in 0..WORKERS {
        let s = shared.clone();
        *shared.running.lock() += 1;
        if workqueue::system_unbound()
            .try_spawn(GFP_KERNEL, move || worker(s, w * PARENTS))
            .is_err()
        {
            *shared.running.lock() -= 1;
        }
    }
    let (mut cycles, mut left, mut wrong) = (0, 0, 0);
    for _ in 0..CYCLES {
        match cycle(&shared) {
            Ok((f, w)) => {
                cycles += 1;
                left += f;
                wrong += w;
            }
            Err(e) => pr_err!("cycle failed: {:?}\n", e),
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut running = shared.running.lock();
    while *running > 0 {
        shared.done.wait(&mut running);
    }
    drop(running);
    let allocated = shared.allocated.load(Ordering::Relaxed);
    if cycles == CYCLES && left == 0 && allocated > 0 {
        pr_info!(
            "PASS nothing left behind by allocations racing the last drop ({} cycles, {} allocations)\n",
            cycles,
            allocated
        );
    } else {
        pr_err!(
            "FAIL nothing left behind by allocations racing the last drop: {} of {} cycles, {} allocations, {} variables left\n",
            cycles,
            CYCLES,
            allocated,
            left
        );
    }
    report(
        "no variable read as another type",
        wrong == 0,
        "`Old`s read as `New`s",
    );
    Ok(())
}

// --- The module ------------------------------------------------------------------------------

struct SoundB {
    locks: Option<Registration<SpinLockBh<u64>>>,
}

impl kernel::Module for SoundB {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let b = SoundB {
            locks: Some(LOCKS.register()?),
        };
        try_types();
        race()?;
        Ok(b)
    }
}

impl Drop for SoundB {
    fn drop(&mut self) {
        // Hole 1: A is gone by now.
        let mut taken = 0;
        for i in 0..LOCKS_N {
            let rcu = RcuGuard::new();
            if let Some(lock) = LOCKS.get(parent(i), &rcu) {
                let mut count = lock.lock();
                if *count == 1 {
                    taken += 1;
                }
                *count += 1;
            }
        }
        report(
            "took the 4 locks test_rust_api_sound_a made, after it unloaded",
            taken == LOCKS_N,
            "a lock is missing or was not taken once before",
        );
        let _ = LOCKS.free_all();
        drop(self.locks.take());
    }
}

module! {
    type: SoundB,
    name: "test_rust_api_sound_b",
    author: "rust-klp-shadow developers",
    description: "Tests of the safe API's soundness (module B)",
    license: "GPL",
}
