// SPDX-License-Identifier: GPL-2.0

//! Non-exported symbols of the patched objects: declared here, resolved by `klp` at load.
//!
//! C header: [`include/uapi/linux/elf.h`](srctree/include/uapi/linux/elf.h) (`SHN_LIVEPATCH`,
//! `SHF_RELA_LIVEPATCH`); format: `Documentation/livepatch/module-elf-format.rst`.
//!
//! A fix often calls a static function of the object it patches, or reads its static data:
//! symbols the module loader cannot resolve. C livepatches reach them through livepatch
//! relocations, which `klp` writes when the object is there. [`extern_symbols!`] declares such
//! symbols for a Rust livepatch, and `scripts/klp-convert` (run on every module by
//! `make modules`) writes the livepatch relocations into the final `.ko`; see
//! `Documentation/livepatch/rust-klp-relocations.rst`.

/// Whether `name` can be the object of a livepatch symbol: `vmlinux` or a module name (the
/// loader's, with `_` for `-`), as `klp_resolve_symbols()` reads it (`%55[^.]`), and as
/// `klp-convert` and the assembler take it.
#[doc(hidden)]
pub const fn is_object_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 55 {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Declares functions and statics of another object (`vmlinux` or a module) that are not
/// exported to modules, such as the static functions of the object a livepatch patches.
///
/// ```text
/// extern_symbols! {
///     object = "vmlinux";                      // or a module name: "sta_model"
///     $(#[attr])* $vis fn $name($($arg: $type),*) $(-> $ret)?
///         $(, sympos = N)? $(, prototype = path::to::c_function)?;
///     $(#[attr])* $vis static $name: $type $(, sympos = N)?;
///     ...
/// }
/// ```
///
/// Each item becomes an ordinary `unsafe extern "C"` item, named `$name` in Rust and linked to
/// the livepatch symbol `.klp.sym.<object>.$name,N` (`N` is 0 unless given), which the module
/// loader does not resolve. `scripts/klp-convert`, run on the final `.ko` by `make modules`,
/// turns every reference to it into a livepatch relocation that `klp` writes with the address of
/// `$name` in the object when the object is loaded, or refuses the module at build time (the
/// symbol is not in the object, is ambiguous, or is referenced in a way `klp` cannot write).
///
/// `sympos = N` picks the `N`-th symbol of that name in the object, as `klp` counts (kallsyms
/// order), when the name is not unique; `klp-convert` lists the candidates.
///
/// With `prototype = path`, the signature (each type mapped to its C type by
/// [`CType`](super::ffi::CType)) must equal the type of the C function at `path`, or the module
/// does not compile; as for [`replacement!`](crate::klp::replacement), only what bindgen saw can
/// be checked, which excludes most static functions.
///
/// Calling such a function, or reading such a static, is `unsafe` like any FFI: wrap it in a safe
/// function whose safety comment cites the C prototype. The symbol lives in the object:
/// the object must be listed in the livepatch's [`Livepatch::OBJECTS`](crate::klp::Livepatch)
/// (`klp` writes a module's relocations only for the objects of the patch; the livepatch's init
/// refuses, with `EINVAL` and a `pr_err`, relocations for an object it does not list), and use
/// it only while the object is loaded, from code that only runs then (e.g. a replacement of one
/// of its functions).
///
/// A module using this macro must be converted: each declared symbol also carries a guard
/// relocation that the module loader refuses (`Unknown rela relocation: 32`) and `klp-convert`
/// removes, so an unconverted module fails to load instead of calling address 0.
///
/// # Examples
///
/// Not compiled here (the doc examples of this API build into a module that is no livepatch,
/// which `klp-convert` refuses): `samples/klp_relocs/` is the compiled example.
///
/// ```ignore
/// use kernel::ffi::{c_int, c_void};
/// use klp::SeqFile;
///
/// klp::extern_symbols! {
///     object = "vmlinux";
///
///     /// `static int version_proc_show(struct seq_file *m, void *v)`, fs/proc/version.c.
///     fn version_proc_show(m: &SeqFile, v: *mut c_void) -> c_int;
/// }
///
/// klp::replacement! {
///     /// `/proc/cmdline` shows the kernel version instead.
///     // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`; `m` is never NULL.
///     unsafe fn cmdline_shows_version(m: &SeqFile, v: *mut c_void) -> c_int =
///         "cmdline_proc_show"
///     {
///         // SAFETY: `version_proc_show()` takes the `seq_file` and `v` of a procfs show
///         // callback, which `cmdline_proc_show()` is; vmlinux is always loaded.
///         unsafe { version_proc_show(m, v) }
///     }
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __klp_extern_symbols {
    (object = $obj:literal; $($items:tt)*) => {
        const _: () = ::core::assert!(
            $crate::klp::relocs::is_object_name($obj),
            "object must be \"vmlinux\" or a module name"
        );
        $crate::__klp_extern_symbols!(@items $obj; $($items)*);
    };

    (@items $obj:literal;) => {};
    (@items $obj:literal;
        $(#[$attr:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)?
            $(, sympos = $pos:literal)? $(, prototype = $proto:path)?;
        $($rest:tt)*
    ) => {
        // `[$pos 0]`: the given position, else 0 (the first literal is taken).
        $crate::__klp_extern_symbols!(@fn $obj, [$($pos)? 0],
            $(#[$attr])* $vis fn $name($($arg: $ty),*) $(-> $ret)?);
        $crate::__klp_extern_symbols!(@proto [$($proto)?] fn($($ty),*) $(-> $ret)?);
        $crate::__klp_extern_symbols!(@items $obj; $($rest)*);
    };
    (@items $obj:literal;
        $(#[$attr:meta])*
        $vis:vis static $name:ident : $ty:ty $(, sympos = $pos:literal)?;
        $($rest:tt)*
    ) => {
        $crate::__klp_extern_symbols!(@static $obj, [$($pos)? 0],
            $(#[$attr])* $vis static $name: $ty);
        $crate::__klp_extern_symbols!(@items $obj; $($rest)*);
    };

    // The signature, in C types, must be the prototype bindgen saw.
    (@proto [] $($signature:tt)*) => {};
    (@proto [$proto:path] fn($($ty:ty),*) $(-> $ret:ty)?) => {
        const _: () = {
            let _: unsafe extern "C" fn(
                $(<$ty as $crate::klp::ffi::CType>::Raw),*
            ) $(-> <$ret as $crate::klp::ffi::CType>::Raw)? = $proto;
        };
    };

    (@fn $obj:literal, [$pos:literal $($default:literal)?],
        $(#[$attr:meta])* $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)?
    ) => {
        // As bindgen's own blocks: the kernel's C types often hold fields Rust deems not FFI-safe
        // (zero-sized structs); the signature is the author's claim, or checked by `prototype`.
        #[allow(improper_ctypes)]
        unsafe extern "C" {
            $(#[$attr])*
            #[link_name = ::core::concat!(
                ".klp.sym.", $obj, ".", ::core::stringify!($name), ",", $pos
            )]
            $vis fn $name($($arg: $ty),*) $(-> $ret)?;
        }
        $crate::__klp_extern_symbols!(@asm $obj, $pos, $name);
    };
    (@static $obj:literal, [$pos:literal $($default:literal)?],
        $(#[$attr:meta])* $vis:vis static $name:ident : $ty:ty
    ) => {
        // As bindgen's own blocks: the kernel's C types often hold fields Rust deems not FFI-safe
        // (zero-sized structs); the signature is the author's claim, or checked by `prototype`.
        #[allow(improper_ctypes)]
        unsafe extern "C" {
            $(#[$attr])*
            #[link_name = ::core::concat!(
                ".klp.sym.", $obj, ".", ::core::stringify!($name), ",", $pos
            )]
            $vis static $name: $ty;
        }
        $crate::__klp_extern_symbols!(@asm $obj, $pos, $name);
    };

    // The symbol is weak: modpost ignores weak undefined symbols, so the module needs no
    // KBUILD_MODPOST_WARN. The guard, in an allocated section (the loader relocates only those),
    // has a type x86-64's `apply_relocate_add()` refuses; klp-convert removes it.
    (@asm $obj:literal, $pos:literal, $name:ident) => {
        ::core::arch::global_asm!(::core::concat!(
            ".weak \".klp.sym.", $obj, ".", ::core::stringify!($name), ",", $pos, "\"\n",
            ".pushsection .klp_convert_guard, \"a\"\n",
            ".reloc ., R_X86_64_SIZE32, \".klp.sym.", $obj, ".", ::core::stringify!($name), ",",
            $pos, "\"\n",
            ".long 0\n",
            ".popsection\n",
        ));
    };
}
#[doc(inline)]
pub use crate::__klp_extern_symbols as extern_symbols;
