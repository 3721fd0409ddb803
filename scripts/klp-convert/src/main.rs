// SPDX-License-Identifier: GPL-2.0

//! `klp-convert`: livepatch relocations for Rust livepatches, written into the final `.ko`.
//!
//! This is the project's own tool, written for Rust livepatches and inspired by the klp-convert
//! series proposed upstream; like that series' last version it runs on the final `.ko`: `ld -r`
//! would not keep the livepatch flags, and an out-of-tree module has no build step between
//! modpost and the `.ko` that we could hook.
//!
//! A Rust livepatch declares a symbol of another object with `klp_extern!`
//! (`rust/livepatch/klp_extern.rs`): an undefined weak symbol named
//! `.klp.sym.<object>.<name>,<sympos>`, which modpost ignores. For each such symbol this tool
//!
//! 1. checks that `<name>,<sympos>` names exactly one symbol in the object's symbol table (read
//!    from `vmlinux` or the object's `.ko`), counted as `klp_find_object_symbol()` counts;
//! 2. checks each relocation against it: a type x86-64's `apply_relocate_add()` writes, zero
//!    bytes where it writes, not from a special section the kernel reads before `klp` resolves
//!    the symbol;
//! 3. moves those relocations into `.klp.rela.<object>.<section>` (`SHT_RELA`, `SHF_ALLOC |
//!    SHF_INFO_LINK | SHF_RELA_LIVEPATCH`) and marks the symbol `SHN_LIVEPATCH`, as
//!    `Documentation/livepatch/module-elf-format.rst` describes;
//! 4. drops the guard relocations `klp_extern!` emits so that an unconverted module cannot load.
//!
//! Any problem is an error naming the module and the symbol; the module is then left as it was
//! (the new contents are written to a temporary file renamed over the old one). A module that
//! declares no such symbol, or was converted already, is left alone.
//!
//! ```text
//! klp-convert [--vmlinux FILE] [--modules DIR]... [--target OBJ=FILE]... [-v] MODULE.ko...
//! ```
//!
//! `--modules DIR` finds a module object's `.ko` under `DIR`; `-v` prints a line for each
//! module converted.

mod convert;
mod klpsym;
mod target;

use convert::{Outcome, Targets};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str =
    "usage: klp-convert [--vmlinux FILE] [--modules DIR]... [--target OBJ=FILE]... \
                     [-v] MODULE.ko...";

/// Where the objects' symbol tables are.
#[derive(Default)]
struct Files {
    vmlinux: Option<PathBuf>,
    /// Given with `--target OBJ=FILE`.
    explicit: HashMap<String, PathBuf>,
    /// Searched for `OBJ.ko` (or with `-` for `_`) with `--modules`.
    dirs: Vec<PathBuf>,
    /// The `.ko` files found under `dirs`, by module name; read once.
    found: Option<HashMap<String, Vec<PathBuf>>>,
}

/// Every `.ko` under `dir`, by the module name its file name gives.
fn find_modules(dir: &Path, out: &mut HashMap<String, Vec<PathBuf>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            find_modules(&path, out);
        } else if let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            let name = stem.replace('-', "_");
            out.entry(name)
                .or_default()
                .push(fs::canonicalize(&path).unwrap_or(path));
        }
    }
}

impl Files {
    fn module_file(&mut self, obj: &str) -> Result<PathBuf, String> {
        if let Some(path) = self.explicit.get(obj) {
            return Ok(path.clone());
        }
        let dirs = &self.dirs;
        let found = self.found.get_or_insert_with(|| {
            let mut found = HashMap::new();
            for dir in dirs {
                find_modules(dir, &mut found);
            }
            found
        });
        let mut paths: Vec<PathBuf> = found.get(obj).cloned().unwrap_or_default();
        paths.sort();
        paths.dedup();
        match paths.len() {
            0 => Err(format!(
                "no {obj}.ko found (give --target {obj}=FILE or --modules DIR)"
            )),
            1 => Ok(paths.remove(0)),
            _ => Err(format!(
                "several {obj}.ko found ({}): give --target {obj}=FILE",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl Targets for Files {
    fn table(&mut self, obj: &str, names: &HashSet<&str>) -> Result<target::Table, String> {
        let vmlinux = obj == "vmlinux";
        let path = if vmlinux {
            self.vmlinux
                .clone()
                .ok_or("refers to vmlinux: give --vmlinux FILE")?
        } else {
            self.module_file(obj)?
        };
        let data = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !vmlinux {
            let name =
                target::modinfo(&data, "name").map_err(|e| format!("{}: {e}", path.display()))?;
            if name.is_some_and(|n| n != obj.as_bytes()) {
                return Err(format!("{} is not the module {obj}", path.display()));
            }
        }
        target::read(&data, vmlinux, names).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Writes `data` to a temporary file beside `path`, then renames it over `path`.
fn replace(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".klp-convert.tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::set_permissions(&tmp, fs::metadata(path)?.permissions())?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn main() -> ExitCode {
    let mut files = Files::default();
    let mut modules = Vec::new();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or_else(|| format!("{arg} needs {what}"));
        let parsed = match arg.as_str() {
            "--vmlinux" => value("a file").map(|v| files.vmlinux = Some(v.into())),
            "--modules" => value("a directory").map(|v| files.dirs.push(v.into())),
            "--target" => value("OBJ=FILE").and_then(|v| match v.split_once('=') {
                Some((obj, file)) if !obj.is_empty() && !file.is_empty() => {
                    files.explicit.insert(obj.to_owned(), file.into());
                    Ok(())
                }
                _ => Err(format!("--target {v}: expected OBJ=FILE")),
            }),
            "-v" | "--verbose" => {
                verbose = true;
                Ok(())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') => Err(format!("unknown option {s}")),
            _ => {
                modules.push(PathBuf::from(&arg));
                Ok(())
            }
        };
        if let Err(e) = parsed {
            eprintln!("klp-convert: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if modules.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }

    let mut failed = false;
    for module in &modules {
        let shown = module.display();
        let outcome = fs::read(module)
            .map_err(|e| vec![e.to_string()])
            .and_then(|data| convert::convert(&data, &mut files));
        match outcome {
            Ok(Outcome::Unchanged) => {}
            Ok(Outcome::Converted {
                data,
                symbols,
                relocations,
            }) => {
                if let Err(e) = replace(module, &data) {
                    eprintln!("klp-convert: {shown}: {e}");
                    failed = true;
                } else if verbose {
                    // As Kbuild shows its steps.
                    println!(
                        "  KLP     {shown}: {symbols} livepatch symbol(s), \
                         {relocations} relocation(s)"
                    );
                }
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("klp-convert: {shown}: {e}");
                }
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
