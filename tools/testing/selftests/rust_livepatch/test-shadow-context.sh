#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rust_klp_shadow from the contexts a livepatched function can run in and
# the other tests do not reach, with test_modules/test_rust_klp_shadow_ctx.c
# (which checks the results in the kernel and reports PASS/FAIL):
#
#  1. irqsoff: free and free_all of thousands of variables (the shards
#     shrink) inside raw_spin_lock_irqsave(): all gone, the table still
#     works; and, in tracefs, no work queued (workqueue_queue_work) and no
#     task woken (sched_waking, sched_wakeup) on that CPU inside the section.
#     With interrupts off only code the section calls can emit an event
#     there; a work item the case queues just before the section proves the
#     trace sees that CPU;
#  2. nested: writer calls from a constructor (alloc, get_or_alloc) or a
#     destructor (free, free_all), which run under the table's lock, are
#     refused: NULL or nothing done, the outer call completes, and the table
#     logs a pr_err that says "constructor or destructor";
#  3. nmi_writer: alloc, get_or_alloc and free from an NMI are refused the
#     same way, with a pr_err that says "NMI";
#  4. nmi_ctor: a constructor, under the table's lock, sends an NMI to its
#     own CPU and waits for the handler's lookups: each present key found
#     with its value, each absent key missed;
#  5. nmi_resize: the same lookups in NMIs sent from one CPU to another that
#     keeps growing and shrinking the shards, for NMI_MS (the module's
#     nmi_ms, 4000) ms and two whole fill-and-free rounds at least: no lookup
#     waits for a resize (one that did would hang the CPU in its NMI
#     handler), none errs, NMIs were handled, the table's stats show grows
#     and shrinks;
#  6. nothing is left in the table.
# lockdep, KASAN and kmemleak watch (run.sh fails on any report).
# Needs two CPUs for nmi_resize (guest-cpus); the NMI cases exist on x86.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_klp_shadow_ctx
DIR=/sys/kernel/debug/$MOD
TRACEFS=/sys/kernel/tracing
INST=$TRACEFS/instances/rust_klp_shadow_ctx
EVENTS=(workqueue/workqueue_queue_work sched/sched_waking sched/sched_wakeup)

# ctx_case(case) - run a case of the module; 0 if it passed.  On failure,
# prints the module's reason.
ctx_case() {
	local mark
	dmesg_mark
	mark=$MARK
	echo "$1" >"$DIR/run" 2>/dev/null && return 0
	dmesg_since "$mark" | grep -E "$MOD: (FAIL|no case)" |
		while read -r l; do ktap_print_msg "$l"; done
	return 1
}

# has_case(case) - does the module have it (the NMI cases: x86 only)?
has_case() {
	local c
	while read -r c; do
		[ "$c" = "$1" ] && return 0
	done <"$DIR/cases"
	return 1
}

# log_has(mark, ere, what) - lines since mark matching ere: their count is
# shown; 1 if none
log_has() {
	local n
	n=$(log_count "$1" "$2")
	ktap_print_msg "$3: $n line(s) in the log"
	[ "$n" -gt 0 ]
}

# --- tracefs: a private instance, so the global trace is left alone ---

TRACE_WHY=
# trace_start - record EVENTS in INST from now on; 1 with TRACE_WHY if
# this kernel cannot
trace_start() {
	local e
	[ -d $TRACEFS/instances ] || mount -t tracefs nodev $TRACEFS 2>/dev/null
	[ -d $TRACEFS/instances ] || { TRACE_WHY="no tracefs at $TRACEFS"; return 1; }
	for e in "${EVENTS[@]}"; do
		[ -e "$TRACEFS/events/$e/enable" ] || { TRACE_WHY="no trace event $e"; return 1; }
	done
	[ -d $INST ] || mkdir $INST || { TRACE_WHY="cannot create $INST"; return 1; }
	# The clock the module reads (trace_clock_local()); a buffer that
	# holds the whole case, so that the control event is not overwritten.
	if ! { echo 0 >$INST/tracing_on && echo local >$INST/trace_clock &&
		echo 4096 >$INST/buffer_size_kb && echo >$INST/trace; }; then
		TRACE_WHY="cannot set up $INST"
		return 1
	fi
	for e in "${EVENTS[@]}"; do
		echo 1 >"$INST/events/$e/enable" || { TRACE_WHY="cannot enable $e"; return 1; }
	done
	echo 1 >$INST/tracing_on
}

trace_remove() {
	[ -d $INST ] || return 0
	echo 0 >$INST/tracing_on
	rmdir $INST
}
trap trace_remove EXIT
trap 'exit 143' TERM INT

ktap_print_header
ktap_set_plan 7

shadow_table_load || exit "$KSFT_FAIL"
load_mod $MOD ${NMI_MS:+nmi_ms=$NMI_MS} || exit "$KSFT_FAIL"

# read_resizes - the table's resizes so far (debugfs stats), in REPLY:
# "grows shrinks"
read_resizes() {
	local g
	read_stat grows
	g=$REPLY
	read_stat shrinks
	REPLY="$g $REPLY"
}

# resizes_since(before) - the resizes since read_resizes said before, in
# GROWS and SHRINKS; shown
GROWS=0 SHRINKS=0
resizes_since() {
	local g0 s0 g1 s1
	read -r g0 s0 <<<"$1"
	read_resizes
	read -r g1 s1 <<<"$REPLY"
	GROWS=$((g1 - g0)) SHRINKS=$((s1 - s0))
	ktap_print_msg "the table's shards meanwhile: $GROWS grows, $SHRINKS shrinks"
}

# 1. irqsoff, with the trace on around it
IRQSOFF_LINE=
irqsoff() {
	local mark rc=0 r0
	trace_start || ktap_print_msg "tracing: $TRACE_WHY"
	read_resizes
	r0=$REPLY
	dmesg_mark
	mark=$MARK
	ctx_case irqsoff || rc=1
	[ -d $INST ] && echo 0 >$INST/tracing_on
	IRQSOFF_LINE=$(dmesg_since "$mark" | grep "^$MOD: irqsoff: cpu ")
	ktap_print_msg "$IRQSOFF_LINE"
	resizes_since "$r0"
	return $rc
}
check "irqsoff: free and free_all under a raw spinlock, IRQs off" irqsoff

# The section's CPU and window from the module's line; the events of that
# CPU's buffer in it (the trace prints microseconds; the module made sure
# the section begins and ends on a microsecond of its own).
irqsoff_trace() {
	local re='cpu ([0-9]+) section ([0-9]+)-([0-9]+) ns' cpu t0 t1 ctl bad n out l
	[[ $IRQSOFF_LINE =~ $re ]] || { ktap_print_msg "no section in the log"; return 1; }
	cpu=${BASH_REMATCH[1]} t0=$((BASH_REMATCH[2] / 1000)) t1=$((BASH_REMATCH[3] / 1000))
	# The events inside (at most 20 shown), then the counts.
	mapfile -t out < <(awk -v t0="$t0" -v t1="$t1" '
		/^#/ { next }
		{
			for (i = 1; i < NF; i++)
				if ($i ~ /^[0-9]+\.[0-9]+:$/)
					break
			if (i == NF)
				next
			split($i, ts, /[.:]/)
			us = ts[1] * 1000000 + ts[2]
			n++
			if ($(i + 1) == "workqueue_queue_work:" && /function=ctl_workfn/ && us < t0)
				ctl++
			if (us >= t0 && us <= t1 && bad++ < 20)
				print "in the section:" $0
		}
		END { print ctl + 0, bad + 0, n + 0 }' "$INST/per_cpu/cpu$cpu/trace")
	read -r ctl bad n <<<"${out[-1]}"
	for l in "${out[@]:0:${#out[@]}-1}"; do
		ktap_print_msg "$l"
	done
	ktap_print_msg "CPU $cpu: $n events traced; the control work item seen $ctl time(s) before the section; $bad event(s) inside it"
	[ "$ctl" -gt 0 ] || { ktap_print_msg "the trace does not show the control work item: it cannot tell"; return 1; }
	[ "$bad" = 0 ]
}
if [ -d $INST ] && [ -n "$IRQSOFF_LINE" ]; then
	check "irqsoff: nothing queued or woken inside the section (tracefs)" irqsoff_trace
else
	ktap_test_skip "irqsoff: nothing queued or woken inside the section (tracefs): ${TRACE_WHY:-the case did not run}"
fi
trace_remove

# 2. constructors and destructors that call the table
nested() {
	local mark rc=0
	dmesg_mark
	mark=$MARK
	ctx_case nested || rc=1
	log_has "$mark" '^rust_klp_shadow: .*constructor or destructor' \
		"rust_klp_shadow's 'constructor or destructor' pr_err" || rc=1
	return $rc
}
check "nested: writer calls from a ctor or dtor refused" nested

# 3-5. NMIs
nmi_writer() {
	local mark rc=0
	dmesg_mark
	mark=$MARK
	ctx_case nmi_writer || rc=1
	ktap_print_msg "$(dmesg_since "$mark" | grep "^$MOD: nmi_writer: ")"
	log_has "$mark" '^rust_klp_shadow: .*NMI' "rust_klp_shadow's 'NMI' pr_err" || rc=1
	return $rc
}

# nmi_run(case) - a case with its summary line and the resizes meanwhile
nmi_run() {
	local mark rc=0 r0
	read_resizes
	r0=$REPLY
	dmesg_mark
	mark=$MARK
	ctx_case "$1" || rc=1
	ktap_print_msg "$(dmesg_since "$mark" | grep "^$MOD: $1: ")"
	resizes_since "$r0"
	return $rc
}

# nmi_resize: also, the NMIs came while shards grew and shrank
nmi_resize() {
	nmi_run nmi_resize || return 1
	[ "$GROWS" -gt 0 ] && [ "$SHRINKS" -gt 0 ] && return 0
	ktap_print_msg "no shard grew and shrank while the NMIs came"
	return 1
}

if has_case nmi_writer; then
	check "nmi_writer: writer calls from an NMI refused" nmi_writer
	check "nmi_ctor: lookups in an NMI inside a ctor" nmi_run nmi_ctor
	online=''
	read_var online /sys/devices/system/cpu/online
	if [ "$online" = 0 ]; then
		ktap_test_skip "nmi_resize: lookups in NMIs during resizes (needs two CPUs)"
	else
		check "nmi_resize: lookups in NMIs during resizes" nmi_resize
	fi
else
	for t in nmi_writer nmi_ctor nmi_resize; do
		ktap_test_skip "$t (no NMI IPIs on this architecture)"
	done
fi

check "no variables left" expect_eq "live variables" 0 "$(shadow_total)"

unload_mod $MOD
shadow_table_unload
ktap_finished
