// SPDX-License-Identifier: GPL-2.0

//! The names of livepatch symbols and relocation sections.
//!
//! Format: `Documentation/livepatch/module-elf-format.rst`, sections 3.1 and 4.2; parsed by
//! `klp_resolve_symbols()` and `klp_write_section_relocs()` in `kernel/livepatch/core.c` with
//! `sscanf(".klp.sym.%55[^.].%511[^,],%lu")` and `sscanf(".klp.rela.%55[^.]")`.

/// The prefix of a livepatch symbol.
pub const SYM_PREFIX: &str = ".klp.sym.";
/// The prefix of a livepatch relocation section.
pub const RELA_PREFIX: &str = ".klp.rela.";
/// The longest object name core.c reads (`%55[^.]`: `MODULE_NAME_LEN - 1` on 64-bit).
pub const OBJ_NAME_MAX: usize = 55;
/// The longest symbol name core.c reads (`%511[^,]`: `KSYM_NAME_LEN - 1`).
pub const SYM_NAME_MAX: usize = 511;

/// A symbol of another object, as a livepatch declares it: `.klp.sym.<obj>.<name>,<pos>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KlpSym {
    /// `vmlinux` or a module name.
    pub obj: String,
    /// The symbol's name in that object.
    pub name: String,
    /// Its position among the symbols of that name (from 1); 0 when the name is unique.
    pub pos: u64,
}

impl KlpSym {
    /// Parses a livepatch symbol name; `None` when `full` does not start with `.klp.sym.`.
    ///
    /// Stricter than core.c's `sscanf`, which would also take a name it then truncates or a
    /// position followed by garbage: every such name is an error here, before it can load.
    pub fn parse(full: &str) -> Option<Result<Self, String>> {
        let rest = full.strip_prefix(SYM_PREFIX)?;
        Some(Self::parse_rest(rest))
    }

    fn parse_rest(rest: &str) -> Result<Self, String> {
        let (obj, rest) = rest
            .split_once('.')
            .ok_or("malformed livepatch symbol name: no '.' after the object name")?;
        let (name, pos) = rest
            .rsplit_once(',')
            .ok_or("malformed livepatch symbol name: no ',<sympos>'")?;
        if obj.is_empty() || obj.len() > OBJ_NAME_MAX {
            return Err(format!(
                "object name '{obj}' must have 1 to {OBJ_NAME_MAX} characters"
            ));
        }
        if name.is_empty() || name.len() > SYM_NAME_MAX || name.contains(',') {
            return Err(format!(
                "symbol name must have 1 to {SYM_NAME_MAX} characters and no ','"
            ));
        }
        if pos.is_empty() || !pos.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("sympos '{pos}' is not a decimal number"));
        }
        let pos = pos
            .parse()
            .map_err(|_| format!("sympos '{pos}' is too large"))?;
        Ok(KlpSym {
            obj: obj.to_owned(),
            name: name.to_owned(),
            pos,
        })
    }

    /// Whether the object is the kernel image.
    pub fn is_vmlinux(&self) -> bool {
        self.obj == "vmlinux"
    }
}

/// The name of the livepatch relocation section of object `obj` for the section `target`:
/// `.klp.rela.<obj>.<target without its leading dot>`, e.g. `.klp.rela.vmlinux.text.foo`.
pub fn rela_section_name(obj: &str, target: &str) -> String {
    format!(
        "{RELA_PREFIX}{obj}.{}",
        target.strip_prefix('.').unwrap_or(target)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let s = KlpSym::parse(".klp.sym.vmlinux.cmdline_proc_show,0")
            .unwrap()
            .unwrap();
        assert_eq!(
            s,
            KlpSym {
                obj: "vmlinux".into(),
                name: "cmdline_proc_show".into(),
                pos: 0
            }
        );
        // A name may contain dots (`foo.isra.0`), the object may not.
        let s = KlpSym::parse(".klp.sym.btrfs.can_modify.isra.3,2")
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.obj.as_str(), s.name.as_str(), s.pos),
            ("btrfs", "can_modify.isra.3", 2)
        );
        assert!(KlpSym::parse("printk").is_none());
    }

    #[test]
    fn refuses() {
        for bad in [
            ".klp.sym.vmlinux",
            ".klp.sym.vmlinux.foo",
            ".klp.sym.vmlinux.foo,",
            ".klp.sym.vmlinux.foo,1x",
            ".klp.sym.vmlinux.,1",
            ".klp.sym..foo,1",
            ".klp.sym.vmlinux.a,b,1",
            ".klp.sym.vmlinux.foo,99999999999999999999999",
        ] {
            assert!(KlpSym::parse(bad).unwrap().is_err(), "{bad}");
        }
        let long = format!(".klp.sym.{}.foo,0", "m".repeat(56));
        assert!(KlpSym::parse(&long).unwrap().is_err());
    }

    #[test]
    fn rela_names() {
        assert_eq!(
            rela_section_name("vmlinux", ".text.cmdline_proc_show"),
            ".klp.rela.vmlinux.text.cmdline_proc_show"
        );
        assert_eq!(rela_section_name("ext4", ".text"), ".klp.rela.ext4.text");
    }
}
