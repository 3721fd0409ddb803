// SPDX-License-Identifier: GPL-2.0

//! rust_ps_lock_fix3 - the mac80211 `ps_lock` fix, use case 3: a shadow variable as a flag.
//!
//! Purpose
//! -------
//!
//! `Documentation/livepatch/shadow-vars.rst`: "Shadow variables can also be used as a flag
//! indicating that a data structure was allocated by new, livepatched code. In this case, it
//! doesn't matter what data value the shadow variable holds, its existence suggests how to
//! handle the parent object."
//!
//! The patched `sta_info_alloc()` marks each station it allocates with [`PATCHED`], a shadow
//! variable of size 0 (`()`), and gives it a `ps_lock`. TX and wakeup then know by the flag
//! alone that the lock exists and only look it up; the other stations, allocated before the
//! patch, are handled accordingly: they get a lock on first use, with an atomic allocation.
//!
//! Usage
//! -----
//!
//! ```text
//! # insmod sta_model.ko
//! # insmod rust_ps_lock_fix3.ko
//! # grep -E '0x5053|0x5054' /sys/kernel/debug/rust_klp_shadow/ids
//! id 0x5053 count 16 ...      # a ps_lock per station (nr_stations=16)
//! id 0x5054 count N ...       # N: the stations allocated since the patch
//! # echo 0 > /sys/kernel/livepatch/rust_ps_lock_fix3/enabled; rmmod rust_ps_lock_fix3
//! ```

use kernel::{bindings::gfp_t, c_str, prelude::*};

#[path = "../../rust/livepatch/mod.rs"]
pub mod klp;
pub mod ps_lock;
pub mod sta;

use klp::{shadow, shadow::Registration, Livepatch, Object, PatchedObject, ShadowKey};
use ps_lock::{PsLock, PS_LOCK};
use sta::{Frame, OwnedSta, RawSta, Sta};

/// The flag: "this station was allocated by the patched `sta_info_alloc()`". No data.
static PATCHED: ShadowKey<()> = ShadowKey::new(0x5054);

/// The station's `ps_lock`: looked up if the flag says it exists, else attached now.
fn find_lock<'r>(sta: &Sta, rcu: &'r klp::RcuGuard) -> Option<&'r PsLock> {
    if PATCHED.contains(sta) {
        PS_LOCK.get(sta, rcu)
    } else {
        // Patch: a station from before the patch: attach its lock on first use.
        PS_LOCK
            .get_or_alloc(sta, ps_lock::new_ps_lock(), GFP_ATOMIC, rcu)
            .ok()
    }
}

klp::replacement! {
    /// `sta_info_alloc()`: Patch: flag the station as ours and give it its `ps_lock`.
    // SAFETY: `struct sta_info *sta_info_alloc(gfp_t gfp)`, sta_model.h.
    unsafe fn fix3_sta_info_alloc(gfp: gfp_t) -> *mut RawSta =
        "sta_info_alloc", prototype = sta::bindings::sta_info_alloc
    {
        let Some(sta) = ps_lock::sta_alloc_with_lock(gfp) else {
            return core::ptr::null_mut();
        };
        // Patch: the flag says "allocated by patched code, has its ps_lock". (A flag at this
        // address is a leftover of a station freed by unpatched code while the patch was being
        // disabled, see `ps_lock::forget_leftover`.)
        ps_lock::forget_leftover(&PATCHED, sta.sta());
        if let Err(e) = PATCHED.alloc(sta.sta(), shadow::value(()), klp::ffi::gfp_flags(gfp)) {
            pr_err!("cannot flag a new station: {:?}\n", e);
            ps_lock::sta_free_with_lock(sta);
            return core::ptr::null_mut();
        }
        sta.into_raw()
    }
}

klp::replacement! {
    /// `sta_info_free()`: the flag and the lock go with the station.
    // SAFETY: `void sta_info_free(struct sta_info *sta)`, sta_model.h: `sta` is unreachable and
    // handed over to be freed.
    unsafe fn fix3_sta_info_free(sta: OwnedSta) =
        "sta_info_free", prototype = sta::bindings::sta_info_free
    {
        let _ = PATCHED.free(sta.sta());
        ps_lock::sta_free_with_lock(sta);
    }
}

klp::replacement! {
    /// `ieee80211_tx_h_unicast_ps_buf()`, with the fix of `ps_lock::tx`.
    // SAFETY: `void ieee80211_tx_h_unicast_ps_buf(struct sta_info *sta, struct sta_frame
    // *frame)`, sta_model.h: `sta` is valid during the call, `frame` is handed over.
    unsafe fn fix3_tx_h_unicast_ps_buf(sta: &Sta, frame: Frame) =
        "ieee80211_tx_h_unicast_ps_buf", prototype = sta::bindings::ieee80211_tx_h_unicast_ps_buf
    {
        ps_lock::tx(sta, frame, |rcu| find_lock(sta, rcu));
    }
}

klp::replacement! {
    /// `ieee80211_sta_ps_deliver_wakeup()`, with the fix of `ps_lock::deliver_wakeup`.
    // SAFETY: `void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)`, sta_model.h.
    unsafe fn fix3_sta_ps_deliver_wakeup(sta: &Sta) =
        "ieee80211_sta_ps_deliver_wakeup",
        prototype = sta::bindings::ieee80211_sta_ps_deliver_wakeup
    {
        ps_lock::deliver_wakeup(sta, |rcu| find_lock(sta, rcu));
    }
}

/// Frees the locks and the flags once the patch is disabled.
struct FreeAll;

impl klp::Callbacks for FreeAll {
    fn post_unpatch(obj: &PatchedObject) {
        let _ = PATCHED.free_all();
        <ps_lock::FreeLocks as klp::Callbacks>::post_unpatch(obj);
    }
}

/// The livepatch module: keeps both ids registered while it is loaded.
struct PsLockFix3 {
    _ps_lock: Registration<PsLock>,
    _patched: Registration<()>,
}

impl Livepatch for PsLockFix3 {
    const OBJECTS: &'static [Object] = &[Object::module(
        c_str!("sta_model"),
        &[
            fix3_sta_info_alloc,
            fix3_sta_info_free,
            fix3_tx_h_unicast_ps_buf,
            fix3_sta_ps_deliver_wakeup,
        ],
    )
    .callbacks::<FreeAll>()];

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(PsLockFix3 {
            _ps_lock: ps_lock::register()?,
            _patched: PATCHED.register()?,
        })
    }
}

klp::livepatch! {
    type: PsLockFix3,
    name: "rust_ps_lock_fix3",
    author: "rust-klp-shadow developers",
    description: "mac80211 ps_lock fix, a shadow flag marks patched stations (use case 3)",
    license: "GPL",
}
