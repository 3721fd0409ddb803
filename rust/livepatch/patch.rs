// SPDX-License-Identifier: GPL-2.0

//! Livepatches built from Rust: `klp_patch`, `klp_object` and `klp_func` without `static mut`.
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h)
//!
//! A livepatch module is a type implementing [`Livepatch`], declared with
//! [`livepatch!`](crate::klp::livepatch). Its [`Livepatch::OBJECTS`] list the patched objects
//! (`vmlinux` or modules, [`Object`]) and, for each, the replaced functions ([`Func`], made by
//! [`replacement!`](crate::klp::replacement)) and optional [`Callbacks`]. At load, the module
//! builds the NULL-terminated `klp_*` arrays from them in pinned memory it owns, sets `mod` to
//! `THIS_MODULE` and enables the patch, after [`Livepatch::init`] succeeded.
//!
//! Rust functions have no ftrace hook in this kernel: they cannot be patched, only patch. Patch C
//! functions; the replacement is a Rust `extern "C"` function.

use super::bindings;
use core::{ffi::c_void, marker::PhantomPinned, pin::Pin};
use kernel::{
    error::{to_result, Result},
    ffi::{c_int, c_uint, c_ulong},
    prelude::*,
    str::CStr,
    types::Opaque,
    ThisModule,
};

/// A replaced function: the name of the C function and its Rust replacement.
///
/// Made by [`replacement!`](crate::klp::replacement), which writes the replacement's C signature
/// once; used in the function list of an [`Object`].
///
/// # Invariants
///
/// `new_func` is the address of an `extern "C"` function with the prototype of the function
/// `old_name` (at position `old_sympos`) of the object it is listed in.
#[derive(Clone, Copy)]
pub struct Func {
    old_name: &'static CStr,
    new_func: *const c_void,
    old_sympos: c_ulong,
}

impl Func {
    /// Describes the replacement of the C function `old_name` by `new_func`.
    ///
    /// `old_sympos` picks among functions of the same name in the object: 0 when the name is
    /// unique, otherwise its position (from 1) in kallsyms.
    ///
    /// # Safety
    ///
    /// `new_func` must be the address of an `extern "C"` function, living as long as the module,
    /// that the C callers of `old_name` can call instead of it: same prototype (same argument
    /// and return types, up to [`CType`](super::ffi::CType)), and its Rust argument types must
    /// hold for every value those callers pass.
    pub const unsafe fn new(
        old_name: &'static CStr,
        new_func: *const c_void,
        old_sympos: c_ulong,
    ) -> Self {
        // INVARIANT: By the safety requirements.
        Func {
            old_name,
            new_func,
            old_sympos,
        }
    }

    /// Returns the name of the replaced C function.
    pub const fn old_name(&self) -> &'static CStr {
        self.old_name
    }
}

/// Declares the Rust replacement of a C function; its C signature is written here only.
///
/// ```text
/// replacement! {
///     $(#[attr])*
///     $vis unsafe fn $name($($arg: $type),*) $(-> $ret)? = "c_function_name"
///         $(, sympos = N)? $(, prototype = path::to::c_function)?
///     { body }
/// }
/// ```
///
/// Expands to a constant `$name` of type [`Func`] (list it in an [`Object`]) that holds an
/// `extern "C" fn $name` with the given signature and body. The body is ordinary safe Rust.
///
/// `unsafe` marks the one claim the compiler cannot check: that the signature is the C
/// prototype of the replaced function, and that the C callers pass valid values for the Rust
/// types (a reference where C passes a pointer, e.g. `&SeqFile` or `&Opaque<bindings::foo>`,
/// promises it is never NULL). Justify it in a comment that cites the C prototype.
///
/// With `prototype = path`, the signature (with each type mapped to its C type by
/// [`CType`](super::ffi::CType)) must equal the type of the C function at `path`, usually
/// `kernel::bindings::<name>`, or the module does not compile. Only functions declared in the
/// headers bindgen saw can be checked; static functions (like `cmdline_proc_show`) cannot.
///
/// `sympos = N` selects the N-th function of that name in the patched object (kallsyms order),
/// when the name is not unique.
///
/// # Examples
///
/// ```
/// use kernel::ffi::{c_int, c_void};
/// use klp::SeqFile;
///
/// klp::replacement! {
///     /// `/proc/cmdline` shows a fixed text.
///     // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`, fs/proc/cmdline.c;
///     // `m` is never NULL.
///     unsafe fn livepatch_cmdline_proc_show(m: &SeqFile, _v: *mut c_void) -> c_int =
///         "cmdline_proc_show"
///     {
///         klp::seq_print!(m, "this has been live patched\n");
///         0
///     }
/// }
///
/// klp::replacement! {
///     /// Checked against the declaration bindgen generated from `<linux/fs.h>`.
///     // SAFETY: `int generic_file_open(struct inode *, struct file *)`.
///     unsafe fn my_generic_file_open(
///         _inode: *mut kernel::bindings::inode,
///         _file: *mut kernel::bindings::file,
///     ) -> c_int = "generic_file_open", prototype = kernel::bindings::generic_file_open
///     {
///         0
///     }
/// }
///
/// const FUNCS: &[klp::Func] = &[livepatch_cmdline_proc_show, my_generic_file_open];
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __klp_replacement {
    (
        $(#[$attr:meta])*
        $vis:vis unsafe fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)?
            = $old:literal $(, sympos = $pos:literal)?, prototype = $proto:path
        $body:block
    ) => {
        $(#[$attr])*
        #[allow(non_upper_case_globals)]
        $vis const $name: $crate::klp::Func = {
            extern "C" fn $name($($arg: $ty),*) $(-> $ret)? $body

            // The signature, in C types, must be the prototype bindgen saw.
            const _: () = {
                let _: unsafe extern "C" fn(
                    $(<$ty as $crate::klp::ffi::CType>::Raw),*
                ) $(-> <$ret as $crate::klp::ffi::CType>::Raw)? = $proto;
            };

            // SAFETY: The caller of the macro wrote `unsafe` to assert that the signature of
            // `$name` is the C prototype of `$old` (here also checked against `$proto`); `$name`
            // is a function of this module, which outlives the patch.
            unsafe {
                $crate::klp::Func::new(
                    ::kernel::c_str!($old),
                    $name as *const ::core::ffi::c_void,
                    0 $(+ $pos)?,
                )
            }
        };
    };
    (
        $(#[$attr:meta])*
        $vis:vis unsafe fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)?
            = $old:literal $(, sympos = $pos:literal)?
        $body:block
    ) => {
        $(#[$attr])*
        #[allow(non_upper_case_globals)]
        $vis const $name: $crate::klp::Func = {
            extern "C" fn $name($($arg: $ty),*) $(-> $ret)? $body

            // SAFETY: The caller of the macro wrote `unsafe` to assert that the signature of
            // `$name` is the C prototype of `$old`; `$name` is a function of this module, which
            // outlives the patch.
            unsafe {
                $crate::klp::Func::new(
                    ::kernel::c_str!($old),
                    $name as *const ::core::ffi::c_void,
                    0 $(+ $pos)?,
                )
            }
        };
    };
}
#[doc(inline)]
pub use crate::__klp_replacement as replacement;

/// The object (`vmlinux` or a module) a callback is called for.
///
/// # Invariants
///
/// Wraps a `klp_object` that `klp` initialised; only `klp` changes it, and the callbacks it is
/// passed to run under `klp_mutex`.
#[repr(transparent)]
pub struct PatchedObject(Opaque<bindings::klp_object>);

impl PatchedObject {
    /// Creates a reference from the pointer `klp` passes to a callback.
    ///
    /// # Safety
    ///
    /// `ptr` is the `klp_object` `klp` passed to a callback, and the reference is used during
    /// that callback only.
    unsafe fn from_raw<'a>(ptr: *mut bindings::klp_object) -> &'a Self {
        // SAFETY: By the safety requirements `ptr` is valid for the returned lifetime, and
        // `PatchedObject` is `repr(transparent)` over `Opaque<klp_object>`, i.e. `klp_object`.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The name of the patched module, or `None` for `vmlinux`.
    pub fn name(&self) -> Option<&CStr> {
        // SAFETY: By the type invariant, the object is valid; `name` is set by us before the
        // patch is enabled and never changed.
        let name = unsafe { (*self.0.get()).name };
        if name.is_null() {
            None
        } else {
            // SAFETY: A non-NULL `name` comes from a `&'static CStr` (see `Patch::new`).
            Some(unsafe { CStr::from_char_ptr(name) })
        }
    }

    /// Returns the version of the system state `id` that a previously installed livepatch
    /// established (`klp_get_prev_state()`), if any; see
    /// `Documentation/livepatch/system-state.rst` and [`State`].
    pub fn prev_state_version(&self, id: c_ulong) -> Option<c_uint> {
        // SAFETY: Callbacks run under `klp_mutex` (type invariant), which protects the list of
        // patches `klp_get_prev_state()` walks.
        let state = unsafe { bindings::klp_get_prev_state(id) };
        if state.is_null() {
            None
        } else {
            // SAFETY: A non-NULL result points into the `states` array of an installed patch,
            // which stays valid under `klp_mutex`.
            Some(unsafe { (*state).version })
        }
    }
}

/// Callbacks around the (un)patching of one [`Object`]; all have empty defaults.
///
/// They run in process context under `klp_mutex` (they may sleep), in this order: `pre_patch`
/// before the object is patched (an error aborts the patching, and nothing else runs);
/// `post_patch` after the patch transition completed; `pre_unpatch` when the patch is being
/// disabled; `post_unpatch` after the unpatch transition completed. For a module object, they run
/// when the module is loaded or unloaded too. See `Documentation/livepatch/callbacks.rst`.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
///
/// struct Announce;
///
/// impl klp::Callbacks for Announce {
///     fn pre_patch(obj: &klp::PatchedObject) -> Result {
///         pr_info!("patching {:?}\n", obj.name());
///         Ok(())
///     }
///
///     fn post_unpatch(_obj: &klp::PatchedObject) {
///         pr_info!("unpatched\n");
///     }
/// }
///
/// const OBJECTS: &[klp::Object] = &[klp::Object::vmlinux(&[]).callbacks::<Announce>()];
/// ```
pub trait Callbacks {
    /// Runs before the object is patched; an error cancels the patching.
    fn pre_patch(_obj: &PatchedObject) -> Result {
        Ok(())
    }

    /// Runs after the object is patched (transition completed).
    fn post_patch(_obj: &PatchedObject) {}

    /// Runs before the object is unpatched.
    fn pre_unpatch(_obj: &PatchedObject) {}

    /// Runs after the object is unpatched (transition completed).
    fn post_unpatch(_obj: &PatchedObject) {}
}

/// # Safety
///
/// Called by `klp` with a valid object, under `klp_mutex`.
unsafe extern "C" fn pre_patch<C: Callbacks>(obj: *mut bindings::klp_object) -> c_int {
    // SAFETY: By the function's safety requirements.
    match C::pre_patch(unsafe { PatchedObject::from_raw(obj) }) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by `klp` with a valid object, under `klp_mutex`.
unsafe extern "C" fn post_patch<C: Callbacks>(obj: *mut bindings::klp_object) {
    // SAFETY: By the function's safety requirements.
    C::post_patch(unsafe { PatchedObject::from_raw(obj) })
}

/// # Safety
///
/// Called by `klp` with a valid object, under `klp_mutex`.
unsafe extern "C" fn pre_unpatch<C: Callbacks>(obj: *mut bindings::klp_object) {
    // SAFETY: By the function's safety requirements.
    C::pre_unpatch(unsafe { PatchedObject::from_raw(obj) })
}

/// # Safety
///
/// Called by `klp` with a valid object, under `klp_mutex`.
unsafe extern "C" fn post_unpatch<C: Callbacks>(obj: *mut bindings::klp_object) {
    // SAFETY: By the function's safety requirements.
    C::post_unpatch(unsafe { PatchedObject::from_raw(obj) })
}

type PrePatchFn = unsafe extern "C" fn(*mut bindings::klp_object) -> c_int;
type CallbackFn = unsafe extern "C" fn(*mut bindings::klp_object);

/// A patched object: `vmlinux` or a module, its replaced functions and its callbacks.
///
/// # Examples
///
/// ```
/// use kernel::c_str;
/// # use kernel::ffi::{c_int, c_void};
/// # klp::replacement! {
/// #     // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`.
/// #     unsafe fn livepatch_cmdline_proc_show(_m: &klp::SeqFile, _v: *mut c_void) -> c_int =
/// #         "cmdline_proc_show" { 0 }
/// # }
/// # klp::replacement! {
/// #     // SAFETY: `void ieee80211_sta_ps_deliver_wakeup(struct sta_info *sta)`.
/// #     unsafe fn deliver_wakeup(_sta: *mut c_void) = "ieee80211_sta_ps_deliver_wakeup" {}
/// # }
/// # struct Cleanup;
/// # impl klp::Callbacks for Cleanup {}
///
/// const OBJECTS: &[klp::Object] = &[
///     klp::Object::vmlinux(&[livepatch_cmdline_proc_show]),
///     klp::Object::module(c_str!("sta_model"), &[deliver_wakeup]).callbacks::<Cleanup>(),
/// ];
/// ```
#[derive(Clone, Copy)]
pub struct Object {
    name: Option<&'static CStr>,
    funcs: &'static [Func],
    pre_patch: Option<PrePatchFn>,
    post_patch: Option<CallbackFn>,
    pre_unpatch: Option<CallbackFn>,
    post_unpatch: Option<CallbackFn>,
}

impl Object {
    /// The kernel image itself, with the functions `funcs` replaced.
    pub const fn vmlinux(funcs: &'static [Func]) -> Self {
        Object {
            name: None,
            funcs,
            pre_patch: None,
            post_patch: None,
            pre_unpatch: None,
            post_unpatch: None,
        }
    }

    /// The module `name`, with the functions `funcs` replaced.
    ///
    /// The module need not be loaded: it is patched when it is.
    pub const fn module(name: &'static CStr, funcs: &'static [Func]) -> Self {
        let mut obj = Self::vmlinux(funcs);
        obj.name = Some(name);
        obj
    }

    /// Runs the callbacks of `C` around the (un)patching of this object.
    pub const fn callbacks<C: Callbacks>(mut self) -> Self {
        self.pre_patch = Some(pre_patch::<C>);
        self.post_patch = Some(post_patch::<C>);
        self.pre_unpatch = Some(pre_unpatch::<C>);
        self.post_unpatch = Some(post_unpatch::<C>);
        self
    }
}

/// A system state a livepatch establishes or keeps: `id` (non-zero) and `version`.
///
/// `klp` refuses a livepatch that does not list a state an installed one established with
/// [`Livepatch::REPLACE`], or lists it with a lower version; callbacks can read the version of
/// the state a previous livepatch left with [`PatchedObject::prev_state_version`]. See
/// `Documentation/livepatch/system-state.rst`.
///
/// # Examples
///
/// ```
/// /// The shadow `ps_lock`s exist: version 1 allocates them.
/// const STATES: &[klp::State] = &[klp::State::new(1, 1)];
/// ```
#[derive(Clone, Copy)]
pub struct State {
    id: c_ulong,
    version: c_uint,
}

impl State {
    /// The state `id` at `version`. Does not compile for `id == 0`, `klp`'s array terminator.
    pub const fn new(id: c_ulong, version: c_uint) -> Self {
        assert!(id != 0, "klp state ids must be non-zero");
        State { id, version }
    }
}

/// A livepatch module, declared with [`livepatch!`](crate::klp::livepatch).
///
/// # Examples
///
/// ```
/// # use kernel::{ffi::{c_int, c_void}, prelude::*};
/// # klp::replacement! {
/// #     // SAFETY: `static int cmdline_proc_show(struct seq_file *m, void *v)`.
/// #     unsafe fn livepatch_cmdline_proc_show(m: &klp::SeqFile, _v: *mut c_void) -> c_int =
/// #         "cmdline_proc_show"
/// #     {
/// #         klp::seq_print!(m, "this has been live patched\n");
/// #         0
/// #     }
/// # }
/// struct CmdlinePatch;
///
/// impl klp::Livepatch for CmdlinePatch {
///     const OBJECTS: &'static [klp::Object] =
///         &[klp::Object::vmlinux(&[livepatch_cmdline_proc_show])];
///
///     fn init(_module: &'static ThisModule) -> Result<Self> {
///         Ok(CmdlinePatch)
///     }
/// }
///
/// klp::livepatch! {
///     type: CmdlinePatch,
///     name: "rust_livepatch_cmdline",
///     license: "GPL",
/// }
/// ```
pub trait Livepatch: Sized + Send + Sync {
    /// The objects this livepatch patches.
    const OBJECTS: &'static [Object];

    /// Whether this livepatch atomically replaces all those installed before it
    /// (`klp_patch.replace`): a cumulative livepatch.
    const REPLACE: bool = false;

    /// The system states this livepatch establishes or keeps.
    const STATES: &'static [State] = &[];

    /// Runs at module load, before the patch is enabled: register shadow keys, allocate.
    ///
    /// An error fails the module load; the patch is not enabled.
    fn init(module: &'static ThisModule) -> Result<Self>;
}

/// The `klp_patch` of a livepatch module and the arrays it points to.
///
/// # Invariants
///
/// `raw` points to `objects` and `states`, each `klp_object` of `objects` to its array of `funcs`,
/// all NULL-terminated. The heap buffers of the `KVec`s never move or change after `new`. After
/// `klp_enable_patch()` succeeded on `raw`, only `klp` accesses the structures until it puts the
/// module reference it took, which must happen before the `Patch` is dropped.
#[pin_data]
pub struct Patch {
    #[pin]
    raw: Opaque<bindings::klp_patch>,
    _objects: KVec<Opaque<bindings::klp_object>>,
    _funcs: KVec<KVec<Opaque<bindings::klp_func>>>,
    _states: KVec<Opaque<bindings::klp_state>>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: Rust never accesses the structures after `new` except to free them, when `klp` no longer
// uses them (type invariant); `klp` serialises its own accesses with `klp_mutex`. The raw
// pointers inside point to static strings, functions and the `Patch`'s own buffers.
unsafe impl Send for Patch {}
// SAFETY: As above: `Patch` has no methods that access the structures through `&self`.
unsafe impl Sync for Patch {}

/// Returns a zeroed C structure.
///
/// Used for the `klp_*` structures, whose fields are integers, booleans, pointers and (internal)
/// kernel lists, kobjects, work and completions that `klp` initialises; all zero is their
/// `{ }` C initialiser.
fn zeroed<T>() -> Opaque<T> {
    // SAFETY: Only used for the `klp_*` bindgen structures (see above), for which all-zero is a
    // valid value.
    Opaque::new(unsafe { core::mem::zeroed() })
}

impl Patch {
    /// Builds the `klp_*` structures of a patch of `module`.
    fn new(
        module: &'static ThisModule,
        objects: &[Object],
        replace: bool,
        states: &[State],
        flags: kernel::alloc::Flags,
    ) -> Result<Pin<KBox<Self>>> {
        let mut funcs = KVec::with_capacity(objects.len(), flags)?;
        for obj in objects {
            let mut raw_funcs = KVec::with_capacity(obj.funcs.len() + 1, flags)?;
            for f in obj.funcs {
                let raw = zeroed::<bindings::klp_func>();
                // SAFETY: `raw` is ours, and not shared yet.
                unsafe {
                    let p = raw.get();
                    (*p).old_name = f.old_name.as_char_ptr();
                    (*p).new_func = f.new_func.cast_mut();
                    (*p).old_sympos = f.old_sympos;
                }
                raw_funcs.push(raw, flags)?;
            }
            raw_funcs.push(zeroed(), flags)?;
            funcs.push(raw_funcs, flags)?;
        }

        let mut raw_objects = KVec::with_capacity(objects.len() + 1, flags)?;
        for (obj, obj_funcs) in objects.iter().zip(funcs.iter()) {
            let raw = zeroed::<bindings::klp_object>();
            // SAFETY: `raw` is ours, and not shared yet.
            unsafe {
                let p = raw.get();
                (*p).name = obj.name.map_or(core::ptr::null(), CStr::as_char_ptr);
                // The buffer of `obj_funcs` never moves: it is not resized after this loop.
                (*p).funcs = Opaque::raw_get(obj_funcs.as_ptr());
                (*p).callbacks.pre_patch = obj.pre_patch;
                (*p).callbacks.post_patch = obj.post_patch;
                (*p).callbacks.pre_unpatch = obj.pre_unpatch;
                (*p).callbacks.post_unpatch = obj.post_unpatch;
            }
            raw_objects.push(raw, flags)?;
        }
        raw_objects.push(zeroed(), flags)?;

        let mut raw_states = KVec::with_capacity(states.len() + 1, flags)?;
        for s in states {
            let raw = zeroed::<bindings::klp_state>();
            // SAFETY: `raw` is ours, and not shared yet.
            unsafe {
                (*raw.get()).id = s.id;
                (*raw.get()).version = s.version;
            }
            raw_states.push(raw, flags)?;
        }
        raw_states.push(zeroed(), flags)?;

        let raw = zeroed::<bindings::klp_patch>();
        // SAFETY: `raw` is ours, and not shared yet.
        unsafe {
            let p = raw.get();
            (*p).mod_ = module.as_ptr();
            (*p).objs = Opaque::raw_get(raw_objects.as_ptr());
            (*p).states = Opaque::raw_get(raw_states.as_ptr());
            (*p).replace = replace;
        }
        // INVARIANT: The arrays are NULL-terminated and linked above, and not resized again.
        KBox::pin_init(
            pin_init!(Patch {
                raw,
                _objects: raw_objects,
                _funcs: funcs,
                _states: raw_states,
                _pin: PhantomPinned,
            }),
            flags,
        )
    }

    /// Enables the patch: `klp_enable_patch()`.
    ///
    /// Must be called from the module's init, once, as its last fallible step: on success, `klp`
    /// holds a reference on the module, so the `Patch` lives until `klp` is done with it.
    fn enable(self: Pin<&Self>) -> Result {
        // SAFETY: `raw` is a complete, NULL-terminated patch of this module (type invariant), at a
        // pinned address, enabled once from the module's init (see `LivepatchModule::init`).
        to_result(unsafe { bindings::klp_enable_patch(self.raw.get()) })
    }
}

/// The module type [`livepatch!`](crate::klp::livepatch) declares for a [`Livepatch`] `T`.
///
/// # Invariants
///
/// `patch` is enabled; `klp` holds a reference on this module until it no longer uses `patch`, so
/// the module (and `patch` with it) cannot be dropped before then. `data` is dropped after
/// `patch` (field order).
pub struct LivepatchModule<T: Livepatch> {
    _patch: Pin<KBox<Patch>>,
    data: T,
}

impl<T: Livepatch> LivepatchModule<T> {
    /// Returns the data [`Livepatch::init`] returned.
    pub fn data(&self) -> &T {
        &self.data
    }
}

/// Refuses a module whose livepatch relocations (written by `scripts/klp-convert` for the symbols
/// of [`extern_symbols!`](crate::klp::extern_symbols)) are for an object that `objects` does not
/// list.
///
/// `klp` writes the relocations of the patch's objects only: those of any other object would stay
/// unwritten, and the calls and reads of its symbols would go to the zero bytes `klp-convert`
/// left. Refused with `EINVAL` and a `pr_err` naming the object and the section.
fn check_relocation_objects(module: &'static ThisModule, objects: &[Object]) -> Result {
    // SAFETY: `module` is this module, being initialised.
    let info = unsafe { (*module.as_ptr()).klp_info };
    if info.is_null() {
        // Not a livepatch module: `klp_enable_patch()` refuses it.
        return Ok(());
    }
    // A livepatch module's (`livepatch!` writes `MODULE_INFO(livepatch, "Y")`) `klp_info` holds
    // the loader's copy of its ELF header, section headers and section names
    // (`copy_module_elf()`), made before init and freed only with the module.
    // SAFETY: Non-NULL, so that copy: valid, and never written, while the module lives.
    let info = unsafe { &*info };
    for i in 1..usize::from(info.hdr.e_shnum) {
        // SAFETY: `sechdrs` has `e_shnum` entries.
        let shdr = unsafe { &*info.sechdrs.add(i) };
        if shdr.sh_flags & u64::from(kernel::bindings::SHF_RELA_LIVEPATCH) == 0
            || shdr.sh_type == kernel::bindings::SHT_NULL
        {
            continue;
        }
        // SAFETY: The loader checked that the `sh_name` of every section but `SHT_NULL` ones is
        // an offset into `secstrings`, which ends with a NUL (`elf_validity_cache_secstrings()`).
        let name = unsafe { CStr::from_char_ptr(info.secstrings.add(shdr.sh_name as usize)) };
        // `.klp.rela.<object>.<section>`, as `klp_apply_section_relocs()` reads it.
        let object = name
            .as_bytes()
            .strip_prefix(b".klp.rela.")
            .and_then(|rest| rest.split(|&b| b == b'.').next())
            .unwrap_or(b"");
        let listed = objects.iter().any(|o| match o.name {
            None => object == b"vmlinux",
            Some(n) => n.as_bytes() == object,
        });
        if !listed {
            pr_err!(
                "livepatch relocation section {} is for object '{}', which the patch does not list in Livepatch::OBJECTS: klp would never write it\n",
                name.to_str().unwrap_or("?"),
                core::str::from_utf8(object).unwrap_or("?"),
            );
            return Err(EINVAL);
        }
    }
    Ok(())
}

impl<T: Livepatch> kernel::Module for LivepatchModule<T> {
    fn init(module: &'static ThisModule) -> Result<Self> {
        check_relocation_objects(module, T::OBJECTS)?;
        let data = T::init(module)?;
        let patch = Patch::new(module, T::OBJECTS, T::REPLACE, T::STATES, GFP_KERNEL)?;
        // Last: nothing may fail once the patch is enabled, or the module would be freed while
        // `klp` still uses it.
        patch.as_ref().enable()?;
        // INVARIANT: The patch is enabled.
        Ok(LivepatchModule {
            _patch: patch,
            data,
        })
    }
}
