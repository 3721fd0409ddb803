#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_klp_shadow's promises beyond the upstream selftest, one KTAP subtest
# per case of test_modules/test_rust_klp_shadow.c (which checks the results
# in the kernel and reports PASS/FAIL), plus what only the log and debugfs
# show:
#
#  - edge cases: NULL object, size 0, too large (a pr_err, no WARN), data
#    zeroed and 16-byte aligned, NULL ctor/dtor, free of a missing variable,
#    free_all of an empty id;
#  - errors: duplicate alloc (the upstream WARN text, and nothing changed),
#    ctor failure (the upstream pr_err text, nothing inserted);
#  - the ctor runs once, in atomic context, before the variable is visible;
#  - calls from softirq (timer) and hardirq (hrtimer) with GFP_ATOMIC;
#  - RCU-deferred frees: the destructor waits for readers;
#  - typed ids: equal types share an id, other types are refused with a
#    pr_err naming both, the last unregister frees what is left with the
#    type's destructor, once; debugfs shows the type's name;
#  - nothing is left in the table afterwards.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_klp_shadow
PLAIN="null_obj size0 zeroed_aligned null_ctor_dtor get_or_alloc_existing
ctor_once_atomic dtor_args free_missing free_all softirq hardirq free_rcu"

ktap_print_header
ktap_set_plan $(( $(echo $PLAIN | wc -w) + 6 ))

shadow_table_load || exit "$KSFT_FAIL"
load_mod $MOD || exit "$KSFT_FAIL"

for c in $PLAIN; do
	check "$c" shadow_case "$c"
done

# log_has(mark, extended regex, what) - the log since mark has a matching line
log_has() {
	dmesg_since "$1" | grep -qE "$2" && return 0
	ktap_print_msg "no $3 in the log"
	return 1
}

too_large() {
	local mark
	dmesg_mark
	mark=$MARK
	shadow_case too_large || return 1
	log_has "$mark" "rust_klp_shadow: Shadow variable <[^,]+, 5000> of [0-9]+ bytes is too large \(at most [0-9]+\)" \
		"'too large' pr_err"
}
check "too_large (pr_err, no WARN)" too_large

duplicate() {
	local mark rc=0
	dmesg_mark
	mark=$MARK
	expect_splat_begin
	shadow_case duplicate || rc=1
	expect_splat_end
	log_has "$mark" "Duplicate shadow variable <[^,]+, 5000>" "duplicate WARN" || rc=1
	return $rc
}
check "duplicate (WARN, existing untouched)" duplicate

ctor_fail() {
	local mark
	dmesg_mark
	mark=$MARK
	shadow_case ctor_fail || return 1
	log_has "$mark" "rust_klp_shadow: Failed to construct shadow variable <[^,]+, 5000> \(-28\)" \
		"ctor failure pr_err"
}
check "ctor_fail (pr_err, nothing inserted)" ctor_fail

typed() {
	local mark
	dmesg_mark
	mark=$MARK
	shadow_case typed || return 1
	log_has "$mark" "Shadow id 0x5100 is registered by test_rust_klp_shadow for type test_rust_klp_shadow::Typed \(size 8, align 8, layout 0x0000000000000001\); type test_rust_klp_shadow::Other \(size 8, align 8, layout 0x0000000000000002\) of test_rust_klp_shadow refused" \
		"type conflict pr_err" &&
	log_has "$mark" "Shadow id 0x5101: type test_rust_klp_shadow::Page \(size 64, align 64\) of test_rust_klp_shadow refused" \
		"alignment pr_err" &&
	log_has "$mark" "Shadow id 0x5100: last registration of type test_rust_klp_shadow::Typed gone with 5 live shadow variables" \
		"leftover warning"
}
check "typed (registration rules, leftovers freed once)" typed

typed_debugfs() {
	shadow_case typed_register || return 1
	expect_eq "ids line" "id 0x5100 count 3 bytes 24 type test_rust_klp_shadow::Typed" \
		"$(grep '^id 0x5100 ' "$SHADOW_DEBUGFS/ids")" || return 1
	shadow_case typed_unregister || return 1
	expect_eq "variables of 0x5100" 0 "$(shadow_count 0x5100)"
}
check "typed ids in debugfs" typed_debugfs

check "no variables left" expect_eq "live variables" 0 "$(shadow_total)"

unload_mod $MOD
shadow_table_unload
ktap_finished
