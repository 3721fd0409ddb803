#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Modules that must not compile: each case is built alone (a Kbuild single
# target) and must fail with exactly the compiler errors its `//! expect:`
# lines name, no more and no fewer, so that it fails for the rule it checks
# and not for an unrelated reason (a typo, an API change).
#
#   check.sh KDIR case.rs...
#
# Prints one line per case; exits non-zero if any case compiled, or failed
# with other errors.  Run by the kselftests' Makefile at build time.
set -uo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
kdir=$1
shift
status=0
for src in "$@"; do
	case=$(basename "$src" .rs)
	# CLIPPY= : under `make modules CLIPPY=1` (inherited through MAKEFLAGS)
	# kbuild would lint these with the clippy-driver on PATH, rustup's,
	# which cannot read the kernel's crates; lints say nothing of code that
	# must not compile.
	if out=$(make -C "$kdir" M="$dir" LLVM=1 RUSTC="${RUSTC:-/usr/bin/rustc}" \
		CLIPPY= "$case.o" 2>&1); then
		echo "compile-fail: FAIL $case: it compiled"
		status=1
		continue
	fi
	want=$(sed -n 's|^//! expect: ||p' "$dir/$case.rs" | sort -u)
	got=$(echo "$out" | grep -E '^error(\[E[0-9]+\])?: ' |
		grep -v '^error: aborting due to' | sort -u)
	if [ -z "$want" ] || [ "$want" != "$got" ]; then
		echo "compile-fail: FAIL $case: expected errors:"
		echo "${want:-(none listed)}" | sed 's/^/    /'
		echo "  got:"
		echo "${got:-(none: the build failed for another reason)}" | sed 's/^/    /'
		echo "$out" | grep -vE '^make' | head -40 | sed 's/^/  | /'
		status=1
		continue
	fi
	echo "compile-fail: ok $case: $(echo "$want" | head -1)"
done
exit $status
