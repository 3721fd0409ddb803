// SPDX-License-Identifier: GPL-2.0

//! Shadow data: the types a shadow variable may hold, which every module that uses its id shares.
//!
//! C header: [`rust/shadow/rust_klp_shadow.h`](../../shadow/rust_klp_shadow.h) (`struct
//! rust_klp_shadow_type`, whose `layout` is [`ShadowData::LAYOUT`]).
//!
//! A shadow variable outlives the call that made it, and may outlive the module that made it: a
//! cumulative livepatch takes the variables of the one it replaces over, and that one is then
//! unloaded. Its data must therefore not point into the module that made it, and every module
//! that reads it must agree on its type. Both are what [`ShadowData`] promises; plain data gets it
//! safely from [`shadow_data!`](crate::klp::shadow_data).

use core::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicU16, AtomicU32,
    AtomicU64, AtomicU8, AtomicUsize,
};
use kernel::alloc::{KBox, KVec};

/// A type whose values may be the data of shadow variables: shared by every module that uses the
/// id, and dropped by whichever module frees them, possibly after the module that made them
/// unloaded.
///
/// Implement it with [`shadow_data!`](crate::klp::shadow_data), which checks that every field is
/// `ShadowData` and computes [`LAYOUT`](Self::LAYOUT). It is implemented here for `()`, `bool`,
/// the integers, the atomics, arrays, [`Option`], [`KBox`] and [`KVec`] of shadow data,
/// [`SpinLockBh`](crate::klp::SpinLockBh) and [`HashedPtr`](crate::klp::ffi::HashedPtr). It is
/// not implemented for references, raw and function pointers, trait objects, the kernel's own
/// locks (their lockdep class is a static of the module that initialised them) or a
/// [`Registration`](crate::klp::shadow::Registration).
///
/// A value is dropped in an RCU callback (softirq) or in process context: its [`Drop`], like any
/// code that runs in softirq, must not sleep (debug kernels report it,
/// `CONFIG_DEBUG_ATOMIC_SLEEP`).
///
/// # Safety
///
/// - A value holds no pointer into the memory of the module that made it: its code, its statics,
///   its read-only data. Not directly, and not through anything it owns: no `&'static` data of a
///   module (a string literal), no function pointer, no trait object (its vtable), no lock whose
///   lockdep class or name belongs to a module. Heap memory ([`KBox`], [`KVec`]) does not go
///   with its module, and the lock classes of the table (see
///   [`ShadowKey::lock_class`](crate::klp::ShadowKey::lock_class)) outlive every module that
///   uses the table.
/// - Two types with equal size, alignment and [`LAYOUT`](Self::LAYOUT) are the same type: the
///   same fields of the same types at the same offsets, with the same meaning and invariants,
///   in whichever module each is compiled. A changed type gets another `LAYOUT`.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::AtomicU32;
///
/// klp::shadow_data! {
///     /// Per-object statistics a livepatch keeps.
///     pub struct Stats {
///         /// Calls seen.
///         pub calls: AtomicU32,
///         /// The last error.
///         pub last_error: AtomicU32,
///     }
/// }
///
/// static STATS: klp::ShadowKey<Stats> = klp::ShadowKey::new(0x4000);
/// ```
pub unsafe trait ShadowData: Send + Sync + Sized + 'static {
    /// The identity of the type, compared when a module registers an id for it: see the safety
    /// section of the trait. [`shadow_data!`](crate::klp::shadow_data) computes it from the
    /// type's name and its fields' names, offsets and layouts, with the functions of [`layout`].
    const LAYOUT: u64;
}

/// Const functions that compute [`ShadowData::LAYOUT`] values: 64-bit FNV-1a hashes.
pub mod layout {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// Hashes `bytes` into `h`.
    const fn bytes(mut h: u64, bytes: &[u8]) -> u64 {
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(PRIME);
            i += 1;
        }
        h
    }

    /// The layout value of a type identified by `name` alone.
    pub const fn named(name: &str) -> u64 {
        bytes(OFFSET, name.as_bytes())
    }

    /// Mixes `x` into the layout value `h`.
    pub const fn mix(h: u64, x: u64) -> u64 {
        bytes(h, &x.to_le_bytes())
    }

    /// Mixes `name` into the layout value `h`.
    pub const fn mix_name(h: u64, name: &str) -> u64 {
        // The length first, so that two names cannot run into each other.
        bytes(mix(h, name.len() as u64), name.as_bytes())
    }
}

/// Plain data: holds no pointer, identified by its name.
macro_rules! plain_shadow_data {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: A value of this type is a number (or nothing): it points nowhere. Its name
            // is unique among these impls, and it is the type itself in every module.
            unsafe impl ShadowData for $t {
                const LAYOUT: u64 = layout::named(stringify!($t));
            }
        )*
    };
}

plain_shadow_data!(
    (),
    bool,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    AtomicBool,
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicIsize,
);

// SAFETY: An array holds its elements and nothing else; element type and length are in `LAYOUT`.
unsafe impl<T: ShadowData, const N: usize> ShadowData for [T; N] {
    const LAYOUT: u64 = layout::mix(layout::mix(layout::named("[T; N]"), T::LAYOUT), N as u64);
}

// SAFETY: An `Option<T>` holds a `T` or nothing; `T` and the size (niche or tag) are in `LAYOUT`.
unsafe impl<T: ShadowData> ShadowData for Option<T> {
    const LAYOUT: u64 = layout::mix(
        layout::mix(layout::named("Option"), T::LAYOUT),
        core::mem::size_of::<Self>() as u64,
    );
}

// SAFETY: A `KBox<T>` owns a heap `T` (kmalloc memory, which no module owns); dropping it drops
// the `T` and `kfree()`s it, which any context may do.
unsafe impl<T: ShadowData> ShadowData for KBox<T> {
    const LAYOUT: u64 = layout::mix(layout::named("KBox"), T::LAYOUT);
}

// SAFETY: As for `KBox`: heap elements, freed with `kfree()`.
unsafe impl<T: ShadowData> ShadowData for KVec<T> {
    const LAYOUT: u64 = layout::mix(layout::named("KVec"), T::LAYOUT);
}

/// Declares a struct of shadow data, implementing [`ShadowData`] for it without `unsafe`.
///
/// Every field must be [`ShadowData`] itself, or the declaration does not compile; the struct's
/// [`LAYOUT`](ShadowData::LAYOUT) is computed from its name, its size, and each field's name,
/// offset and `LAYOUT`. Two modules that declare the struct the same way (typically from one
/// shared source file) can share an id; a struct that differs in any field (even of the same
/// size, as a cumulative patch may change it) gets another `LAYOUT`, and the table refuses it
/// for an id the other one holds.
///
/// Attributes pass through: `#[pin_data]` and `#[pin]` for fields that must not move (a
/// [`SpinLockBh`](crate::klp::SpinLockBh)), `#[repr(...)]`, documentation. Generic structs are
/// not supported. The struct may implement [`Drop`] (or `PinnedDrop`): that is its destructor,
/// which runs in softirq context and must not sleep.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use klp::{SpinLockBh, ShadowKey};
///
/// klp::shadow_data! {
///     /// A counter and the lock that orders its updates with the parent's.
///     #[pin_data]
///     pub struct Guarded {
///         /// Updates seen.
///         pub updates: u64,
///         /// The lock; its lockdep class is the table's, one per id.
///         #[pin]
///         pub lock: SpinLockBh<()>,
///     }
/// }
///
/// static GUARDED: ShadowKey<Guarded> = ShadowKey::new(0x4001);
///
/// fn new_guarded() -> impl PinInit<Guarded, Error> {
///     try_pin_init!(Guarded {
///         updates: 0,
///         lock <- SpinLockBh::new((), &GUARDED),
///     }? Error)
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __klp_shadow_data {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fattr:meta])*
                $fvis:vis $field:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $(
                $(#[$fattr])*
                $fvis $field: $fty,
            )*
        }

        // `LAYOUT` covers the struct's name and size and each field's name, offset and `LAYOUT`:
        // another struct has another value. Every field is `ShadowData`: `LAYOUT` below names
        // each field's, which does not compile otherwise.
        // SAFETY: A `$name` holds its fields and nothing else, and no field points into a
        // module (each is `ShadowData`), so neither does the struct; `LAYOUT` is as above.
        unsafe impl $crate::klp::data::ShadowData for $name {
            const LAYOUT: u64 = {
                use $crate::klp::data::layout::{mix, mix_name, named};
                #[allow(unused_mut)]
                let mut h = mix(named(::core::stringify!($name)), ::core::mem::size_of::<Self>() as u64);
                $(
                    h = mix_name(h, ::core::stringify!($field));
                    h = mix(h, ::core::mem::offset_of!(Self, $field) as u64);
                    h = mix(h, <$fty as $crate::klp::data::ShadowData>::LAYOUT);
                )*
                h
            };
        }
    };
}
#[doc(inline)]
pub use crate::__klp_shadow_data as shadow_data;
