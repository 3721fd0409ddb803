#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The safe API of rust/livepatch/ is sound (issue 19): safe code in a module
# cannot reach freed memory, a wrong type or an unloaded module through it.
# Two modules without `unsafe` of their own, test_rust_api_sound_a and _b
# (test_modules/), are loaded (A, then B), then unloaded (A, then B); one
# subtest per hole the review found checks what they and the table printed:
#
#  1. shadow locks made by A, taken by B after A unloaded: their lockdep
#     class is the table's, lockdep reports nothing (run.sh fails the test
#     on any report);
#  2. B registers A's ids with other types of equal size (a KBox<u64> for a
#     u64; two u32 fields swapped): refused, the pr_err names both types and
#     both modules; a type declared alike is accepted;
#  3. A forgets a registration (core::mem::forget) with frees queued, and
#     unloads: the table drops the registration while A's code is still
#     there, every destructor runs before, nothing is left (KASAN silent);
#  4. at B's load, allocations race the last registration's drop (32
#     cycles): nothing left behind, nothing read as the type that took the
#     id next;
#  5. the examples of the API's rustdoc, compiled into rust_doc_examples.ko
#     (test_modules/gen_doc_examples.py), run: each prints ok.
#
# Sleeping operations in atomic context (hole 5) are checked by
# test-api-shadow.sh; what must not compile, at build time (compile_fail/,
# checked by the Makefile).

. "$(dirname "$0")/functions.sh"
require_root

A=test_rust_api_sound_a
B=test_rust_api_sound_b

ktap_print_header
ktap_set_plan 5

[ -d /sys/kernel/debug/tracing ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
shadow_table_load || exit "$KSFT_FAIL"
# The test's own copy of the kernel log: each read of the whole ring buffer
# costs seconds under TCG.
dmesg_follow

# The modules' whole life, then the subtests read the log.
dmesg_mark
mark=$MARK
t0=$SECONDS
ran=0
load_mod $A && load_mod $B && unload_mod $A && {
	forgotten_left=$(shadow_count 0x7e570030)
	unload_mod $B
} && ran=1
ktap_print_msg "A and B loaded and unloaded: $((SECONDS - t0)) s"
log=$(dmesg_since "$mark")
# The table's variables per id, once (the table lists the ids that have some)
ids=$(cat "$SHADOW_DEBUGFS/ids" 2>/dev/null)

# left(id) - variables of id left when both modules were gone
left() {
	local l
	while read -r l; do
		[[ $l == "id $1 "* ]] && { set -- $l; echo "$4"; return; }
	done <<<"$ids"
	echo 0
}

# logged(line) - the log of the modules' life has this line (bash matching:
# each grep costs about a second under TCG)
logged() {
	[[ $'\n'$log$'\n' == *$'\n'"$1"$'\n'* ]]
}

# passes(module, name...) - the module printed PASS for each name, and no FAIL
passes() {
	local mod=$1 name
	shift
	if [[ $'\n'$log == *$'\n'"$mod: FAIL "* ]]; then
		echo "$log" | grep "^$mod: FAIL " | sed 's/^/# /'
		return 1
	fi
	for name in "$@"; do
		logged "$mod: PASS $name" || {
			ktap_print_msg "no '$mod: PASS $name'"
			return 1
		}
	done
}

lock_outlives_module() {
	[ $ran = 1 ] || return 1
	passes $A "made 4 shadow locks and took each once" &&
		passes $B "took the 4 locks $A made, after it unloaded" &&
		expect_eq "variables of 0x7e570010" 0 "$(left 0x7e570010)"
}

types_of_equal_size() {
	local line
	[ $ran = 1 ] || return 1
	passes $B "State (KBox<u64> for u64) refused" "Pair (fields swapped) refused" \
		"Same (declared the same way) accepted, reads 42" || return 1
	# The table's pr_err names both sides: types, layouts and modules.
	line=$(echo "$log" | grep -E "^rust_klp_shadow: Shadow id 0x7e570020 is registered by $A for type $A::State \(size 8, align 8, layout 0x[0-9a-f]{16}\); type $B::State \(size 8, align 8, layout 0x[0-9a-f]{16}\) of $B refused$")
	[ -n "$line" ] || { ktap_print_msg "no pr_err naming both sides for id 0x7e570020"; return 1; }
	ktap_print_msg "$line"
	expect_eq "variables of 0x7e570020" 0 "$(left 0x7e570020)"
}

forgotten_registration() {
	local drops
	[ $ran = 1 ] || return 1
	[[ $'\n'$log == *$'\n'"rust_klp_shadow: Shadow id 0x7e570030: $A unloads with a registration it never dropped"* ]] || {
		ktap_print_msg "the table did not drop the forgotten registration"
		return 1
	}
	# Every destructor ran, each once, before A was gone.
	drops=$(echo "$log" | sed -n "s/^$A: dropped \([0-9]*\)$/\1/p" | sort -n | tr '\n' ' ')
	expect_eq "destructors run" "0 1 2 3 4 5 " "$drops" &&
		expect_eq "variables of 0x7e570030 after A unloaded" 0 "$forgotten_left"
}

alloc_races_last_drop() {
	[ $ran = 1 ] || return 1
	local l
	while read -r l; do
		[[ $l == "$B: PASS nothing left behind"* ]] && ktap_print_msg "$l"
	done <<<"$log"
	passes $B "no variable read as another type" &&
		[[ $'\n'$log == *$'\n'"$B: PASS nothing left behind by allocations racing the last drop"* ]] &&
		expect_eq "variables of 0x7e570040" 0 "$(left 0x7e570040)"
}

doc_examples() {
	local mark out n
	dmesg_mark
	mark=$MARK
	load_mod rust_doc_examples || return 1
	unload_mod rust_doc_examples || return 1
	out=$(dmesg_since "$mark" | sed -n 's/^rust_doc_examples: //p')
	n=$(echo "$out" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p')
	echo "$out" | grep '^not ok' | sed 's/^/# /'
	[ -n "$n" ] && [ "$n" -gt 0 ] || { ktap_print_msg "no plan"; return 1; }
	expect_eq "doc examples ok" "$n" "$(echo "$out" | grep -c '^ok ')"
}

check "a lock made by a module that unloaded, taken by another: no lockdep report" lock_outlives_module
check "two modules, same id, different types of equal size: refused" types_of_equal_size
check "a forgotten registration, then its module unloads: destructors run before, none left" forgotten_registration
check "allocations racing the last registration's drop: nothing left, no wrong type" alloc_races_last_drop
check "the rustdoc examples run" doc_examples

for m in $B $A rust_doc_examples; do
	is_loaded $m && unload_mod $m
done
shadow_table_unload

ktap_finished
