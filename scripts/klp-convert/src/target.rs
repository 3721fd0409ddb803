// SPDX-License-Identifier: GPL-2.0

//! The symbol tables of the objects a livepatch refers to, in the order `klp` counts them.
//!
//! `klp_find_object_symbol()` (`kernel/livepatch/core.c`) counts the symbols of one name:
//!
//! - in vmlinux, with `kallsyms_on_each_match_symbol()`: kallsyms' symbols are those of
//!   `nm -n vmlinux` less what `scripts/mksysmap` and `scripts/kallsyms.c` drop, and symbols of
//!   one name are visited by address (`compare_names()` in `scripts/kallsyms.c`);
//! - in a module, with `module_kallsyms_on_each_symbol()`: the module's symbol table in file
//!   order, less undefined symbols. While the module loads (a livepatch loaded before it) that
//!   is its whole `.symtab`; after its init (a livepatch loaded after it) only the "core"
//!   symbols `add_kallsyms()` kept (`is_core_symbol()` in `kernel/module/kallsyms.c`).

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::Endianness;
use std::collections::{HashMap, HashSet};

/// One symbol of the wanted name, in `klp`'s order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its index in the object's `.symtab`.
    pub index: usize,
    /// Its value (an address in vmlinux, a section offset in a module).
    pub value: u64,
    /// The name of its section.
    pub section: String,
    /// A module symbol `add_kallsyms()` keeps after the module's init (always true in vmlinux).
    pub core: bool,
}

/// The symbols of the wanted names in one object.
pub type Table = HashMap<String, Vec<Candidate>>;

type Header = elf::FileHeader64<Endianness>;

/// Whether `scripts/mksysmap` drops a symbol of that name from kallsyms.
fn mksysmap_drops(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "$",
        ".L",
        "__efistub_",
        "__pi_$",
        "__pi_.L",
        "__kvm_nvhe_$",
        "__kvm_nvhe_.L",
        "__kcfi_typeid_",
        "__kvm_nvhe___kcfi_typeid_",
        "__pi___kcfi_typeid_",
        "__crc_",
        "__kstrtab_",
        "__kstrtabns_",
    ];
    const SUFFIXES: &[&str] = &["_from_arm", "_from_thumb", "_veneer"];
    if PREFIXES.iter().any(|p| name.starts_with(p))
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || matches!(name, "L0" | "_SDA_BASE_" | "_SDA2_BASE_")
        || name.contains(".long_branch.")
        || name.contains(".plt_branch.")
    {
        return true;
    }
    // `__[[:alnum:]]*Thunk_`: the thunks of arm64's linker.
    if let Some(rest) = name.strip_prefix("__") {
        if let Some(pos) = rest.find("Thunk_") {
            return rest[..pos].bytes().all(|b| b.is_ascii_alphanumeric());
        }
    }
    false
}

/// Reads the symbols named in `wanted` from an object file's `.symtab`.
///
/// `vmlinux` selects kallsyms' view of the kernel image, otherwise a module's.
pub fn read(data: &[u8], vmlinux: bool, wanted: &HashSet<&str>) -> Result<Table, String> {
    let header = Header::parse(data).map_err(|e| format!("not an ELF64 file: {e}"))?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| e.to_string())?;
    if symbols.is_empty() {
        return Err("has no symbol table".into());
    }
    let shnum = sections.len();
    let pcpu = sections
        .section_by_name(endian, b".data..percpu")
        .map(|(index, _)| index.0);
    let mut table = Table::new();
    for (index, sym) in symbols.enumerate() {
        let shndx = sym.st_shndx(endian);
        if index.0 == 0 || shndx == elf::SHN_UNDEF || sym.st_name(endian) == 0 {
            continue;
        }
        let Ok(name) = symbols.symbol_name(endian, sym) else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !wanted.contains(name) {
            continue;
        }
        let section = match symbols.symbol_section(endian, sym, index) {
            Ok(Some(i)) => sections.section(i).ok().map(|s| (i.0, s)),
            _ => None,
        };
        let section_name = section
            .and_then(|(_, s)| sections.section_name(endian, s).ok())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let alloc = section.is_some_and(|(_, s)| s.sh_flags(endian).contains(elf::SHF_ALLOC));
        let core = if vmlinux {
            // nm prints no section or file symbols, and kallsyms keeps no absolute (`a`),
            // debugging (`N`, `n`), undefined or unique (`u`) ones.
            if matches!(sym.st_type(), elf::STT_SECTION | elf::STT_FILE)
                || section.is_none()
                || !alloc
                || sym.st_bind() == elf::STB_GNU_UNIQUE
                || mksysmap_drops(name)
            {
                continue;
            }
            true
        } else {
            // `is_core_symbol()`, with CONFIG_KALLSYMS_ALL (our test kernel's and every
            // distribution's): a named symbol of a section in the module's memory, not in an
            // init section, or a per-CPU variable.
            (shndx.0 as usize) < shnum
                && (pcpu == section.map(|(i, _)| i)
                    || (alloc && !section_name.starts_with(".init")))
        };
        table.entry(name.to_owned()).or_default().push(Candidate {
            index: index.0,
            value: sym.st_value(endian),
            section: section_name,
            core,
        });
    }
    if vmlinux {
        // Symbols of one name by address, then in file order (`compare_names()`).
        for list in table.values_mut() {
            list.sort_by_key(|c| (c.value, c.index));
        }
    }
    Ok(table)
}

/// Reads the `name=` of a module's `.modinfo`, or whether it has `livepatch=Y`.
pub fn modinfo<'a>(data: &'a [u8], key: &str) -> Result<Option<&'a [u8]>, String> {
    let header = Header::parse(data).map_err(|e| format!("not an ELF64 file: {e}"))?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let Some((_, modinfo)) = sections.section_by_name(endian, b".modinfo") else {
        return Ok(None);
    };
    let bytes = modinfo.data(endian, data).map_err(|e| e.to_string())?;
    Ok(modinfo_value(bytes, key))
}

/// Finds `key=value` among the NUL-separated strings of a `.modinfo` section.
pub fn modinfo_value<'a>(bytes: &'a [u8], key: &str) -> Option<&'a [u8]> {
    bytes.split(|&b| b == 0).find_map(|entry| {
        entry
            .strip_prefix(key.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mksysmap() {
        for dropped in [
            "__crc_foo",
            ".Ltmp1",
            "$x",
            "__kstrtab_foo",
            "__AArch64ADRPThunk_x",
            "a_veneer",
        ] {
            assert!(mksysmap_drops(dropped), "{dropped}");
        }
        for kept in [
            "cmdline_proc_show",
            "__do_sys_open",
            "foo.isra.0",
            "__x86_return_thunk",
        ] {
            assert!(!mksysmap_drops(kept), "{kept}");
        }
    }

    #[test]
    fn modinfo_values() {
        let info = b"license=GPL\0livepatch=Y\0name=foo\0";
        assert_eq!(modinfo_value(info, "livepatch"), Some(&b"Y"[..]));
        assert_eq!(modinfo_value(info, "name"), Some(&b"foo"[..]));
        assert_eq!(modinfo_value(info, "nam"), None);
    }
}
