#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Instructions per operation and per function, from QEMU's log of the guest code it ran.

    profile.py RUN_DIR OP_FUNCTION KO [KO ...]

RUN_DIR is a `scripts/bench --profile` run: exec.log (QEMU's -d exec,nochain
log, restricted by -dfilter to the module area: one line per translation
block executed, with its guest address) and guest/kallsyms.txt (the guest's
/proc/kallsyms lines of the loaded modules).  KO are the modules that ran
(their code is read back with objdump).  OP_FUNCTION is the exported function
one operation of the measured test enters (rust_klp_shadow_alloc for
alloc_free, rust_klp_shadow_get for get_hit and get_miss, ...): the figures
are per call of it.

A translation block of x86 code starts at the address QEMU logs and ends at
the first jump, call or return (TCG ends a block at every branch), so each
logged line adds the instructions from its address to that branch to the
function that holds the address.  Calls into the kernel (kmalloc, locks,
call_rcu) are outside the logged area: their instructions are not counted
here, only the ones of the modules.  Everything the modules ran during the
run counts, the table's fill and teardown too, so divide with care: the
per-operation figure is close to the cost of one operation only when the
timed operations dominate the run (a sample of 2 ms is thousands of them).

Prints, per function (of the table's module or the benchmark's): instructions
per operation, calls per operation.
"""

import bisect
import collections
import re
import subprocess
import sys

# The mnemonics that end a translation block.
BRANCH = re.compile(r"^(j[a-z]*|call[a-z]*|ret[a-z]*|iret[a-z]*|sysret|syscall|ud2|int3?)$")


def functions(kos):
    """Each function's instructions, as (offset from its start, mnemonic), from objdump."""
    funcs = {}
    for ko in kos:
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", ko],
                             capture_output=True, text=True, check=True).stdout
        cur, base = None, 0
        for line in out.splitlines():
            m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
            if m:
                cur, base = m.group(2), int(m.group(1), 16)
                funcs.setdefault(cur, [])
                continue
            m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)", line)
            if m and cur:
                funcs[cur].append((int(m.group(1), 16) - base, m.group(2)))
    return funcs


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    run, op, kos = sys.argv[1], sys.argv[2], sys.argv[3:]
    funcs = functions(kos)
    syms, module = [], {}
    with open(f"{run}/guest/kallsyms.txt") as f:
        for line in f:
            addr, _, name, mod = (line.split() + [""])[:4]
            if name in funcs:
                syms.append((int(addr, 16), name))
                module[name] = mod.strip("[]")
    syms.sort()
    if not syms:
        sys.exit("profile: no symbol of the modules in guest/kallsyms.txt")
    addrs = [a for a, _ in syms]
    entry = {a: n for a, n in syms}

    blocks = {}

    def block(pc):
        """(function, instructions) of the translation block at pc."""
        if pc not in blocks:
            i = bisect.bisect_right(addrs, pc) - 1
            name, n = None, 0
            if i >= 0:
                start, name = syms[i]
                for off, mnemonic in funcs[name]:
                    if off < pc - start:
                        continue
                    n += 1
                    if BRANCH.match(mnemonic):
                        break
                if n == 0:
                    name = None
            blocks[pc] = (name, n)
        return blocks[pc]

    insns, calls = collections.Counter(), collections.Counter()
    unknown = 0
    with open(f"{run}/exec.log", errors="replace") as f:
        for line in f:
            m = re.search(r"/([0-9a-f]{16})/", line)
            if not m:
                continue
            pc = int(m.group(1), 16)
            name, n = block(pc)
            if name is None:
                unknown += 1
                continue
            insns[name] += n
            if pc in entry:
                calls[name] += 1
    ops = calls[op]
    if not ops:
        sys.exit(f"profile: {op} never ran")

    shown = [name for name, n in insns.most_common() if n / ops >= 0.5]
    # Rust's v0 symbols, demangled by binutils' c++filt (crate hashes dropped).
    plain = subprocess.run(["c++filt"], input="\n".join(shown), capture_output=True,
                           text=True, check=True).stdout.splitlines()
    plain = {m: re.sub(r"\[[0-9a-f]+\]", "", p) for m, p in zip(shown, plain)}

    per_module = collections.Counter()
    for name, n in insns.items():
        per_module[module[name]] += n
    print(f"{ops} calls of {op}; instructions per call, by module (the kernel functions "
          f"they call not included): " +
          ", ".join(f"{m} {n / ops:.1f}" for m, n in per_module.most_common()) +
          f"; {unknown} blocks outside any symbol")
    print(f"{'insn/op':>8}  {'calls/op':>8}  {'module':<22}  function")
    for name in shown:
        print(f"{insns[name] / ops:8.1f}  {calls[name] / ops:8.2f}  {module[name]:<22}  "
              f"{plain[name]}")


if __name__ == "__main__":
    main()
