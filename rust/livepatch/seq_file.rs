// SPDX-License-Identifier: GPL-2.0

//! The `seq_file` a `show()` function writes to, for replacements of `/proc` and debugfs files.
//!
//! C header: [`include/linux/seq_file.h`](srctree/include/linux/seq_file.h)

use core::fmt;
use kernel::{bindings, c_str, types::Opaque};

/// A `struct seq_file` that a C `show()` function received.
///
/// Take it by reference in the signature of a replacement function, where C has
/// `struct seq_file *` (see [`replacement!`](crate::klp::replacement)); write to it with
/// [`seq_print!`](crate::klp::seq_print).
///
/// # Invariants
///
/// The wrapped `seq_file` is valid and may be written to for the life of the reference: the C
/// caller of `show()` holds its `lock` during the call.
///
/// # Examples
///
/// ```
/// use kernel::ffi::{c_int, c_void};
/// use klp::SeqFile;
///
/// klp::replacement! {
///     /// `/proc/version`, patched.
///     // SAFETY: `static int version_proc_show(struct seq_file *m, void *v)`; `m` is not NULL.
///     unsafe fn version_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int = "version_proc_show" {
///         klp::seq_print!(m, "Linux, patched {}\n", 1);
///         0
///     }
/// }
/// ```
#[repr(transparent)]
pub struct SeqFile(Opaque<bindings::seq_file>);

impl SeqFile {
    /// Appends formatted text; used by [`seq_print!`](crate::klp::seq_print).
    pub fn call_printf(&self, args: fmt::Arguments<'_>) {
        // SAFETY: By the type invariant, the seq_file is valid and ours to write to; `%pA` prints
        // the `fmt::Arguments` its argument points to, which lives across the call.
        unsafe {
            bindings::seq_printf(
                self.0.get(),
                c_str!("%pA").as_char_ptr(),
                &args as *const fmt::Arguments<'_> as *const core::ffi::c_void,
            )
        };
    }
}

/// Writes formatted text to a [`SeqFile`], like `seq_printf()` with Rust formatting.
///
/// # Examples
///
/// ```
/// fn show(m: &klp::SeqFile) {
///     klp::seq_print!(m, "{} {}\n", "answer", 42);
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __klp_seq_print {
    ($m:expr, $($arg:tt)+) => {
        $crate::klp::seq_file::SeqFile::call_printf($m, ::core::format_args!($($arg)+))
    };
}
#[doc(inline)]
pub use crate::__klp_seq_print as seq_print;
