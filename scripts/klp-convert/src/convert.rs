// SPDX-License-Identifier: GPL-2.0

//! The conversion of one module: declared symbols to livepatch symbols, their relocations to
//! livepatch relocation sections.

use crate::klpsym::{self, KlpSym};
use crate::target::{self, Candidate, Table};
use object::build::elf::{Builder, Relocation, SectionData, SectionId, SymbolId};
use object::build::Id;
use object::elf;
use object::read::elf::{FileHeader, Sym};
use std::collections::{BTreeMap, HashMap, HashSet};

/// `SHN_LIVEPATCH` of `include/uapi/linux/elf.h`: a symbol `klp` resolves.
pub const SHN_LIVEPATCH: elf::SymbolSection = elf::SymbolSection(0xff20);
/// `SHF_RELA_LIVEPATCH` of `include/uapi/linux/elf.h`: a relocation section `klp` applies.
pub const SHF_RELA_LIVEPATCH: elf::SectionFlags = elf::SectionFlags(0x0010_0000);

/// The section `klp_extern!` puts its guard relocations in: one per declared symbol, of a type
/// (`R_X86_64_SIZE32`) `apply_relocate_add()` refuses, so that a module this tool did not
/// convert fails to load (`Unknown rela relocation: 32`) instead of calling address 0. The tool
/// drops these relocations.
pub const GUARD_SECTION: &str = ".klp_convert_guard";

/// Sections whose entries the kernel reads at module load, before `klp` writes a module's
/// livepatch relocations, or that it patches itself (static keys, static calls, alternatives,
/// exception tables, objtool's call-site lists, ftrace and ORC tables, bug table): an entry
/// pointing at a converted symbol would be read before it is resolved, or never.
pub const SPECIAL_SECTIONS: &[&str] = &[
    "__jump_table",
    ".static_call_sites",
    ".static_call.text",
    ".altinstructions",
    ".altinstr_replacement",
    ".altinstr_aux",
    "__ex_table",
    ".retpoline_sites",
    ".return_sites",
    ".call_sites",
    ".ibt_endbr_seal",
    ".cfi_sites",
    "__bug_table",
    ".orc_unwind_ip",
    ".orc_unwind",
    "__mcount_loc",
    "__patchable_function_entries",
    ".parainstructions",
    ".smp_locks",
    "__tracepoints_ptrs",
    "__param",
    "__ksymtab",
    "__ksymtab_gpl",
];

/// What happened to one module.
#[derive(Debug)]
pub enum Outcome {
    /// No symbol to convert: the module declares none, or was converted before.
    Unchanged,
    /// The converted module.
    Converted {
        /// Its new contents.
        data: Vec<u8>,
        /// How many symbols became livepatch symbols.
        symbols: usize,
        /// How many relocations moved to livepatch relocation sections.
        relocations: usize,
    },
}

/// `SHT_LLVM_ADDRSIG`: the symbols whose address is taken, as symbol indices (for lld's
/// `--icf`); clang emits it and `ld.lld -r` keeps it. The builder does not copy sections it
/// does not know, since their contents may hold indices it renumbers: this one holds symbol
/// indices, which the conversion keeps (checked after writing), so it is copied as data and
/// its type restored.
const SHT_LLVM_ADDRSIG: u32 = 0x6fff_4c03;

/// Where the section headers of an ELF64 little-endian file are: `(e_shoff, e_shentsize,
/// e_shnum)`.
fn section_headers(data: &[u8]) -> Option<(usize, usize, usize)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let shoff = u64::from_le_bytes(data.get(0x28..0x30)?.try_into().ok()?);
    Some((
        usize::try_from(shoff).ok()?,
        usize::from(u16_at(0x3a)?),
        usize::from(u16_at(0x3c)?),
    ))
}

/// Replaces the `sh_type` `from` by `to` in the section headers; returns the sections changed.
fn retype_sections(data: &mut [u8], from: u32, to: u32) -> Vec<usize> {
    let mut changed = Vec::new();
    let Some((shoff, entsize, shnum)) = section_headers(data) else {
        return changed;
    };
    for index in 0..shnum {
        let at = shoff + index * entsize + 4;
        let Some(field) = data.get_mut(at..at + 4) else {
            break;
        };
        if u32::from_le_bytes(field.try_into().expect("4 bytes")) == from {
            field.copy_from_slice(&to.to_le_bytes());
            changed.push(index);
        }
    }
    changed
}

/// Sets the `sh_type` of the sections `indices` to `to`.
fn set_section_types(data: &mut [u8], indices: &[usize], to: u32) -> Result<(), String> {
    let (shoff, entsize, _) = section_headers(data).ok_or("no section headers")?;
    for index in indices {
        let at = shoff + index * entsize + 4;
        data.get_mut(at..at + 4)
            .ok_or("section header out of range")?
            .copy_from_slice(&to.to_le_bytes());
    }
    Ok(())
}

/// The names of a module's symbols, in `.symtab` order.
fn symbol_names(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let header = elf::FileHeader64::<object::Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| e.to_string())?;
    symbols
        .iter()
        .map(|s| {
            symbols
                .symbol_name(endian, s)
                .map(<[u8]>::to_vec)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Finds the symbol tables of the objects a module refers to.
pub trait Targets {
    /// The symbols named in `names` of the object `obj` (`vmlinux` or a module name).
    fn table(&mut self, obj: &str, names: &HashSet<&str>) -> Result<Table, String>;
}

/// The relocation types `__write_relocate_add()` in `arch/x86/kernel/module.c` writes, and
/// their sizes; it refuses every other type with `-ENOEXEC`.
fn x86_64_reloc_size(r_type: elf::RelocationType) -> Option<u64> {
    match r_type {
        elf::R_X86_64_NONE => Some(0),
        elf::R_X86_64_64 | elf::R_X86_64_PC64 => Some(8),
        elf::R_X86_64_32 | elf::R_X86_64_32S | elf::R_X86_64_PC32 | elf::R_X86_64_PLT32 => Some(4),
        _ => None,
    }
}

fn reloc_name(r_type: elf::RelocationType) -> String {
    elf::NAMES_R_X86_64
        .name(r_type)
        .map_or_else(|| format!("type {}", r_type.0), str::to_owned)
}

/// Whether a section is freed after the module's init (`module_init_section()`).
fn is_init_section(name: &str) -> bool {
    name.starts_with(".init")
}

/// Resolves `sym` the way `klp_find_object_symbol()` will, in every view `klp` may use.
fn resolve(sym: &KlpSym, found: &[Candidate]) -> Result<(), String> {
    let obj = &sym.obj;
    let name = &sym.name;
    let pick = |list: &[&Candidate]| -> Result<usize, String> {
        match (list.len(), sym.pos) {
            (0, _) => Err(format!("no symbol '{name}' in {obj}'s symbol table")),
            (1, 0) => Ok(list[0].index),
            (n, 0) => Err(format!(
                "{n} symbols named '{name}' in {obj} ({}): give sympos 1 to {n}",
                list.iter()
                    .map(|c| format!("{}+{:#x}", c.section, c.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (n, pos) if pos > n as u64 => Err(format!(
                "sympos {pos} out of range: {obj} has {n} symbol{} named '{name}'",
                if n == 1 { "" } else { "s" }
            )),
            (_, pos) => Ok(list[pos as usize - 1].index),
        }
    };
    let all: Vec<&Candidate> = found.iter().collect();
    let index = pick(&all)?;
    let chosen = found
        .iter()
        .find(|c| c.index == index)
        .expect("picked from found");
    if is_init_section(&chosen.section) {
        return Err(format!(
            "'{name}' is in {obj}'s {}, freed after init",
            chosen.section
        ));
    }
    if !sym.is_vmlinux() {
        // A module's kallsyms lose their non-core symbols after its init: the position must
        // name the same symbol both while it loads and once it runs.
        let core: Vec<&Candidate> = found.iter().filter(|c| c.core).collect();
        if core.len() != all.len() || pick(&core)? != index {
            return Err(format!(
                "'{name}' would resolve differently while {obj} loads and after its init \
                 (same-named symbols in init or non-allocated sections)"
            ));
        }
    }
    Ok(())
}

/// The names of the undefined symbols with the `.klp.sym.` prefix, read without the builder
/// (which cannot read an already converted module: its relocation sections are `SHF_ALLOC`).
fn declared_names(data: &[u8]) -> Result<Vec<String>, String> {
    let header = elf::FileHeader64::<object::Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    if header.e_type(endian) != elf::ET_REL || header.e_machine(endian) != elf::EM_X86_64 {
        return Err("not an x86-64 relocatable object (a .ko)".into());
    }
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for sym in symbols.iter() {
        if sym.st_shndx(endian) != elf::SHN_UNDEF {
            continue;
        }
        let name = symbols
            .symbol_name(endian, sym)
            .map_err(|e| e.to_string())?;
        if name.starts_with(klpsym::SYM_PREFIX.as_bytes()) {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(names)
}

/// Converts a module; `Err` holds one message per problem, each `<symbol>: <what>` or `<what>`.
pub fn convert(data: &[u8], targets: &mut dyn Targets) -> Result<Outcome, Vec<String>> {
    let one = |e: String| vec![e];
    if declared_names(data).map_err(one)?.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    if target::modinfo(data, "livepatch").map_err(one)? != Some(b"Y") {
        return Err(one(
            "declares livepatch symbols but is no livepatch module (no livepatch=Y in .modinfo)"
                .into(),
        ));
    }
    let mut input = data.to_vec();
    let addrsig = retype_sections(&mut input, SHT_LLVM_ADDRSIG, elf::SHT_PROGBITS.0);
    let mut builder = Builder::read(&input[..]).map_err(|e| one(e.to_string()))?;
    let mut errors = Vec::new();

    // The declared symbols.
    // By `SymbolId::index()` (`SymbolId` is not `Hash`).
    let mut declared: HashMap<usize, (SymbolId, KlpSym)> = HashMap::new();
    for symbol in &builder.symbols {
        if symbol.st_shndx != elf::SHN_UNDEF || symbol.section.is_some() {
            continue;
        }
        let name = String::from_utf8_lossy(&symbol.name).into_owned();
        match KlpSym::parse(&name) {
            None => {}
            Some(Err(e)) => errors.push(format!("{name}: {e}")),
            Some(Ok(sym)) => {
                declared.insert(symbol.id().index(), (symbol.id(), sym));
            }
        }
    }

    // Each must name exactly one symbol of its object.
    let mut by_obj: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for (_, sym) in declared.values() {
        by_obj.entry(&sym.obj).or_default().insert(&sym.name);
    }
    let mut tables = HashMap::new();
    for (obj, names) in &by_obj {
        match targets.table(obj, names) {
            Ok(table) => {
                tables.insert(obj.to_string(), table);
            }
            Err(e) => errors.push(format!("{obj}: {e}")),
        }
    }
    let mut sorted: Vec<&(SymbolId, KlpSym)> = declared.values().collect();
    sorted.sort_by(|a, b| a.1.cmp(&b.1));
    for (id, sym) in sorted {
        let Some(table) = tables.get(&sym.obj) else {
            continue;
        };
        let found = table.get(&sym.name).map(Vec::as_slice).unwrap_or_default();
        if let Err(e) = resolve(sym, found) {
            errors.push(format!("{}: {e}", builder.symbols.get(*id).name));
        }
    }

    // Their relocations: each checked, then moved to `.klp.rela.<obj>.<section>`.
    let section_ids: Vec<SectionId> = builder.sections.iter().map(|s| s.id()).collect();
    let mut moved: BTreeMap<(String, usize), (SectionId, Vec<Relocation>)> = BTreeMap::new();
    let mut symtab = None;
    let mut count = 0;
    for (position, &rela_id) in section_ids.iter().enumerate() {
        let rela = builder.sections.get(rela_id);
        let SectionData::Relocation(relocs) = &rela.data else {
            continue;
        };
        if !relocs
            .iter()
            .any(|r| r.symbol.is_some_and(|s| declared.contains_key(&s.index())))
        {
            continue;
        }
        let rela_name = String::from_utf8_lossy(&rela.name).into_owned();
        let target_pos = match rela.sh_info_section {
            Some(t) => section_ids.iter().position(|&id| id == t),
            None => (rela.sh_info as usize).checked_sub(1),
        };
        let Some(&target_id) = target_pos.and_then(|p| section_ids.get(p)) else {
            errors.push(format!("{rela_name}: no valid target section"));
            continue;
        };
        let target = builder.sections.get(target_id);
        let target_name = String::from_utf8_lossy(&target.name).into_owned();
        if !target.is_alloc() {
            // The module loader never applies relocations to non-allocated sections (debug
            // information): they stay as they are.
            continue;
        }
        if rela.sh_type != elf::SHT_RELA {
            errors.push(format!("{rela_name}: not SHT_RELA"));
            continue;
        }
        symtab = rela.sh_link_section;
        let guard = target_name == GUARD_SECTION;
        let mut kept = Vec::new();
        for r in relocs {
            let Some((_, sym)) = r.symbol.and_then(|s| declared.get(&s.index())) else {
                kept.push(*r);
                continue;
            };
            if guard {
                continue;
            }
            let sym_name = &builder.symbols.get(r.symbol.expect("declared")).name;
            let at = format!("{target_name}+{:#x}", r.r_offset);
            let mut fail = |what: String| errors.push(format!("{sym_name}: {what}"));
            if SPECIAL_SECTIONS.contains(&target_name.as_str()) {
                fail(format!(
                    "referenced from the special section {target_name} (at {at}), which the \
                     kernel reads before it resolves livepatch symbols"
                ));
                continue;
            }
            if !sym.is_vmlinux() && is_init_section(&target_name) {
                fail(format!(
                    "referenced from {at}: the relocations of a module object are written \
                     after this module's init sections are freed"
                ));
                continue;
            }
            let Some(size) = x86_64_reloc_size(r.r_type) else {
                fail(format!(
                    "relocation {} at {at} is refused by x86-64 apply_relocate_add()",
                    reloc_name(r.r_type)
                ));
                continue;
            };
            let bytes = match &target.data {
                SectionData::Data(bytes) => r
                    .r_offset
                    .checked_add(size)
                    .and_then(|end| bytes.get(r.r_offset as usize..end as usize)),
                _ => None,
            };
            match bytes {
                None => fail(format!("relocation at {at} is outside its section's data")),
                Some(b) if b.iter().any(|&x| x != 0) => fail(format!(
                    "non-zero bytes at {at} ({}): apply_relocate_add() refuses to write there",
                    b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                )),
                Some(_) => {
                    count += 1;
                    moved
                        .entry((sym.obj.clone(), position))
                        .or_insert_with(|| (target_id, Vec::new()))
                        .1
                        .push(*r);
                }
            }
        }
        if let SectionData::Relocation(relocs) = &mut builder.sections.get_mut(rela_id).data {
            *relocs = kept;
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    for ((obj, _), (target_id, relocs)) in moved {
        let target_name =
            String::from_utf8_lossy(&builder.sections.get(target_id).name).into_owned();
        let section = builder.sections.add();
        section.name = klpsym::rela_section_name(&obj, &target_name)
            .into_bytes()
            .into();
        section.sh_type = elf::SHT_RELA;
        // SHF_ALLOC: the loader keeps the section in memory for `klp`, which applies it when the
        // object is there (core.c); SHF_INFO_LINK: sh_info is a section index.
        section.sh_flags = elf::SHF_ALLOC | elf::SHF_INFO_LINK | SHF_RELA_LIVEPATCH;
        section.sh_link_section = symtab;
        section.sh_info_section = Some(target_id);
        section.sh_addralign = 8;
        section.sh_entsize = 24;
        section.data = SectionData::Relocation(relocs);
    }
    let symbols = declared.len();
    for (id, _) in declared.values() {
        let symbol = builder.symbols.get_mut(*id);
        symbol.section = None;
        symbol.st_shndx = SHN_LIVEPATCH;
        // As module-elf-format.rst shows them; modpost, which took the weak undefined symbol,
        // has run already. Local symbols come first in .symtab and this one stays global.
        symbol.set_st_info(elf::STB_GLOBAL, symbol.st_type());
        symbol.st_value = 0;
        symbol.st_size = 0;
    }
    if !builder
        .sections
        .iter()
        .any(|s| matches!(s.data, SectionData::SectionString))
    {
        // LLVM's assembler shares one string table between section and symbol names; the
        // builder writes them apart (ld, which links every .ko, does too).
        let section = builder.sections.add();
        section.name = b".shstrtab"[..].into();
        section.sh_type = elf::SHT_STRTAB;
        section.sh_addralign = 1;
        section.data = SectionData::SectionString;
    }
    let mut out = Vec::new();
    builder.write(&mut out).map_err(|e| one(e.to_string()))?;
    set_section_types(&mut out, &addrsig, SHT_LLVM_ADDRSIG).map_err(one)?;
    // Relocations, `.llvm_addrsig` and `klp` refer to symbols by index: none may move.
    if symbol_names(&out).map_err(one)? != symbol_names(data).map_err(one)? {
        return Err(one("internal error: the symbol table changed order".into()));
    }
    Ok(Outcome::Converted {
        data: out,
        symbols,
        relocations: count,
    })
}
