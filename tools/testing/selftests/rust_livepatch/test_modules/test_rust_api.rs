// SPDX-License-Identifier: GPL-2.0

//! Test of the typed shadow variable API of `rust/livepatch/` (`klp::ShadowKey`).
//!
//! Runs its checks at load and prints one line per check, `PASS <name>` or
//! `FAIL <name>: <why>`; `test-api-shadow.sh` loads it, compares the lines and the table's debugfs
//! counts, and unloads it. At load it leaves `LEFT` variables under `ID_TRACKED`: at unload,
//! dropping the registration makes the table free them, and the module checks that each was
//! dropped exactly once.
//!
//! ```text
//! $ insmod test_rust_api.ko
//! test_rust_api: PASS register
//! test_rust_api: PASS same id, other type refused (EINVAL)
//! ...
//! $ grep 0x7e570001 /sys/kernel/debug/rust_klp_shadow/ids
//! id 0x7e570001 count 3 bytes ... type crate::Tracked
//! $ rmmod test_rust_api
//! test_rust_api: PASS teardown dropped the 3 variables left
//! test_rust_api: PASS every variable dropped once (allocated 13, dropped 13)
//! ```

use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::prelude::*;

#[path = "../../../../../rust/livepatch/mod.rs"]
pub mod klp;
use klp::{rcu, shadow, shadow::Registration, RcuGuard, ShadowKey, SpinLockBh};

/// Variables of type `Tracked`, registered by this module.
const ID_TRACKED: usize = 0x7e57_0001;
/// Flags (`()`), registered.
const ID_FLAG: usize = 0x7e57_0002;
/// Never registered.
const ID_UNREGISTERED: usize = 0x7e57_0003;
/// Registered, then the registration is dropped in atomic context.
const ID_ATOMIC_DROP: usize = 0x7e57_0004;
/// How many `Tracked` variables the module leaves for the table's teardown at unload.
const LEFT: usize = 3;

/// How many `Tracked` were initialised (their initialiser ran to completion).
static INITS: AtomicUsize = AtomicUsize::new(0);
/// How many `Tracked` were dropped.
static DROPS: AtomicUsize = AtomicUsize::new(0);
/// How many `Token`s (captured by initialisers) were dropped.
static TOKENS_DROPPED: AtomicUsize = AtomicUsize::new(0);

static TRACKED: ShadowKey<Tracked> = ShadowKey::new(ID_TRACKED);
/// The id of `TRACKED`, with another type: must be refused.
static OTHER_TYPE: ShadowKey<u32> = ShadowKey::new(ID_TRACKED);
static FLAG: ShadowKey<()> = ShadowKey::new(ID_FLAG);
static UNREGISTERED: ShadowKey<u64> = ShadowKey::new(ID_UNREGISTERED);
static ATOMIC_DROP: ShadowKey<u64> = ShadowKey::new(ID_ATOMIC_DROP);
/// The id of `ATOMIC_DROP`, with another type: refused while the id stays bound.
static ATOMIC_DROP_OTHER: ShadowKey<u32> = ShadowKey::new(ID_ATOMIC_DROP);

/// Parent objects: only their addresses matter.
static PARENTS: [u64; 16] = [0; 16];

fn parent(i: usize) -> &'static u64 {
    &PARENTS[i]
}

klp::shadow_data! {
    /// Shadow data that counts its initialisations and drops, with a lock that its drop takes
    /// from softirq context (an RCU callback), while the checks take it from process context.
    #[pin_data(PinnedDrop)]
    struct Tracked {
        value: u64,
        #[pin]
        lock: SpinLockBh<u32>,
    }
}

impl Tracked {
    fn new(value: u64) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            value,
            lock <- SpinLockBh::new(0, &TRACKED),
        }? Error)
        .pin_chain(|_| {
            INITS.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }

    /// An initialiser that fails with `e` after its lock was initialised.
    fn failing(e: Error) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            lock <- SpinLockBh::new(0, &TRACKED),
            value: Err::<u64, Error>(e)?,
        }? Error)
    }

    /// An initialiser that owns `token`: it must be dropped whether the initialiser runs or not.
    fn with_token(value: u64, token: Token) -> impl PinInit<Self, Error> {
        Self::new(value).pin_chain(move |_| {
            drop(token);
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Tracked {
    fn drop(self: Pin<&mut Self>) {
        *self.lock.lock() += 1;
        DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts its drops in `TOKENS_DROPPED`.
struct Token;

impl Drop for Token {
    fn drop(&mut self) {
        TOKENS_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A failed check.
struct Fail(&'static str);

type Check = core::result::Result<(), Fail>;

/// Fails the check with `msg` unless `cond` holds.
fn ensure(cond: bool, msg: &'static str) -> Check {
    if cond {
        Ok(())
    } else {
        Err(Fail(msg))
    }
}

fn report(name: &str, result: Check) -> bool {
    match result {
        Ok(()) => {
            pr_info!("PASS {}\n", name);
            true
        }
        Err(Fail(why)) => {
            pr_err!("FAIL {}: {}\n", name, why);
            false
        }
    }
}

/// Waits until the destructors of the variables freed so far ran.
fn drops_after_grace_period() -> usize {
    let _ = rcu::barrier();
    DROPS.load(Ordering::Relaxed)
}

fn value_of(i: usize) -> Option<u64> {
    let rcu = RcuGuard::new();
    TRACKED.get(parent(i), &rcu).map(|t| t.value)
}

fn check_get_alloc() -> Check {
    ensure(value_of(0).is_none(), "get found a variable before alloc")?;
    ensure(!TRACKED.contains(parent(0)), "contains before alloc")?;
    TRACKED
        .alloc(parent(0), Tracked::new(100), GFP_KERNEL)
        .map_err(|_| Fail("alloc failed"))?;
    ensure(
        INITS.load(Ordering::Relaxed) == 1,
        "initialiser did not run once",
    )?;
    ensure(value_of(0) == Some(100), "get after alloc")?;
    ensure(TRACKED.contains(parent(0)), "contains after alloc")?;
    ensure(value_of(1).is_none(), "get found another parent's variable")
}

fn check_duplicate() -> Check {
    let tokens = TOKENS_DROPPED.load(Ordering::Relaxed);
    let r = TRACKED.alloc(parent(0), Tracked::with_token(200, Token), GFP_KERNEL);
    ensure(r == Err(EEXIST), "duplicate alloc did not return EEXIST")?;
    ensure(
        INITS.load(Ordering::Relaxed) == 1,
        "duplicate alloc ran its initialiser",
    )?;
    ensure(
        value_of(0) == Some(100),
        "duplicate alloc changed the variable",
    )?;
    ensure(
        TOKENS_DROPPED.load(Ordering::Relaxed) == tokens + 1,
        "the unused initialiser was not dropped",
    )
}

fn check_get_or_alloc() -> Check {
    let rcu = RcuGuard::new();
    let existing = TRACKED
        .get_or_alloc(parent(0), Tracked::new(300), GFP_ATOMIC, &rcu)
        .map_err(|_| Fail("get_or_alloc of an existing variable failed"))?;
    ensure(
        existing.value == 100,
        "get_or_alloc did not return the existing data",
    )?;
    ensure(
        INITS.load(Ordering::Relaxed) == 1,
        "get_or_alloc re-initialised",
    )?;
    let new = TRACKED
        .get_or_alloc(parent(1), Tracked::new(101), GFP_ATOMIC, &rcu)
        .map_err(|_| Fail("get_or_alloc of a new variable failed"))?;
    ensure(new.value == 101, "get_or_alloc returned wrong data")?;
    ensure(
        INITS.load(Ordering::Relaxed) == 2,
        "get_or_alloc did not initialise",
    )?;
    // Process context, softirqs enabled: the lock is taken with spin_lock_bh().
    *new.lock.lock() += 1;
    ensure(*new.lock.lock() == 1, "lock data")?;
    let r = TRACKED.get_or_alloc(parent(2), Tracked::new(102), GFP_KERNEL, &rcu);
    ensure(
        r.err() == Some(EINVAL),
        "sleeping flags inside an RcuGuard not refused",
    )?;
    ensure(
        !TRACKED.contains(parent(2)),
        "refused get_or_alloc inserted a variable",
    )
}

fn check_init_failure() -> Check {
    let (inits, drops) = (INITS.load(Ordering::Relaxed), drops_after_grace_period());
    let r = TRACKED.alloc(parent(3), Tracked::failing(ENOSPC), GFP_KERNEL);
    ensure(
        r == Err(ENOSPC),
        "alloc did not return the initialiser's error",
    )?;
    ensure(
        !TRACKED.contains(parent(3)),
        "failed alloc inserted a variable",
    )?;
    let rcu = RcuGuard::new();
    let r = TRACKED.get_or_alloc(parent(3), Tracked::failing(EAGAIN), GFP_ATOMIC, &rcu);
    ensure(
        r.err() == Some(EAGAIN),
        "get_or_alloc did not return the error",
    )?;
    drop(rcu);
    ensure(
        !TRACKED.contains(parent(3)),
        "failed get_or_alloc inserted a variable",
    )?;
    ensure(
        INITS.load(Ordering::Relaxed) == inits,
        "failed initialiser counted",
    )?;
    ensure(
        drops_after_grace_period() == drops,
        "a never-initialised variable was dropped",
    )
}

fn check_free() -> Check {
    let drops = drops_after_grace_period();
    TRACKED.free(parent(1)).map_err(|_| Fail("free failed"))?;
    ensure(value_of(1).is_none(), "get found a freed variable")?;
    ensure(
        drops_after_grace_period() == drops + 1,
        "free did not drop once",
    )?;
    TRACKED
        .free(parent(1))
        .map_err(|_| Fail("second free failed"))?;
    ensure(
        drops_after_grace_period() == drops + 1,
        "second free dropped again",
    )?;
    ensure(
        value_of(0) == Some(100),
        "free removed another parent's variable",
    )
}

fn check_free_rcu() -> Check {
    // A reference taken before `free` stays valid until its guard is dropped.
    let rcu = RcuGuard::new();
    let t = TRACKED.get(parent(0), &rcu).ok_or(Fail("no variable"))?;
    let drops = DROPS.load(Ordering::Relaxed);
    TRACKED.free(parent(0)).map_err(|_| Fail("free failed"))?;
    ensure(t.value == 100, "data changed under an RcuGuard")?;
    ensure(
        DROPS.load(Ordering::Relaxed) == drops,
        "dropped inside an RcuGuard",
    )?;
    drop(rcu);
    ensure(
        drops_after_grace_period() == drops + 1,
        "not dropped after the grace period",
    )
}

fn check_free_all() -> Check {
    let drops = drops_after_grace_period();
    for i in 4..8 {
        TRACKED
            .alloc(parent(i), Tracked::new(i as u64), GFP_KERNEL)
            .map_err(|_| Fail("alloc failed"))?;
    }
    TRACKED.free_all().map_err(|_| Fail("free_all failed"))?;
    ensure(
        (4..8).all(|i| value_of(i).is_none()),
        "free_all left a variable",
    )?;
    ensure(
        drops_after_grace_period() == drops + 4,
        "free_all did not drop each once",
    )
}

fn check_flag() -> Check {
    ensure(!FLAG.contains(parent(0)), "flag set before alloc")?;
    FLAG.alloc(parent(0), shadow::value(()), GFP_ATOMIC)
        .map_err(|_| Fail("flag alloc failed"))?;
    ensure(FLAG.contains(parent(0)), "flag not set")?;
    ensure(
        !TRACKED.contains(parent(0)),
        "flag visible under another id",
    )?;
    ensure(
        FLAG.alloc(parent(0), shadow::value(()), GFP_ATOMIC) == Err(EEXIST),
        "flag set twice",
    )?;
    FLAG.free(parent(0)).map_err(|_| Fail("flag free failed"))?;
    ensure(!FLAG.contains(parent(0)), "flag still set")
}

fn check_unregistered() -> Check {
    ensure(
        UNREGISTERED.alloc(parent(0), shadow::value(5), GFP_KERNEL) == Err(EINVAL),
        "alloc with an unregistered key",
    )?;
    ensure(
        !UNREGISTERED.contains(parent(0)),
        "contains with an unregistered key",
    )?;
    ensure(
        UNREGISTERED.free(parent(0)) == Err(EINVAL),
        "free with an unregistered key",
    )?;
    ensure(
        UNREGISTERED.free_all() == Err(EINVAL),
        "free_all with an unregistered key",
    )
}

/// Operations that may sleep, where the caller may not: refused, nothing sleeps.
fn check_context() -> Check {
    let rcu = RcuGuard::new();
    let r = TRACKED.alloc(parent(12), Tracked::new(12), GFP_KERNEL);
    ensure(r == Err(EINVAL), "alloc with GFP_KERNEL inside an RcuGuard")?;
    ensure(
        ATOMIC_DROP.register().err() == Some(EINVAL),
        "register inside an RcuGuard",
    )?;
    ensure(
        rcu::barrier() == Err(EINVAL),
        "rcu::barrier inside an RcuGuard",
    )?;
    drop(rcu);
    ensure(
        !TRACKED.contains(parent(12)),
        "refused alloc inserted a variable",
    )?;
    // A registration dropped where it may not sleep: the key stops working at once, the id
    // stays bound (another type is refused) until the module unloads.
    let reg = ATOMIC_DROP
        .register()
        .map_err(|_| Fail("registration failed"))?;
    let rcu = RcuGuard::new();
    drop(reg);
    drop(rcu);
    ensure(
        ATOMIC_DROP.alloc(parent(0), shadow::value(1), GFP_KERNEL) == Err(EINVAL),
        "key usable after its registration was dropped",
    )?;
    ensure(
        ATOMIC_DROP_OTHER.register().err() == Some(EINVAL),
        "id unbound by a drop in atomic context",
    )
}

fn check_second_registration() -> Check {
    let second = TRACKED
        .register()
        .map_err(|_| Fail("second registration of the same key refused"))?;
    drop(second);
    // The first registration still holds: the key stays usable, the variables stay.
    ensure(value_of(0).is_none(), "parent 0 was freed before")?;
    TRACKED
        .alloc(parent(8), Tracked::new(8), GFP_KERNEL)
        .map_err(|_| Fail("alloc after dropping a second registration"))?;
    ensure(value_of(8) == Some(8), "variable lost")
}

fn leave_for_teardown() -> Check {
    for i in 0..LEFT - 1 {
        TRACKED
            .alloc(parent(9 + i), Tracked::new(9 + i as u64), GFP_KERNEL)
            .map_err(|_| Fail("alloc failed"))?;
    }
    // With parent 8 above: `LEFT` variables.
    ensure(
        (8..8 + LEFT).all(|i| value_of(i).is_some()),
        "a variable is missing",
    )
}

struct TestRustApi {
    tracked: Option<Registration<Tracked>>,
    _flag: Registration<()>,
}

impl kernel::Module for TestRustApi {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let tracked = TRACKED.register();
        report("register", ensure(tracked.is_ok(), "registration failed"));
        let tracked = tracked?;
        let flag = FLAG.register()?;

        let other = OTHER_TYPE.register();
        report(
            "same id, other type refused (EINVAL)",
            ensure(other.err() == Some(EINVAL), "not refused with EINVAL"),
        );

        report("get and alloc", check_get_alloc());
        report("duplicate alloc is EEXIST", check_duplicate());
        report("get_or_alloc", check_get_or_alloc());
        report("failed initialiser inserts nothing", check_init_failure());
        report("free drops once", check_free());
        report("free waits for readers", check_free_rcu());
        report("free_all drops each once", check_free_all());
        report("shadow variable as a flag", check_flag());
        report("unregistered key refused", check_unregistered());
        report(
            "sleeping operations refused in atomic context",
            check_context(),
        );
        report("second registration", check_second_registration());
        report("variables left for teardown", leave_for_teardown());

        Ok(TestRustApi {
            tracked: Some(tracked),
            _flag: flag,
        })
    }
}

impl Drop for TestRustApi {
    fn drop(&mut self) {
        let drops = drops_after_grace_period();
        // The last registration of the id: the table frees the variables left.
        drop(self.tracked.take());
        let after = DROPS.load(Ordering::Relaxed);
        let inits = INITS.load(Ordering::Relaxed);
        if after == drops + LEFT {
            pr_info!("PASS teardown dropped the {} variables left\n", LEFT);
        } else {
            pr_err!(
                "FAIL teardown dropped the {} variables left: dropped {}\n",
                LEFT,
                after - drops
            );
        }
        if after == inits {
            pr_info!(
                "PASS every variable dropped once (allocated {}, dropped {})\n",
                inits,
                after
            );
        } else {
            pr_err!(
                "FAIL every variable dropped once: allocated {}, dropped {}\n",
                inits,
                after
            );
        }
    }
}

module! {
    type: TestRustApi,
    name: "test_rust_api",
    author: "rust-klp-shadow developers",
    description: "Test of the typed shadow variable API",
    license: "GPL",
}
