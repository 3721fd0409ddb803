// SPDX-License-Identifier: GPL-2.0

//! Host tests of `klp-convert` on small ELF objects assembled at test time with `clang -c`
//! (`$CC` to use another assembler): modules it must convert, checked by reading the result
//! back, and modules it must refuse, checked by their error and an untouched file.

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::Endianness;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

type Header = elf::FileHeader64<Endianness>;

const SHN_LIVEPATCH: u16 = 0xff20;
const SHF_RELA_LIVEPATCH: u64 = 0x0010_0000;

/// A fresh directory for one test, removed when the test passed.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn scratch() -> Scratch {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "klp-convert-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Assembles `asm` into `dir/name`.
fn assemble(dir: &Path, name: &str, asm: &str) -> PathBuf {
    let src = dir.join(format!("{name}.s"));
    std::fs::write(&src, asm).unwrap();
    let out = dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "clang".into());
    let status = Command::new(cc)
        .args(["-c", "-x", "assembler"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run clang (set CC to another assembler)");
    assert!(status.success(), "assembling {name}");
    out
}

/// Links objects with `ld.lld -r` (`$LD` to use another linker), as the kernel links a module.
fn link(dir: &Path, name: &str, objs: &[&Path]) -> PathBuf {
    let out = dir.join(name);
    let ld = std::env::var("LD").unwrap_or_else(|_| "ld.lld".into());
    let status = Command::new(ld)
        .arg("-r")
        .args(objs)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run ld");
    assert!(status.success(), "linking {name}");
    out
}

fn klp_convert(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_klp-convert"));
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

/// The weak declaration and guard `klp_extern!` emits for a symbol.
fn declare(sym: &str) -> String {
    format!(
        ".weak \"{sym}\"\n\
         .pushsection .klp_convert_guard,\"a\"\n\
         .reloc ., R_X86_64_SIZE32, \"{sym}\"\n\
         .long 0\n\
         .popsection\n"
    )
}

const LIVEPATCH_MODINFO: &str =
    ".section .modinfo,\"a\"\n.asciz \"livepatch=Y\"\n.asciz \"name=lp\"\n";

/// The kernel image: `target_fn`, `target_data`, a local `dup` in two files, an init function.
fn vmlinux(dir: &Path) -> PathBuf {
    let a = assemble(
        dir,
        "vmlinux-a.o",
        ".text\n.globl target_fn\ntarget_fn: ret\n\
         dup: ret\n\
         .section .init.text,\"ax\"\nearly_fn: ret\n\
         .data\n.globl target_data\ntarget_data: .quad 7\n\
         .section .debug_str,\"MS\",@progbits,1\nnot_kallsyms: .asciz \"x\"\n",
    );
    let b = assemble(dir, "vmlinux-b.o", ".text\nnop\ndup: ret\n");
    link(dir, "vmlinux", &[&a, &b])
}

/// A target module `targetmod`: a unique `helper` and a `twice` in its text and init text.
fn target_module(dir: &Path) -> PathBuf {
    let a = assemble(
        dir,
        "targetmod-a.o",
        ".section .modinfo,\"a\"\n.asciz \"name=targetmod\"\n\
         .text\nhelper: ret\ntwice: ret\n",
    );
    let b = assemble(
        dir,
        "targetmod-b.o",
        ".section .init.text,\"ax\"\ntwice: ret\n",
    );
    let ko = link(dir, "targetmod.ko", &[&a, &b]);
    std::fs::remove_file(a).unwrap();
    std::fs::remove_file(b).unwrap();
    ko
}

struct Elf {
    data: Vec<u8>,
}

struct SectionInfo {
    name: String,
    sh_type: u32,
    flags: u64,
    link: u32,
    info: u32,
    data: Vec<u8>,
}

struct SymInfo {
    name: String,
    shndx: u16,
    bind: u8,
}

impl Elf {
    fn read(path: &Path) -> Self {
        Elf {
            data: std::fs::read(path).unwrap(),
        }
    }

    fn sections(&self) -> Vec<SectionInfo> {
        let data = &self.data[..];
        let h = Header::parse(data).unwrap();
        let e = h.endian().unwrap();
        let secs = h.sections(e, data).unwrap();
        secs.iter()
            .map(|s| SectionInfo {
                name: String::from_utf8(secs.section_name(e, s).unwrap().to_vec()).unwrap(),
                sh_type: s.sh_type(e).0,
                flags: s.sh_flags(e).0,
                link: s.sh_link(e),
                info: s.sh_info(e),
                data: if s.sh_type(e) == elf::SHT_NOBITS {
                    Vec::new()
                } else {
                    s.data(e, data).unwrap().to_vec()
                },
            })
            .collect()
    }

    fn symbols(&self) -> Vec<SymInfo> {
        let data = &self.data[..];
        let h = Header::parse(data).unwrap();
        let e = h.endian().unwrap();
        let secs = h.sections(e, data).unwrap();
        let syms = secs.symbols(e, data, elf::SHT_SYMTAB).unwrap();
        syms.iter()
            .map(|s| SymInfo {
                name: String::from_utf8(syms.symbol_name(e, s).unwrap().to_vec()).unwrap(),
                shndx: s.st_shndx(e).0,
                bind: s.st_bind().0,
            })
            .collect()
    }

    /// `(r_offset, r_type, symbol name, addend)` of a relocation section.
    fn relocs(&self, section: &str) -> Vec<(u64, u32, String, i64)> {
        let secs = self.sections();
        let syms = self.symbols();
        let s = secs
            .iter()
            .find(|s| s.name == section)
            .unwrap_or_else(|| panic!("no section {section}"));
        s.data
            .chunks(24)
            .map(|r| {
                let offset = u64::from_le_bytes(r[0..8].try_into().unwrap());
                let info = u64::from_le_bytes(r[8..16].try_into().unwrap());
                let addend = i64::from_le_bytes(r[16..24].try_into().unwrap());
                let sym = syms[(info >> 32) as usize].name.clone();
                (offset, info as u32, sym, addend)
            })
            .collect()
    }

    fn index_of(&self, section: &str) -> u32 {
        self.sections()
            .iter()
            .position(|s| s.name == section)
            .unwrap_or_else(|| panic!("no section {section}")) as u32
    }
}

/// A converted module must still be a well-formed ELF file for binutils.
fn readelf_clean(path: &Path) {
    let out = Command::new("readelf")
        .arg("-aW")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "readelf: {err}");
}

const FN: &str = ".klp.sym.vmlinux.target_fn,0";
const DATA: &str = ".klp.sym.vmlinux.target_data,0";

#[test]
fn converts_call_and_data_references() {
    let dir = scratch();
    let vmlinux = vmlinux(&dir);
    let asm = format!(
        "{LIVEPATCH_MODINFO}{}{}\
         .section .text.caller,\"ax\",@progbits\n.globl caller\ncaller:\n\
         call \"{FN}\"\n\
         call printk\n\
         movq \"{DATA}\"(%rip), %rax\n\
         movq $\"{DATA}\", %rax\n\
         ret\n\
         .section .data.ptrs,\"aw\"\n.quad \"{FN}\"\n.quad caller\n",
        declare(FN),
        declare(DATA)
    );
    let ko = assemble(&dir, "lp.ko", &asm);
    let before = Elf::read(&ko);
    let out = klp_convert(&[&"--vmlinux", &vmlinux, &"-v", &ko]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 livepatch symbol(s), 4 relocation(s)"));
    readelf_clean(&ko);
    let after = Elf::read(&ko);

    // The livepatch relocation sections: name, type, flags, links.
    let secs = after.sections();
    let symtab = after.index_of(".symtab");
    for (name, target) in [
        (".klp.rela.vmlinux.text.caller", ".text.caller"),
        (".klp.rela.vmlinux.data.ptrs", ".data.ptrs"),
    ] {
        let s = secs.iter().find(|s| s.name == name).unwrap();
        assert_eq!(s.sh_type, elf::SHT_RELA.0);
        assert_eq!(
            s.flags,
            elf::SHF_ALLOC.0 | elf::SHF_INFO_LINK.0 | SHF_RELA_LIVEPATCH,
            "{name}"
        );
        assert_eq!(s.link, symtab);
        assert_eq!(s.info, after.index_of(target));
    }
    assert_eq!(
        after.relocs(".klp.rela.vmlinux.text.caller"),
        vec![
            (1, elf::R_X86_64_PLT32.0, FN.into(), -4),
            (13, elf::R_X86_64_PC32.0, DATA.into(), -4),
            (20, elf::R_X86_64_32S.0, DATA.into(), 0),
        ]
    );
    assert_eq!(
        after.relocs(".klp.rela.vmlinux.data.ptrs"),
        vec![(0, elf::R_X86_64_64.0, FN.into(), 0)]
    );
    // What is not a declared symbol stays where it was.
    assert_eq!(
        after.relocs(".rela.text.caller"),
        vec![(6, elf::R_X86_64_PLT32.0, "printk".into(), -4)]
    );
    assert_eq!(
        after.relocs(".rela.data.ptrs"),
        vec![(8, elf::R_X86_64_64.0, "caller".into(), 0)]
    );
    // The guards are gone.
    assert!(after.relocs(".rela.klp_convert_guard").is_empty());

    // The symbols: same names in the same order, the declared ones SHN_LIVEPATCH and global.
    let (bs, as_) = (before.symbols(), after.symbols());
    assert_eq!(
        bs.iter().map(|s| &s.name).collect::<Vec<_>>(),
        as_.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for s in &as_ {
        if s.name.starts_with(".klp.sym.") {
            assert_eq!(s.shndx, SHN_LIVEPATCH, "{}", s.name);
            assert_eq!(s.bind, elf::STB_GLOBAL.0, "{}", s.name);
        }
    }
    // Every other section is unchanged.
    let bsecs = before.sections();
    for b in &bsecs {
        let a = secs.iter().find(|a| a.name == b.name).unwrap();
        if b.sh_type != elf::SHT_RELA.0
            && b.sh_type != elf::SHT_SYMTAB.0
            && b.sh_type != elf::SHT_STRTAB.0
        {
            assert_eq!(
                (a.sh_type, a.flags, &a.data),
                (b.sh_type, b.flags, &b.data),
                "{}",
                b.name
            );
        }
    }
    // Two livepatch relocation sections, and a .shstrtab of its own (LLVM's assembler shares
    // .strtab, ld does not).
    assert_eq!(secs.len(), bsecs.len() + 3);

    // Converted once: a second run leaves it alone.
    let again = klp_convert(&[&"--vmlinux", &vmlinux, &ko]);
    assert!(again.status.success());
    assert_eq!(std::fs::read(&ko).unwrap(), after.data);
}

#[test]
fn converts_module_target_and_sympos() {
    let dir = scratch();
    let vmlinux = vmlinux(&dir);
    let target = target_module(&dir);
    let helper = ".klp.sym.targetmod.helper,0";
    let dup2 = ".klp.sym.vmlinux.dup,2";
    let asm = format!(
        "{LIVEPATCH_MODINFO}{}{}\
         .text\ncall \"{helper}\"\ncall \"{dup2}\"\nret\n",
        declare(helper),
        declare(dup2)
    );
    let ko = assemble(&dir, "lp.ko", &asm);
    let out = klp_convert(&[&"--vmlinux", &vmlinux, &"--modules", &dir, &ko]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    readelf_clean(&ko);
    let after = Elf::read(&ko);
    assert_eq!(
        after.relocs(".klp.rela.targetmod.text"),
        vec![(1, elf::R_X86_64_PLT32.0, helper.into(), -4)]
    );
    assert_eq!(
        after.relocs(".klp.rela.vmlinux.text"),
        vec![(6, elf::R_X86_64_PLT32.0, dup2.into(), -4)]
    );
    let _ = target;
}

/// Runs the tool on a module that must be refused; returns its messages.
fn refused(asm_body: &str, declared: &[&str], extra: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let dir = scratch();
    let vmlinux = vmlinux(&dir);
    target_module(&dir);
    let mut asm = LIVEPATCH_MODINFO.to_owned();
    for d in declared {
        asm += &declare(d);
    }
    asm += asm_body;
    let ko = assemble(&dir, "lp.ko", &asm);
    let before = std::fs::read(&ko).unwrap();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"--vmlinux", &vmlinux, &"--modules", &dir];
    args.extend_from_slice(extra);
    args.push(&ko);
    let out = klp_convert(&args);
    assert!(!out.status.success());
    // No half-written module, no temporary file.
    assert_eq!(std::fs::read(&ko).unwrap(), before);
    assert!(!dir.join("lp.ko.klp-convert.tmp").exists());
    let err = String::from_utf8(out.stderr).unwrap();
    let prefix = format!("klp-convert: {}: ", ko.display());
    for line in err.lines() {
        assert!(line.starts_with(&prefix), "{line}");
    }
    err
}

#[test]
fn refuses_missing_symbol() {
    let sym = ".klp.sym.vmlinux.no_such_fn,0";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains(&format!(
            "{sym}: no symbol 'no_such_fn' in vmlinux's symbol table"
        )),
        "{err}"
    );
    // A debugging symbol is not in kallsyms either.
    let sym = ".klp.sym.vmlinux.not_kallsyms,0";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(err.contains("no symbol 'not_kallsyms'"), "{err}");
}

#[test]
fn refuses_ambiguous_symbol() {
    let sym = ".klp.sym.vmlinux.dup,0";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains(&format!("{sym}: 2 symbols named 'dup' in vmlinux")),
        "{err}"
    );
    assert!(err.contains("give sympos 1 to 2"), "{err}");
}

#[test]
fn refuses_sympos_out_of_range() {
    let sym = ".klp.sym.vmlinux.dup,3";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains(&format!(
            "{sym}: sympos 3 out of range: vmlinux has 2 symbols"
        )),
        "{err}"
    );
    let sym = ".klp.sym.vmlinux.target_fn,2";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains("sympos 2 out of range: vmlinux has 1 symbol named"),
        "{err}"
    );
}

#[test]
fn refuses_init_and_load_dependent_symbols() {
    let sym = ".klp.sym.vmlinux.early_fn,0";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains("is in vmlinux's .init.text, freed after init"),
        "{err}"
    );
    // `twice,1` is the text one while targetmod loads, but the only one after its init.
    let sym = ".klp.sym.targetmod.twice,1";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains("would resolve differently while targetmod loads"),
        "{err}"
    );
}

#[test]
fn refuses_gotpcrel() {
    let err = refused(
        &format!(".text\nmovq \"{FN}\"@GOTPCREL(%rip), %rax\n"),
        &[FN],
        &[],
    );
    assert!(
        err.contains(&format!(
            "{FN}: relocation R_X86_64_REX_GOTPCRELX at .text+0x3 is refused by x86-64 apply_relocate_add()"
        )),
        "{err}"
    );
}

#[test]
fn refuses_nonzero_target() {
    let err = refused(
        &format!(".data\n.reloc ., R_X86_64_64, \"{FN}\"\n.quad 0x1234\n"),
        &[FN],
        &[],
    );
    assert!(
        err.contains(&format!(
            "{FN}: non-zero bytes at .data+0x0 (3412000000000000)"
        )),
        "{err}"
    );
}

#[test]
fn refuses_special_sections() {
    let err = refused(
        &format!(".section __jump_table,\"aw\"\n.long 0\n.long 0\n.quad \"{FN}\"\n"),
        &[FN],
        &[],
    );
    assert!(
        err.contains(&format!(
            "{FN}: referenced from the special section __jump_table (at __jump_table+0x8)"
        )),
        "{err}"
    );
    let err = refused(
        &format!(".section __ex_table,\"a\"\n.long \"{FN}\" - .\n.long 0\n.long 0\n"),
        &[FN],
        &[],
    );
    assert!(err.contains("special section __ex_table"), "{err}");
}

#[test]
fn refuses_module_reference_from_init() {
    let sym = ".klp.sym.targetmod.helper,0";
    let err = refused(
        &format!(".section .init.text,\"ax\"\ncall \"{sym}\"\n"),
        &[sym],
        &[],
    );
    assert!(
        err.contains(&format!("{sym}: referenced from .init.text+0x1")),
        "{err}"
    );
}

#[test]
fn refuses_malformed_names_and_missing_objects() {
    let sym = ".klp.sym.vmlinux.no_pos";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(
        err.contains(&format!("{sym}: malformed livepatch symbol name")),
        "{err}"
    );
    let sym = ".klp.sym.nomod.helper,0";
    let err = refused(&format!(".text\ncall \"{sym}\"\n"), &[sym], &[]);
    assert!(err.contains("nomod: no nomod.ko found"), "{err}");
}

#[test]
fn refuses_non_livepatch_module() {
    let dir = scratch();
    let vmlinux = vmlinux(&dir);
    let asm = format!(
        ".section .modinfo,\"a\"\n.asciz \"name=lp\"\n{}.text\ncall \"{FN}\"\n",
        declare(FN)
    );
    let ko = assemble(&dir, "lp.ko", &asm);
    let out = klp_convert(&[&"--vmlinux", &vmlinux, &ko]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no livepatch module (no livepatch=Y"));
}

#[test]
fn leaves_other_modules_alone() {
    let dir = scratch();
    let ko = assemble(&dir, "plain.ko", ".text\ncall printk\nret\n");
    let before = std::fs::read(&ko).unwrap();
    let out = klp_convert(&[&ko]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&ko).unwrap(), before);
}
