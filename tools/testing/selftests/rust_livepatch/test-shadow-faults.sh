#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_klp_shadow when its own allocations fail: the stress case of
# test_modules/test_rust_klp_shadow.c (kthreads and a hardirq timer doing
# random operations, each checked against an exact model) runs with
# failslab and fail_page_alloc failing a share of the allocations made from
# rust_klp_shadow.ko's code, and only those: their stack-trace filter
# requires a return address inside the table's text (from /proc/kallsyms),
# so the test module, the shell and the rest of the guest allocate as usual.
# Entries (kzalloc) and bucket arrays (kmalloc, kvmalloc: slab, large
# kmalloc and vmalloc pages) all fail, GFP_KERNEL ones included.  With
# stress_faults=1 the model accepts NULL from alloc/get_or_alloc of an absent
# variable, checks with a get that nothing was inserted, and counts them.
#
#  1. every result matched its model while allocations failed;
#  2. failures were injected (the fault attributes' `times` budget went
#     down) and surfaced as NULL from GFP_KERNEL allocations.  The two
#     counts need not match: a failed bucket-array growth is absorbed while
#     the shard has room, and a shard left full by one makes later inserts
#     fail without an allocation of their own;
#  3. after the faults stop, a short stress run without stress_faults
#     passes: no allocation fails, the table was left sound;
#  4. nothing is left in the table.
# lockdep, KASAN and kmemleak watch (run.sh fails on any report).
# Fault injection is switched off (probability 0) on every way out.
#
# FAULT_OPS (default 3000) and CLEAN_OPS (1000): operations per kthread;
# FAULT_PERCENT (10): the probability of each failure point.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_klp_shadow
PARAMS=/sys/module/$MOD/parameters
DBG=/sys/kernel/debug
FAULT_DIRS=("$DBG/failslab" "$DBG/fail_page_alloc")
# `times` counts down from here at each injected failure (-1 would not
# count): what is left tells how many were injected.
BUDGET=1000000

for d in "${FAULT_DIRS[@]}"; do
	[ -e "$d/require-start" ] || {
		echo "skip: no $d/require-start (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC," \
			"CONFIG_FAULT_INJECTION_DEBUG_FS, CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)"
		exit "$KSFT_SKIP"
	}
done

# faults_off - no more injected failures: probability 0, which the kernel
# checks before any other attribute.
faults_off() {
	local d
	for d in "${FAULT_DIRS[@]}"; do
		echo 0 >"$d/probability"
	done
}
trap faults_off EXIT
trap 'exit 143' TERM INT

# table_text - the address range of rust_klp_shadow's code, in TEXT_START and
# TEXT_END: from its lowest text symbol in /proc/kallsyms to the first symbol
# of another module (or BPF, ftrace trampolines: any "[...]") above its
# highest one, or 64 KiB past that highest one (its own size is not in
# kallsyms).  The kernel's own symbols lie below the module area.  Addresses
# are fixed-width hex, so awk compares them as strings.  One pass: reading
# /proc/kallsyms takes seconds under TCG.
TEXT_START='' TEXT_END=''
table_text() {
	local lo hi next end
	read -r lo hi next < <(awk '
		$4 == "[rust_klp_shadow]" {
			if ($2 !~ /^[tT]$/)
				next
			a = "x" $1
			if (lo == "" || a < lo) lo = a
			if (a > hi) hi = a
			next
		}
		$4 ~ /^\[/ { other[n++] = "x" $1 }
		END {
			for (i = 0; i < n; i++)
				if (other[i] > hi && (nx == "" || other[i] < nx))
					nx = other[i]
			print substr(lo, 2), substr(hi, 2), substr(nx, 2)
		}' /proc/kallsyms)
	if [ -z "$lo" ] || [ "$((16#$lo))" = 0 ]; then
		ktap_print_msg "no text symbols of rust_klp_shadow in /proc/kallsyms (kptr_restrict?)"
		return 1
	fi
	# Kernel addresses are negative in bash's signed 64 bits, in order.
	end=$((16#$hi + 0x10000))
	[ -n "$next" ] && [ "$((16#$next))" -lt "$end" ] && end=$((16#$next))
	TEXT_START=0x$lo
	TEXT_END=$(printf '%#x' "$end")
	ktap_print_msg "rust_klp_shadow text: $TEXT_START-$TEXT_END (its last symbol at 0x$hi," \
		"the next other one at 0x${next:-none})"
}

# set_attr(file, value) - write a fault attribute; 1 with a message on failure
set_attr() {
	echo "$2" >"$1" && return 0
	ktap_print_msg "cannot write $2 to $1"
	return 1
}

# faults_on(percent) - fail that share of the allocations made from the
# table's code, GFP_KERNEL ones too, silently (verbose 0: a stack dump per
# failure would flood the log), in any task and in interrupts
faults_on() {
	local d
	for d in "${FAULT_DIRS[@]}"; do
		set_attr "$d/probability" 0 &&
			set_attr "$d/verbose" 0 &&
			set_attr "$d/interval" 1 &&
			set_attr "$d/space" 0 &&
			set_attr "$d/times" "$BUDGET" &&
			set_attr "$d/task-filter" N &&
			set_attr "$d/ignore-gfp-wait" N &&
			# Deep enough to reach the table from the allocator's
			# failure point through kvmalloc, vmalloc and KASAN.
			set_attr "$d/stacktrace-depth" 32 &&
			set_attr "$d/reject-start" 0 &&
			set_attr "$d/reject-end" 0 &&
			set_attr "$d/require-start" "$TEXT_START" &&
			set_attr "$d/require-end" "$TEXT_END" || return 1
	done
	# vmalloc's pages: order 0, and highmem in its gfp
	set_attr "$DBG/fail_page_alloc/min-order" 0 &&
		set_attr "$DBG/fail_page_alloc/ignore-gfp-highmem" N || return 1
	for d in "${FAULT_DIRS[@]}"; do
		set_attr "$d/probability" "$1" || return 1
	done
}

# injected(dir) - failures injected by dir since faults_on, in REPLY
injected() {
	read_var REPLY "$1/times"
	REPLY=$((BUDGET - REPLY))
}

# stress_run(name) - the stress case; its summary line in STRESS_LINE
STRESS_LINE=
stress_run() {
	local mark rc=0 t0=$SECONDS
	dmesg_mark
	mark=$MARK
	shadow_case stress || rc=1
	STRESS_LINE=$(dmesg_since "$mark" | grep -o 'stress: .*')
	ktap_print_msg "$1: $((SECONDS - t0)) s; $STRESS_LINE"
	return $rc
}

ktap_print_header
ktap_set_plan 4

shadow_table_load || exit "$KSFT_FAIL"
load_mod $MOD stress_threads=3 stress_ops="${FAULT_OPS:-3000}" stress_faults=1 ||
	exit "$KSFT_FAIL"
# After the test module's load: its code may follow the table's.
table_text || exit "$KSFT_FAIL"

faulty_stress() {
	local rc=0
	faults_on "${FAULT_PERCENT:-10}" || { ktap_print_msg "cannot set up fault injection"; return 1; }
	stress_run "with faults" || rc=1
	faults_off
	return $rc
}
check "stress with failing allocations: results match the models" faulty_stress

failures() {
	local slab page nulls
	injected "$DBG/failslab"
	slab=$REPLY
	injected "$DBG/fail_page_alloc"
	page=$REPLY
	[[ $STRESS_LINE =~ ([0-9]+)\ allocations\ failed\ \(([0-9]+)\ with\ GFP_KERNEL\) ]] || {
		ktap_print_msg "no failure count in the stress line"
		return 1
	}
	nulls=${BASH_REMATCH[2]}
	ktap_print_msg "injected: $slab by failslab, $page by fail_page_alloc;" \
		"NULL returned: ${BASH_REMATCH[1]}, $nulls of them with GFP_KERNEL"
	[ $((slab + page)) -gt 0 ] || { ktap_print_msg "no failure was injected"; return 1; }
	[ "$nulls" -gt 0 ] || { ktap_print_msg "no GFP_KERNEL allocation returned NULL"; return 1; }
}
check "failures were injected and returned as NULL" failures

clean_stress() {
	echo N >"$PARAMS/stress_faults" &&
		echo "${CLEAN_OPS:-1000}" >"$PARAMS/stress_ops" || return 1
	stress_run "without faults"
}
check "stress after the faults, none accepted: results match" clean_stress
check "no variables left" expect_eq "live variables" 0 "$(shadow_total)"

unload_mod $MOD
shadow_table_unload
ktap_finished
