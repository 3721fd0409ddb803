// SPDX-License-Identifier: GPL-2.0

//! rust_mac80211_ps_lock - the mac80211 `ps_lock` fix, live on the real mac80211.
//!
//! Purpose
//! -------
//!
//! Mainline commit 1d147bfa6429 ("mac80211: fix AP powersave TX vs. wakeup race") added
//! `spinlock_t ps_lock` to `struct sta_info`. The project's test kernel has the race back
//! (`patches/0001`); this livepatch fixes it on the running kernel, replacing the two functions
//! the commit changed, `ieee80211_tx_h_unicast_ps_buf()` (static, kept out of line by
//! `patches/0002`) and `ieee80211_sta_ps_deliver_wakeup()`, with Rust versions of their fixed
//! code. A livepatch cannot add the field: the lock is a shadow variable of the station, attached
//! on first use (the "in-flight parent objects" use case of
//! `Documentation/livepatch/shadow-vars.rst`: stations exist before the patch, and new ones are
//! allocated by unpatched `__sta_info_alloc()`), and freed when the patch is disabled.
//!
//! mac80211's structures come from bindgen of its own headers (`mac80211.rs`); its functions,
//! exported or not, are reached through livepatch relocations, so the livepatch may be loaded
//! before mac80211 and stays while mac80211 is reloaded. See
//! `Documentation/livepatch/rust-mac80211-ps-lock.rst`.
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod rust_mac80211_ps_lock.ko
//! livepatch: enabling patch 'rust_mac80211_ps_lock'
//! livepatch: 'rust_mac80211_ps_lock': patching complete
//! # grep 0x80211053 /sys/kernel/debug/rust_klp_shadow/ids   # a ps_lock per station that slept
//! # echo 0 > /sys/kernel/livepatch/rust_mac80211_ps_lock/enabled; rmmod rust_mac80211_ps_lock
//! ```

use kernel::{c_str, init::PinInit, prelude::*};

#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod mac80211;

use klp::{
    shadow::Registration, Livepatch, Object, PatchedObject, RcuGuard, ShadowKey, SpinLockBh,
};
use mac80211::{PsData, Sta, StaFlag, Tx, TxResult, TX_CONTINUE, TX_QUEUED};

/// The type of the shadow `ps_lock`: a spinlock guarding nothing of its own (it orders the
/// station's flags and queues, which live in C).
pub type PsLock = SpinLockBh<()>;

/// The shadow `ps_lock` of a station (`struct sta_info`).
pub static PS_LOCK: ShadowKey<PsLock> = ShadowKey::new(0x8021_1053);

fn new_ps_lock() -> impl PinInit<PsLock, Error> {
    SpinLockBh::new((), &PS_LOCK)
}

/// The station's `ps_lock`, attached now if it has none yet (atomically: TX runs with bottom
/// halves disabled, wakeup in softirq context). `None` only if that allocation fails: the
/// caller then goes on without the lock, as the unpatched code does, never worse than it.
fn ps_lock<'r>(sta: &Sta, rcu: &'r RcuGuard) -> Option<&'r PsLock> {
    PS_LOCK
        .get_or_alloc(sta, new_ps_lock(), GFP_ATOMIC, rcu)
        .ok()
}

klp::replacement! {
    /// `ieee80211_tx_h_unicast_ps_buf()` with the fix: buffer a frame only under `ps_lock`,
    /// after re-checking that the station still sleeps.
    // SAFETY: `static ieee80211_tx_result ieee80211_tx_h_unicast_ps_buf(struct
    // ieee80211_tx_data *tx)`, net/mac80211/tx.c (static: bindgen cannot check it); its only
    // caller, `ieee80211_tx_h_ps_buf()`, passes the valid `tx` of a frame with at least a
    // header, under RCU with bottom halves disabled.
    unsafe fn tx_h_unicast_ps_buf(tx: Tx<'_>) -> TxResult = "ieee80211_tx_h_unicast_ps_buf" {
        let Some(sta) = tx.sta() else {
            return TX_CONTINUE;
        };
        if sta.ps_buffering() && !tx.no_ps_buffer() {
            if tx.mark_unbufferable_mgmt() {
                return TX_CONTINUE;
            }
            tx.purge_if_full();
            mac80211::race_delay(sta);
            let rcu = RcuGuard::new();
            // Patch: sync with ieee80211_sta_ps_deliver_wakeup(). (`spin_lock_bh`: mainline's
            // plain `spin_lock` here relies on BH being disabled, which it is; nesting is
            // harmless.)
            let guard = ps_lock(sta, &rcu).map(|lock| lock.lock());
            // Patch: the station woke up meanwhile and all frames on ps_tx_buf went to the
            // pending queue: no reordering can happen, transmit the frame now.
            if guard.is_some() && !sta.ps_buffering() {
                return TX_CONTINUE;
            }
            tx.buffer(sta);
            drop(guard);
            drop(rcu);
            sta.arm_cleanup_timer();
            // We queued up some frames, so the TIM bit might need to be set.
            sta.recalc_tim();
            return TX_QUEUED;
        }
        // (A sleeping station that polls or is in a service period: the frame goes out; the
        // C code only prints a debug message, compiled out in this kernel.)
        TX_CONTINUE
    }
}

klp::replacement! {
    /// `ieee80211_sta_ps_deliver_wakeup()` with the fix: splice the buffers and clear the flags
    /// under `ps_lock`.
    // SAFETY: `void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)`, sta_info.h: called
    // with a valid station, from the RX path (softirq) or the driver's wakeup work.
    unsafe fn sta_ps_deliver_wakeup(sta: &Sta) =
        "ieee80211_sta_ps_deliver_wakeup",
        prototype = mac80211::bindings::ieee80211_sta_ps_deliver_wakeup
    {
        let Some(ps): Option<PsData<'_>> = sta.ap_ps() else {
            return;
        };
        sta.clear(StaFlag::Sp);
        sta.clear_buffered_tids();
        sta.notify_awake();
        sta.wake_txqs();

        let rcu = RcuGuard::new();
        // Patch: sync with ieee80211_tx_h_unicast_ps_buf().
        let guard = ps_lock(sta, &rcu).map(|lock| lock.lock());
        // Send all buffered frames to the station.
        let (_filtered, buffered) = sta.deliver_buffered();
        // Now we're no longer in the deliver code.
        sta.clear(StaFlag::PsDeliver);
        // The station might have polled and then woken up before we responded, so clear these
        // flags now to avoid them sticking around.
        sta.clear(StaFlag::PsPoll);
        sta.clear(StaFlag::Uapsd);
        drop(guard);
        drop(rcu);

        ps.dec_sleeping();
        sta.uncount_buffered(buffered);
        sta.recalc_tim();
        sta.check_fast_xmit();
    }
}

/// Frees every `ps_lock` once the patch is disabled (not when a cumulative patch replaces it:
/// then the replacement takes the variables over).
struct FreeLocks;

impl klp::Callbacks for FreeLocks {
    fn post_unpatch(_obj: &PatchedObject) {
        let _ = PS_LOCK.free_all();
    }
}

/// The livepatch module: keeps the `ps_lock` id registered while it is loaded.
struct Mac80211PsLock {
    _ps_lock: Registration<PsLock>,
}

impl Livepatch for Mac80211PsLock {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("mac80211"),
        &[tx_h_unicast_ps_buf, sta_ps_deliver_wakeup],
    )
    .callbacks::<FreeLocks>()];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Mac80211PsLock {
            _ps_lock: PS_LOCK.register()?,
        })
    }
}

klp::livepatch! {
    type: Mac80211PsLock,
    name: "rust_mac80211_ps_lock",
    author: "rust-klp-shadow developers",
    description: "mac80211 ps_lock fix on the real mac80211, the lock as a shadow variable",
    license: "GPL",
}
