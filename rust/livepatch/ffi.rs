// SPDX-License-Identifier: GPL-2.0

//! The C edge: types that may appear in the signature of a replacement function, and GFP flags.
//!
//! C header: [`include/linux/gfp_types.h`](srctree/include/linux/gfp_types.h)

use kernel::{alloc::Flags, bindings, types::Opaque};

/// A type that may stand for a C type in the signature of a replacement function.
///
/// [`replacement!`](crate::klp::replacement) with `prototype = <path>` compares the
/// signature it is given, mapped through [`CType::Raw`], with the type of the C function at
/// `<path>` (typically in [`kernel::bindings`]): a mismatch does not compile.
///
/// # Safety
///
/// `Self` must be passed and returned exactly like `Self::Raw` by the C calling convention (same
/// size, alignment and register class), and every value the C side may pass as `Self::Raw`
/// where `Self` is used must be a valid `Self` (e.g. a non-NULL pointer for a reference).
///
/// # Examples
///
/// ```
/// use kernel::{bindings, types::Opaque};
///
/// // `&Opaque<bindings::file>` is passed as the C `struct file *`.
/// let _: fn(<&Opaque<bindings::file> as klp::ffi::CType>::Raw) = |_: *mut bindings::file| {};
/// ```
pub unsafe trait CType {
    /// The C type, as bindgen spells it.
    type Raw;
}

macro_rules! identity_ctype {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: The type is its own C type.
            unsafe impl CType for $t {
                type Raw = $t;
            }
        )*
    };
}

identity_ctype!(i8, u8, i16, u16, i32, u32, i64, u64, isize, usize, bool, ());

// SAFETY: A raw pointer is its own C type.
unsafe impl<T> CType for *mut T {
    type Raw = *mut T;
}

// SAFETY: A raw pointer is its own C type.
unsafe impl<T> CType for *const T {
    type Raw = *const T;
}

// SAFETY: `Opaque<T>` is `repr(transparent)` over `T`, so a reference to it is passed like a
// `*mut T`; the implementation's contract (a replacement's signature) promises the C side never
// passes NULL where the reference is used. `Opaque` allows the C side to change `T` meanwhile.
unsafe impl<'a, T> CType for &'a Opaque<T> {
    type Raw = *mut T;
}

// SAFETY: `SeqFile` is `repr(transparent)` over `Opaque<bindings::seq_file>`, see above.
unsafe impl<'a> CType for &'a crate::klp::seq_file::SeqFile {
    type Raw = *mut bindings::seq_file;
}

// `Flags` is `struct Flags(u32)` without a public constructor or accessor in this kernel. It is
// converted to and from `gfp_t` by transmute, which only compiles for types of the same size;
// the assertions below check the alignment and the value of known flags at compile time.
const _: () = {
    assert!(core::mem::align_of::<Flags>() == core::mem::align_of::<bindings::gfp_t>());
    assert!(gfp_raw(kernel::alloc::flags::GFP_KERNEL) == bindings::GFP_KERNEL);
    assert!(gfp_raw(kernel::alloc::flags::GFP_ATOMIC) == bindings::GFP_ATOMIC);
    assert!(gfp_raw(kernel::alloc::flags::__GFP_ZERO) == bindings::__GFP_ZERO);
};

/// Converts the `gfp_t` a C caller passed (e.g. to a replaced allocation function) to [`Flags`].
///
/// # Examples
///
/// ```
/// use kernel::{bindings, prelude::*};
///
/// assert!(klp::ffi::gfp_flags(bindings::GFP_KERNEL) == GFP_KERNEL);
/// ```
pub fn gfp_flags(raw: bindings::gfp_t) -> Flags {
    // SAFETY: `Flags` has the representation of `gfp_t` (checked at compile time above), and
    // every bit pattern is a valid set of flags.
    unsafe { core::mem::transmute::<bindings::gfp_t, Flags>(raw) }
}

/// Returns the raw `gfp_t` of `flags`, to pass to C.
pub(crate) const fn gfp_raw(flags: Flags) -> bindings::gfp_t {
    // SAFETY: `Flags` has the representation of `gfp_t` (checked at compile time above).
    unsafe { core::mem::transmute::<Flags, bindings::gfp_t>(flags) }
}

/// Whether an allocation with `flags` may sleep (it may enter direct reclaim).
pub(crate) fn gfp_may_sleep(flags: Flags) -> bool {
    gfp_raw(flags) & (1 << bindings::___GFP_DIRECT_RECLAIM_BIT) != 0
}

/// Whether the caller may sleep: the check the kernel's `might_sleep()` makes (not in hardirq,
/// softirq or NMI context, with preemption and interrupts enabled, outside `rcu_read_lock()`),
/// made by the table's `rust_klp_may_sleep()`.
///
/// The API's one may-sleep check: every operation that may sleep refuses to run where this is
/// false, with an error and a `pr_err`, instead of sleeping in atomic context. (A kernel without
/// `CONFIG_PREEMPT_COUNT` cannot tell a spinlock or, without `CONFIG_PREEMPT_RCU`, an RCU
/// read-side critical section from process context; the test kernel has both.)
#[inline]
pub(crate) fn may_sleep() -> bool {
    // SAFETY: No precondition: it reads the current context.
    unsafe { crate::klp::bindings::rust_klp_may_sleep() }
}

/// Refuses, with `EINVAL` and a `pr_err` naming `what` and the caller's source location, an
/// operation that may sleep where the caller may not: inside an [`RcuGuard`] the operation
/// borrows (`in_rcu_guard`), or wherever [`may_sleep`] says so. Where the kernel's C code would
/// call `might_sleep()`, the API calls this, and does not sleep when it fails.
///
/// [`RcuGuard`]: crate::klp::RcuGuard
#[inline]
#[track_caller]
pub(crate) fn might_sleep(what: &str, in_rcu_guard: bool) -> kernel::error::Result {
    if !in_rcu_guard && may_sleep() {
        return Ok(());
    }
    let at = core::panic::Location::caller();
    kernel::pr_err!(
        "{} may sleep: refused in atomic context{} ({}:{})\n",
        what,
        if in_rcu_guard {
            " (inside an RcuGuard)"
        } else {
            ""
        },
        at.file(),
        at.line()
    );
    Err(kernel::error::code::EINVAL)
}

/// An address printed as the kernel's `%p` prints it: hashed, so that logs do not reveal kernel
/// addresses (`{:p}` would print the raw address), and the same for the same address throughout
/// a boot, so that log lines can be matched with those of C code.
///
/// # Examples
///
/// ```
/// let x = 5u32;
/// pr_info!("x @ {}\n", klp::ffi::HashedPtr::new(&x));
/// ```
#[derive(Clone, Copy)]
pub struct HashedPtr(*const core::ffi::c_void);

// SAFETY: The pointer is an address to print, never dereferenced: any thread may hold it.
unsafe impl Send for HashedPtr {}
// SAFETY: As above: there is nothing to access through it.
unsafe impl Sync for HashedPtr {}

// SAFETY: A `HashedPtr` holds an address it never dereferences, so it does not matter whether
// that address is in a module that went away: it is only printed, hashed.
unsafe impl crate::klp::data::ShadowData for HashedPtr {
    const LAYOUT: u64 = crate::klp::data::layout::named("klp::HashedPtr");
}

impl HashedPtr {
    /// The address of `p` (see [`Parent`](crate::klp::shadow::Parent)), for printing.
    pub fn new(p: impl crate::klp::shadow::Parent) -> Self {
        HashedPtr(p.shadow_addr())
    }
}

impl core::fmt::Display for HashedPtr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // `%p` prints 16 hex digits on 64-bit, or "(____ptrval____)" before the hash key is ready.
        let mut buf = [0u8; 24];
        // SAFETY: `buf` is writable for its length, which is passed; the format is a C string
        // whose one conversion, `%p`, takes the pointer passed after it.
        let len = unsafe {
            bindings::snprintf(
                buf.as_mut_ptr(),
                buf.len(),
                kernel::c_str!("%p").as_char_ptr(),
                self.0,
            )
        };
        let len = usize::try_from(len).unwrap_or(0).min(buf.len() - 1);
        f.write_str(core::str::from_utf8(&buf[..len]).map_err(|_| core::fmt::Error)?)
    }
}
