#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_klp_shadow under concurrency: the stress case of
# test_modules/test_rust_klp_shadow.c runs STRESS_THREADS (default 3)
# kthreads of random get/alloc/get_or_alloc/free/free_rcu/free_all on 4096
# shared objects, each with its own id so that it keeps an exact model of its
# variables and checks every result against it, while an hrtimer does the
# same in hardirq context.  Inserts and frees resize the shards all the
# time.  lockdep, KASAN and kmemleak watch (run.sh fails on any report).
#
#  1. every result matched its model;
#  2. nothing is left in the table afterwards.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_klp_shadow

ktap_print_header
ktap_set_plan 2

shadow_table_load || exit "$KSFT_FAIL"
load_mod $MOD stress_threads="${STRESS_THREADS:-3}" stress_ops="${STRESS_OPS:-60000}" ||
	exit "$KSFT_FAIL"

stress() {
	local mark t0 rc=0
	dmesg_mark
	mark=$MARK
	t0=$(date +%s)
	shadow_case stress || rc=1
	ktap_print_msg "$(( $(date +%s) - t0 )) s; $(dmesg_since "$mark" | grep -o 'stress: .*')"
	ktap_print_msg "stats: $(tr '\n' ' ' <"$SHADOW_DEBUGFS/stats")"
	return $rc
}
check "stress: results match the models" stress
check "no variables left" expect_eq "live variables" 0 "$(shadow_total)"

unload_mod $MOD
shadow_table_unload
ktap_finished
