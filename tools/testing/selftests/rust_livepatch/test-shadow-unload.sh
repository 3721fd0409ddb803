#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Unloading rust_klp_shadow with live variables: the table reports them per
# id (it does not know their destructors, and says so) and frees them, so
# kmemleak finds nothing.
#
#  1. debugfs shows the 10 variables (240 bytes) left by the test module;
#  2. the unload warns with their id, count and bytes;
#  3. an explicit kmemleak scan afterwards reports nothing.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_klp_shadow

ktap_print_header
if is_loaded rust_klp_shadow; then
	ktap_skip_all "rust_klp_shadow is loaded (another test uses it)"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 3
# No "clear" of older reports first: it would hide a leak of an earlier
# test from run.sh's final check too.  A leak of an earlier test in this
# boot fails this check as well, with its backtrace naming the culprit.

load_mod rust_klp_shadow || exit "$KSFT_FAIL"
load_mod $MOD || exit "$KSFT_FAIL"
shadow_case leave_keep
t0=$EPOCHREALTIME
check "debugfs shows the variables left" expect_eq "ids line" \
	"id 0x4001 count 10 bytes 240 type -" "$(grep '^id 0x4001 ' "$SHADOW_DEBUGFS/ids")"
unload_mod $MOD

dmesg_mark

mark=$MARK
unload_mod rust_klp_shadow
warning() {
	dmesg_since "$mark" | grep -qF "rust_klp_shadow: unloading with 10 live shadow variables of id 0x4001 (240 bytes): freed without their destructors, which the table does not know" && return 0
	ktap_print_msg "no unload warning in the log"
	return 1
}
check "unload warns about the variables left" warning

leaks() {
	local out
	[ -w $KMEMLEAK ] || { ktap_print_msg "no kmemleak"; return 1; }
	# kmemleak reports only objects older than 5 s, found unreferenced twice.
	kmemleak_scans "$t0"
	out=$(cat $KMEMLEAK)
	[ -z "$out" ] && return 0
	echo "$out" | head -40 | sed 's/^/# kmemleak: /'
	return 1
}
check "kmemleak clean after the unload" leaks

ktap_finished
