#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the rust_livepatch kselftests in the running (guest) kernel and print
# KTAP.  One boot runs every test: a debug kernel costs a minute to boot.
#
#   run.sh [test-foo.sh ...]     (default: every test-*.sh, in name order)
#
# A named test runs even when PENDING lists it, unless KSFT_HONOR_PENDING=1
# (scripts/check names each guest's share of the tests that way).  With
# GUEST_NAME set, the boot and kmemleak results carry it, so that the merged
# report of several guests names the guest.  Each test's wall time (and the
# kernel's uptime when this script started, and the final kmemleak scan's
# time) is appended to $RESULTS/times, with the processes it started.
#
# Besides each test's own verdict, a test fails when the kernel log it
# produced shows a WARN, BUG, Oops, lockdep, KASAN or UBSAN report, except
# between expect_splat_begin/end markers of a test that provokes one on
# purpose.  The last test scans kmemleak and fails on any report.
# If RESULTS is set, the full kernel log is saved there as dmesg.log.
. "$(dirname "$0")/functions.sh"

SPLAT_RE='WARNING:|BUG:|Oops|general protection fault|INFO: possible|INFO: inconsistent|possible circular locking|possible recursive locking|KASAN:|UBSAN:|kernel BUG|Kernel panic|detected stall|blocked for more than|suspected memory leak'
# KSFT_TIMEOUT overrides the per-test timeout of settings (like run_kselftest.sh -o)
timeout=${KSFT_TIMEOUT:-$(sed -n "s/^timeout=//p" "$KSFT_DIR/settings")}

cd "$KSFT_DIR" || exit 1
if [ $# -gt 0 ]; then tests=("$@"); else tests=(test-*.sh); fi

# splats_since(mark) - reports in the kernel log since mark, minus the
# deliberately provoked ones
splats_since() {
	dmesg_since "$1" |
		awk '/rust_livepatch: expected splat begin/ { s = 1 }
		     /rust_livepatch: expected splat end/ { s = 0; next }
		     !s' | grep -E "$SPLAT_RE"
}

# cleanup_after(test) - a test that failed or timed out may leave modules
# loaded (a livepatch, its target, variables in the table), which would fail
# every later test: disable the livepatches left and unload every project
# module, livepatches first, the table last (it frees and reports what it
# still holds).  Nothing of the project is loaded before the first test.
cleanup_after() {
	local t=$1 lp m left=() mods=()
	pkill -f "dmesg --follow-new"
	for lp in "$KLP_SYSFS_DIR"/*; do
		[ -e "$lp/enabled" ] || continue
		left+=("${lp##*/}")
		[ "$(read_file "$lp/enabled")" = 1 ] && echo 0 >"$lp/enabled"
	done
	for m in "${MODULE_KOS[@]}"; do
		m=${m##*/}
		m=${m%.ko}
		m=${m//-/_}
		is_loaded "$m" && [ "$m" != rust_klp_shadow ] && mods+=("$m")
	done
	is_loaded rust_klp_shadow && mods+=(rust_klp_shadow)
	[ ${#left[@]} -gt 0 ] || [ ${#mods[@]} -gt 0 ] || return 0
	echo "# $t left loaded: livepatches: ${left[*]:-none}; modules: ${mods[*]}"
	loop_until "! ls $KLP_SYSFS_DIR/*/enabled >/dev/null 2>&1" ||
		echo "# livepatches still in sysfs: $(ls $KLP_SYSFS_DIR)"
	# livepatches, then the targets (no longer patched), then the table;
	# twice, for a module another one still used in the first pass
	for m in "${left[@]}" "${mods[@]}" "${mods[@]}"; do
		is_loaded "$m" && rmmod "$m" 2>/dev/null
	done
	for m in "${mods[@]}"; do
		is_loaded "$m" && echo "# rmmod $m failed"
	done
	return 0
}

# read_forks - processes started since boot (/proc/stat), in REPLY: a fork
# costs about a second under TCG, so the time table shows each test's count
read_forks() {
	local k v
	while read -r k v _; do
		[ "$k" = processes ] && { REPLY=$v; return; }
	done </proc/stat
}

suffix=${GUEST_NAME:+ ($GUEST_NAME)}
times=${RESULTS:+$RESULTS/times}
times=${times:-/dev/null}
echo "boot $(cut -d' ' -f1 /proc/uptime)" >>"$times"

ktap_print_header
ktap_set_plan $((${#tests[@]} + 2))

# The boot itself must be clean.  A report before user space started cannot
# come from our modules (none is loaded yet): it is shown and the check is
# skipped, not failed; the tests still run with kasan_multi_shot, so their own
# reports are not hidden.  (Seen under TCG: a KASAN wild-memory-access in
# do_raw_spin_lock from handle_edge_irq during identify_cpu, in some boots.)
# A report after init started fails.
boot_log=$(dmesg)
early=$(echo "$boot_log" | awk '/Run .* as init process/ { exit } { print }' | grep -E "$SPLAT_RE")
late=$(echo "$boot_log" | awk 'p; /Run .* as init process/ { p = 1 }' | grep -E "$SPLAT_RE")
if [ -n "$late" ]; then
	echo "$late" | sed 's/^/# boot: /'
	ktap_test_fail "boot log clean$suffix"
elif [ -z "$early" ] && grep -q 'debug_locks: *0' /proc/lockdep_stats 2>/dev/null; then
	echo "# lockdep is off (debug_locks 0) with no report in the log"
	ktap_test_fail "boot log clean$suffix"
elif [ -n "$early" ]; then
	echo "$early" | sed 's/^/# early boot, before any module: /'
	ktap_test_skip "boot log clean$suffix (a kernel report before user space started)"
else
	ktap_test_pass "boot log clean$suffix"
fi

for t in "${tests[@]}"; do
	# Tests named in PENDING are not run by default: they are reported as
	# skipped with the reason given there.  Naming a test runs it anyway.
	pending=$(awk -v t="$t" '$1 == t { $1 = ""; print substr($0, 2) }' PENDING 2>/dev/null)
	if { [ $# = 0 ] || [ "${KSFT_HONOR_PENDING:-0}" = 1 ]; } && [ -n "$pending" ]; then
		ktap_test_skip "$t (pending: $pending)"
		continue
	fi
	dmesg_mark
	mark=$MARK
	log "===== $t ====="
	read_forks
	f0=$REPLY t0=$SECONDS
	timeout "${timeout:-600}" "./$t" 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	read_forks
	echo "# $t: $((SECONDS - t0)) s, $((REPLY - f0)) processes started"
	echo "$t $((SECONDS - t0)) $((REPLY - f0))" >>"$times"
	[ "$rc" = 0 ] || cleanup_after "$t"
	splat=$(splats_since "$mark")
	if [ -n "$splat" ]; then
		echo "$splat" | head -40 | sed 's/^/# kernel log: /'
		ktap_test_fail "$t (kernel report in the log)"
	elif [ "$rc" = 0 ]; then
		ktap_test_pass "$t"
	elif [ "$rc" = "$KSFT_SKIP" ]; then
		ktap_test_skip "$t"
	else
		[ "$rc" = 124 ] && echo "# $t: timed out after ${timeout}s"
		ktap_test_fail "$t (exit $rc)"
	fi
done

# kmemleak: scan twice (objects must be unreferenced in two scans), report.
km=$KMEMLEAK
if [ -w $km ]; then
	t0=$SECONDS
	kmemleak_scans
	leaks=$(cat $km)
	echo "kmemleak-scan $((SECONDS - t0))" >>"$times"
	if [ -n "$leaks" ]; then
		echo "$leaks" | head -60 | sed 's/^/# kmemleak: /'
		ktap_test_fail "kmemleak clean$suffix"
	else
		ktap_test_pass "kmemleak clean$suffix"
	fi
else
	ktap_test_skip "kmemleak clean$suffix (no $km)"
fi

[ -n "$RESULTS" ] && dmesg >"$RESULTS/dmesg.log"
ktap_finished
