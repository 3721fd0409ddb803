#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_klp_shadow at scale: MILLION (default 1000000) live variables of one
# id.  The table resizes itself so lookups stay O(1): the longest probe stays
# short, every lookup hits or misses correctly, and free_all leaves nothing.
# Timings are printed (KTAP comments) for the record.
#
#  1. all variables allocated; debugfs counts them;
#  2. the longest probe is short (at most 4 lines of 6 slots) at that size;
#  3. every variable is found, a missing id is not;
#  4. free_all frees them all: debugfs shows 0;
#  5. the table is back at its initial size when free_all returns (it may
#     sleep, so it shrinks every shard inline; no worker is involved).

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_klp_shadow
MILLION=${MILLION:-1000000}
ID=0x3001

ktap_print_header
ktap_set_plan 5

shadow_table_load || exit "$KSFT_FAIL"
load_mod $MOD million="$MILLION" || exit "$KSFT_FAIL"
initial=$(shadow_stat lines)

# timed(case) - run a case, print the wall time and the module's timings
timed() {
	local t0 t1 mark rc=0
	dmesg_mark
	mark=$MARK
	t0=${EPOCHREALTIME/./}
	shadow_case "$1" || rc=1
	t1=${EPOCHREALTIME/./}
	ktap_print_msg "$1: $(( (t1 - t0) / 1000 )) ms wall"
	dmesg_since "$mark" | grep -o 'million: .*' | while read -r l; do ktap_print_msg "$l"; done
	return $rc
}

alloc() {
	timed million_alloc &&
	expect_eq "variables of $ID" "$MILLION" "$(shadow_count $ID)"
}
check "alloc $MILLION variables" alloc

probes() {
	local c
	c=$(shadow_stat max_probe)
	ktap_print_msg "stats: $(tr '\n' ' ' <"$SHADOW_DEBUGFS/stats")"
	[ -n "$c" ] && [ "$c" -le 4 ] || { ktap_print_msg "max_probe $c"; return 1; }
}
check "longest probe at most 4 lines" probes

check "get of every variable" timed million_get

free_all() {
	timed million_free &&
	expect_eq "variables of $ID" 0 "$(shadow_count $ID)" &&
	expect_eq "live variables" 0 "$(shadow_total)"
}
check "free_all" free_all

check "back to $initial lines" expect_eq lines "$initial" "$(shadow_stat lines)"

unload_mod $MOD
shadow_table_unload
ktap_finished
