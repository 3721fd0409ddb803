#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The typed shadow variable API of rust/livepatch/ (klp::ShadowKey), with
# test_modules/test_rust_api.rs: it runs its checks at load and prints
# "PASS <check>" or "FAIL <check>: <why>" per check, leaves 3 variables for
# the table's teardown, and checks at unload that each variable it allocated
# was dropped exactly once.
#
#  1. every check at load passed, the expected ones all ran;
#  2. the table refused the same id with another type (EINVAL): its pr_err
#     names both types and the module;
#  3. while loaded, debugfs shows exactly the 3 variables left (failed
#     initialisers, freed and free_all'ed variables are gone);
#  4. at unload, the teardown dropped the 3 variables and every variable was
#     dropped once; debugfs shows nothing left; the registration the module
#     dropped in atomic context (a check at load) was dropped by the table
#     when the module unloaded.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_api
ID=0x7e570001
ID_FLAG=0x7e570002
ID_ATOMIC_DROP=0x7e570004

CHECKS="register
same id, other type refused (EINVAL)
get and alloc
duplicate alloc is EEXIST
get_or_alloc
failed initialiser inserts nothing
free drops once
free waits for readers
free_all drops each once
shadow variable as a flag
unregistered key refused
sleeping operations refused in atomic context
second registration
variables left for teardown"

ktap_print_header
ktap_set_plan 4

[ -d /sys/kernel/debug/tracing ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
# The table module: load it if nobody did, and unload it after.
table_loaded_here=0
if ! is_loaded rust_klp_shadow; then
	load_mod rust_klp_shadow || exit "$KSFT_FAIL"
	table_loaded_here=1
fi

# The test's own copy of the kernel log: each read of the whole ring buffer
# costs seconds under TCG.
dmesg_follow

dmesg_mark

mark=$MARK
loaded=0
load_mod $MOD && loaded=1

# results(mark) - the PASS/FAIL lines of the module since mark
results() {
	dmesg_since "$1" | sed -n "s/^$MOD: \(PASS\|FAIL\) /\1 /p"
}

test_load_checks() {
	local out fails
	[ $loaded = 1 ] || return 1
	out=$(results "$mark")
	fails=$(echo "$out" | grep '^FAIL')
	[ -z "$fails" ] || { echo "$fails" | sed 's/^/# /'; return 1; }
	expect_transcript "$(echo "$CHECKS" | sed 's/^/PASS /')" "$out"
}

test_type_clash() {
	local log
	[ $loaded = 1 ] || return 1
	# The table's pr_err names the id's type and the refused one, and the module.
	log=$(dmesg_since "$mark" | grep -i "$ID is registered by $MOD for type $MOD::Tracked" |
		grep "type u32 (size 4, align 4, layout 0x[0-9a-f]*) of $MOD refused")
	[ -n "$log" ] || { ktap_print_msg "no pr_err naming $MOD::Tracked and u32 for id $ID"; return 1; }
	ktap_print_msg "table: $log"
}

test_debugfs_counts() {
	[ $loaded = 1 ] || return 1
	expect_eq "variables of $ID while loaded" 3 "$(shadow_count $ID)" &&
		expect_eq "variables of $ID_FLAG while loaded" 0 "$(shadow_count $ID_FLAG)"
}

test_teardown() {
	local mark2 out log
	[ $loaded = 1 ] || return 1
	dmesg_mark
	mark2=$MARK
	unload_mod $MOD || return 1
	log=$(dmesg_since "$mark2")
	out=$(echo "$log" | sed -n "s/^$MOD: \(PASS\|FAIL\) /\1 /p")
	expect_transcript "PASS teardown dropped the 3 variables left
PASS every variable dropped once (allocated 9, dropped 9)" "$out" &&
		expect_eq "variables of $ID after unload" 0 "$(shadow_count $ID)" || return 1
	echo "$log" | grep -q "Shadow id $ID_ATOMIC_DROP: $MOD unloads with a registration it never dropped" || {
		ktap_print_msg "the registration dropped in atomic context was not dropped at unload"
		return 1
	}
}

check "checks at load" test_load_checks
check "same id with another type refused, pr_err names both" test_type_clash
check "debugfs counts while loaded" test_debugfs_counts
check "teardown drops each variable once" test_teardown

is_loaded $MOD && unload_mod $MOD
[ $table_loaded_here = 1 ] && unload_mod rust_klp_shadow

ktap_finished
