#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make bench` (scripts/bench runs it with scripts/guest-run):
# load the table and the benchmark module, keep what they report.
#
#   run-in-guest.sh TABLE_KO BENCH_KO [BENCH_PARAM=VALUE ...]
#
# Writes to $RESULTS: results.txt (the benchmark's lines), table-stats-*.txt
# (the table's debugfs before and after; the module itself adds a
# "tablestats" line after each fill), guest-uname.txt (kernel, command line,
# clocksource, TSC calibration), kallsyms.txt (where both modules' functions
# were loaded, for scripts/bench --profile), dmesg.log.  Exits non-zero if a
# module did not load or the kernel log shows a splat.
set -uo pipefail
table_ko=$1 bench_ko=$2
shift 2
out=${RESULTS:?}
SPLAT_RE='WARNING:|BUG:|Oops|general protection fault|KASAN:|UBSAN:|kernel BUG|Kernel panic|detected stall|blocked for more than|soft lockup'
stats=/sys/kernel/debug/rust_klp_shadow

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
nproc >"$out/guest-cpus.txt"
uname -a >"$out/guest-uname.txt"
grep -m1 'model name' /proc/cpuinfo >>"$out/guest-uname.txt"
# What the timings rest on: the command line, the clocksource (the module
# reads the TSC; a watchdog that moved timekeeping off it shows here) and the
# TSC rate the kernel calibrated (about 1 GHz under -icount shift=0).
{
	echo "cmdline: $(cat /proc/cmdline)"
	echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
	dmesg | grep -m3 -iE 'tsc: (refined|detected)|clocksource.*unstable'
} >>"$out/guest-uname.txt"

status=0
if ! insmod "$table_ko"; then
	echo "run-in-guest: cannot load $table_ko" >&2
	exit 1
fi
[ -d $stats ] && grep -r . $stats >"$out/table-stats-before.txt" 2>/dev/null
echo "run-in-guest: benchmark $* ($(nproc) CPUs) ..." >&2
start=$(date +%s)
if insmod "$bench_ko" "$@"; then
	cp /sys/kernel/debug/rust_klp_shadow_bench/results "$out/results.txt"
	grep -E '\[rust_klp_shadow(_bench)?\]$' /proc/kallsyms >"$out/kallsyms.txt"
	rmmod rust_klp_shadow_bench || status=1
else
	echo "run-in-guest: cannot load $bench_ko" >&2
	status=1
fi
echo "run-in-guest: $(( $(date +%s) - start ))s in the benchmark" >&2
echo "clocksource after: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)" \
	>>"$out/guest-uname.txt"
[ -d $stats ] && grep -r . $stats >"$out/table-stats-after.txt" 2>/dev/null
rmmod rust_klp_shadow || status=1
dmesg >"$out/dmesg.log"
if grep -E "$SPLAT_RE" "$out/dmesg.log" >&2; then
	echo "run-in-guest: the kernel log shows a splat (above)" >&2
	status=1
fi
exit $status
