// SPDX-License-Identifier: GPL-2.0

//! Safe Rust API for livepatch authors: typed shadow variables and a livepatch builder.
//!
//! C headers: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h),
//! [`rust/shadow/rust_klp_shadow.h`](../../shadow/rust_klp_shadow.h).
//!
//! Out-of-tree Rust modules cannot depend on another Rust crate, so this API is shared as source:
//! the crate root of every module that uses it includes it as a **public** module named `klp`
//! (the macros refer to `$crate::klp`, and a public module keeps the items a given module does
//! not use free of dead-code warnings), with the path relative to the crate root's file (not
//! compiled on its own: every compiled example of this documentation starts with it):
//!
//! ```ignore
//! #[path = "../../rust/livepatch/mod.rs"]
//! pub mod klp;
//! ```
//!
//! What the C API lets one get wrong, and what this API does instead:
//!
//! | Mistake in C                              | Here                                            |
//! |-------------------------------------------|-------------------------------------------------|
//! | wrong type behind the `void *` of an id   | [`ShadowKey<T>`] binds the id to `T`; the table refuses another type for the id (`EINVAL`), also from another module |
//! | shadow data that points into a module     | `T` is [`ShadowData`]: no pointer into the module that made it, locks of a class the table owns |
//! | forgotten or wrong destructor             | `T`'s [`Drop`] is the destructor, run exactly once on every removal path |
//! | use after free of shadow data             | references live no longer than an [`RcuGuard`]; frees wait for a grace period |
//! | a lock initialised twice, or not at all   | shadow data is initialised in place, once, by an [`PinInit`](kernel::init::PinInit) |
//! | missing `MODULE_INFO(livepatch, "Y")`     | [`livepatch!`] emits it with the module          |
//! | replacement and `klp_func` out of sync    | [`replacement!`] writes the signature once, optionally checked against `kernel::bindings` |
//! | module text freed while still patched     | the patch is enabled last and freed with the module, after `klp` released it |
//! | calling a static function of the target   | [`extern_symbols!`] declares it; `scripts/klp-convert` writes the livepatch relocations, or fails the build |
//!
//! # Examples
//!
//! A livepatch that fixes a missing lock with a shadow spinlock (the `ps_lock` fix of
//! `Documentation/livepatch/shadow-vars.rst`):
//!
//! ```
//! use kernel::{c_str, prelude::*};
//!
//! #[path = "../../rust/livepatch/mod.rs"]
//! pub mod klp;
//! use klp::{shadow, Livepatch, Object, RcuGuard, ShadowKey, SpinLockBh};
//!
//! /// `struct sta_info`: opaque, only its address is used.
//! #[repr(C)]
//! pub struct StaInfo {
//!     _opaque: [u8; 0],
//! }
//!
//! /// The lock the original `struct sta_info` lacks.
//! static PS_LOCK: ShadowKey<SpinLockBh<()>> = ShadowKey::new(1);
//!
//! klp::replacement! {
//!     /// `ieee80211_sta_ps_deliver_wakeup()`, now serialised by the shadow `ps_lock`.
//!     // SAFETY: `void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)`.
//!     unsafe fn deliver_wakeup(sta: *mut StaInfo) = "ieee80211_sta_ps_deliver_wakeup" {
//!         let rcu = RcuGuard::new();
//!         let lock = PS_LOCK.get_or_alloc(sta, SpinLockBh::new((), &PS_LOCK), GFP_ATOMIC, &rcu);
//!         let _guard = lock.as_ref().ok().map(|lock| lock.lock());
//!         // ... the original body ...
//!     }
//! }
//!
//! struct PsLockFix {
//!     _ps_lock: shadow::Registration<SpinLockBh<()>>,
//! }
//!
//! impl Livepatch for PsLockFix {
//!     const OBJECTS: &'static [Object] = &[Object::module(c_str!("mac80211"), &[deliver_wakeup])];
//!
//!     fn init(_module: &'static ThisModule) -> Result<Self> {
//!         Ok(PsLockFix {
//!             _ps_lock: PS_LOCK.register()?,
//!         })
//!     }
//! }
//!
//! klp::livepatch! {
//!     type: PsLockFix,
//!     name: "livepatch_ps_lock",
//!     license: "GPL",
//! }
//! ```

pub mod bindings;
pub mod data;
pub mod ffi;
pub mod patch;
pub mod rcu;
pub mod relocs;
pub mod seq_file;
pub mod shadow;
pub mod sync;

pub use data::shadow_data;
pub use data::ShadowData;
pub use patch::replacement;
pub use patch::{Callbacks, Func, Livepatch, Object, PatchedObject, State};
pub use rcu::RcuGuard;
pub use relocs::extern_symbols;
pub use seq_file::seq_print;
pub use seq_file::SeqFile;
pub use shadow::ShadowKey;
pub use sync::SpinLockBh;

// The macros name their items `$crate::klp::...`: fail early, with a clear message, when this
// file is included under another name.
const _: () = {
    #[allow(unused_imports)]
    use crate::klp as _;
};

/// Declares a livepatch module: [`module!`](kernel::prelude::module) plus the `livepatch=Y`
/// module information that marks it as a livepatch.
///
/// The module type must implement [`Livepatch`]. At load, [`Livepatch::init`] runs first, then the
/// patch described by [`Livepatch::OBJECTS`] (and [`Livepatch::REPLACE`], [`Livepatch::STATES`])
/// is built and enabled with `klp_enable_patch()`; nothing can fail after it is enabled. The
/// patch structures are freed with the module, after `klp` released them (a patched module cannot
/// be unloaded: disable the patch first, `echo 0 > /sys/kernel/livepatch/<name>/enabled`).
///
/// Takes the keys of [`module!`](kernel::prelude::module), in its order.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
///
/// #[path = "../../rust/livepatch/mod.rs"]
/// pub mod klp;
///
/// struct Nothing;
///
/// impl klp::Livepatch for Nothing {
///     const OBJECTS: &'static [klp::Object] = &[klp::Object::vmlinux(&[])];
///
///     fn init(_module: &'static ThisModule) -> Result<Self> {
///         Ok(Nothing)
///     }
/// }
///
/// klp::livepatch! {
///     type: Nothing,
///     name: "livepatch_nothing",
///     license: "GPL",
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __klp_livepatch {
    (type: $type:ident, $($rest:tt)*) => {
        #[doc(hidden)]
        type __KlpLivepatchModule = $crate::klp::patch::LivepatchModule<$type>;

        ::kernel::prelude::module! {
            type: __KlpLivepatchModule,
            $($rest)*
        }

        // `MODULE_INFO(livepatch, "Y")`: the loader sets `mod->klp` from it, and
        // `klp_enable_patch()` refuses a module without it. `used(compiler)` keeps the string in
        // the one `.modinfo` section, as `module!` does for its own strings.
        #[cfg(MODULE)]
        #[doc(hidden)]
        #[link_section = ".modinfo"]
        #[used(compiler)]
        static __KLP_MODINFO_LIVEPATCH: [u8; 12] = *b"livepatch=Y\0";
    };
}
#[doc(inline)]
pub use crate::__klp_livepatch as livepatch;
