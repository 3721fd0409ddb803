#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The mac80211 ps_lock race (CVE-2014-2706) in samples/ps_lock/sta_model.ko,
# and its three Rust livepatches (one per use case of shadow-vars.rst), all
# under live traffic.  Every verdict comes from the model's debugfs counters
# (frames stranded in a sleep buffer of an awake station, frames delivered
# out of order), livepatch sysfs and the rust_klp_shadow table's debugfs.
#
# PARTS (default "race"): "race" runs the unpatched, per-fix and replace
# subtests, "cycles" the enable/disable/rmmod cycles of the fixes named in
# CYCLE_FIXES (default all three).  The cycles take most of the time: each
# fix's are a test of their own, test-ps-lock-cycles-fixN.sh, so that
# scripts/check can spread them over its guests.
# PERIOD (seconds, default 10): how long traffic runs per measurement.
# CYCLES (default 20): enable/disable/rmmod cycles per patch, under lighter
# traffic: one TX every CYCLE_TX_US (default 5000) us per thread instead of
# every 20 us (about 220 frames and 10 station replacements a second).
# Under TCG a cycle took 12-60 s, nearly all of it in the one pass of
# klp_try_complete_transition() that completed each transition: not in the
# stack checks but in PREEMPT_DYNAMIC's re-patching of ~1,100 cond_resched()
# call sites, each text_poke waiting for IPIs (function tracer: 2,035 text
# pokes and 47 s in one pass; see .config.fragment).  On the test kernel
# without PREEMPT_DYNAMIC a transition takes 0.01-0.03 s of work, plus
# livepatch's own retry about a second later (the other CPU's idle task
# cannot switch while it runs), once per enable and once per disable; the
# modules are loaded and unloaded by modctl, without a process start.
# Measured with two vCPUs: 3.5 s a cycle beside a guest running short
# tests, 6.5-11.6 s beside test-shadow-million.  The other subtests run full traffic across
# their transitions.
. "$(dirname "$0")/functions.sh"

PERIOD=${PERIOD:-10}
CYCLES=${CYCLES:-20}
CYCLE_TX_US=${CYCLE_TX_US:-5000}
STA=/sys/kernel/debug/sta_model
PS_LOCK=0x5053
PATCHED=0x5054
FIXES=(rust_ps_lock_fix1 rust_ps_lock_fix2 rust_ps_lock_fix3)

# read_sta(name) - a counter of the model's debugfs stats, in REPLY (no
# fork: polled); sta_stat(name) prints it
read_sta() {
	local k v
	REPLY=
	while read -r k v; do
		[ "$k" = "$1" ] && { REPLY=$v; return; }
	done <$STA/stats
}
sta_stat() { read_sta "$1"; echo "$REPLY"; }
set_run() { echo "$1" >/sys/module/sta_model/parameters/run; }
reset() { echo 1 >$STA/reset; }

# older_stations_gone - wait until every station that existed before now
# was replaced (the model replaces the oldest every replace_interval_ms)
older_stations_gone() {
	local n ms
	read_var n /sys/module/sta_model/parameters/nr_stations
	read_var ms /sys/module/sta_model/parameters/replace_interval_ms
	read_sta stations_allocated_total
	local target=$((REPLY + n))
	loop_until "read_sta stations_allocated_total && [ \$REPLY -ge $target ]" || {
		ktap_print_msg "stations were not replaced (every ${ms} ms expected)"
		return 1
	}
}

# measure(what) - reset, run traffic for PERIOD, expect nothing stranded
measure_clean() {
	reset
	sleep "$PERIOD"
	local s o f
	s=$(sta_stat stranded) o=$(sta_stat order_violations) f=$(sta_stat frames)
	ktap_print_msg "$1: $f frames, $(sta_stat buffered) buffered, $s stranded, $o out of order in ${PERIOD}s"
	[ "$f" -gt 0 ] || { ktap_print_msg "no traffic"; return 1; }
	[ "$s" = 0 ] && [ "$o" = 0 ]
}

# locks_match_stations(fix, slack) - with traffic paused, one ps_lock per
# station (and for fix3 one PATCHED flag per station allocated since the
# patch).  slack: how many more ps_locks there may be.  fix2 and fix3 attach a
# lock to in-flight stations on first use; during the transition the
# unpatched sta_info_free() (on the not yet switched replace thread) may free
# such a station without its lock, a leftover the patch frees when the address
# is reused or when it is disabled.  At most one per station freed during the
# transition (the replace thread allocates one for each it frees): the
# caller passes that number.
locks_match_stations() {
	local fix=$1 slack=${2:-0} alive locks flags ok=0
	set_run 0
	sleep 1
	alive=$(sta_stat stations_alive)
	locks=$(shadow_count $PS_LOCK)
	if [ "$slack" = 0 ]; then
		expect_eq "ps_lock variables vs live stations" "$alive" "$locks" || ok=1
	elif [ "$locks" -lt "$alive" ] || [ "$locks" -gt $((alive + slack)) ]; then
		ktap_print_msg "ps_lock variables: $locks for $alive live stations, expected $alive to $((alive + slack)) (leftovers of $slack stations freed during the transition)"
		ok=1
	fi
	ktap_print_msg "$fix: $alive live stations, $locks ps_lock variables"
	if [ "$fix" = rust_ps_lock_fix3 ]; then
		# Every station was replaced since the patch (older_stations_gone).
		flags=$(shadow_count $PATCHED)
		expect_eq "PATCHED flags vs live stations" "$alive" "$flags" || ok=1
	fi
	set_run 1
	return $ok
}

# remove(fix) - disable and rmmod under traffic: every variable freed
remove_fix() {
	disable_lp "$1" || return 1
	unload_mod "$1" || return 1
	expect_eq "ps_lock variables after removal" 0 "$(shadow_count $PS_LOCK)" &&
		expect_eq "PATCHED flags after removal" 0 "$(shadow_count $PATCHED)"
}

# unpatched - the race is real: frames are stranded (within PERIOD; the
# counter is polled, so this ends at the first stranded frame)
unpatched_strands() {
	local t0=$SECONDS
	reset
	MAX_RETRIES=$((PERIOD * 10)) loop_until 'read_sta stranded && [ "$REPLY" -gt 0 ]'
	local s=$(sta_stat stranded) o=$(sta_stat order_violations) f=$(sta_stat frames)
	ktap_print_msg "unpatched: $f frames, $s stranded, $o out of order in $((SECONDS - t0))s"
	[ "$s" -gt 0 ]
}

fix_closes_race() {
	local fix=$1 before slack=0
	before=$(sta_stat stations_allocated_total)
	load_lp "$fix" || return 1
	# fix1 attaches locks only to the stations it allocates: no leftovers.
	[ "$fix" = rust_ps_lock_fix1 ] || slack=$(($(sta_stat stations_allocated_total) - before))
	# fix1 covers only stations it allocated; fix2/fix3 cover all at once,
	# but measure all three the same way, after the older stations left.
	local ok=0
	older_stations_gone && measure_clean "$fix" && locks_match_stations "$fix" "$slack" || ok=1
	# Removed in any case, so that a failure does not spill into the next subtest.
	remove_fix "$fix" || ok=1
	return $ok
}

replace_keeps_variables() {
	load_lp rust_ps_lock_fix1 || return 1
	older_stations_gone || return 1
	reset
	local before=$(shadow_count $PS_LOCK)
	load_lp rust_ps_lock_fix2 || return 1
	# fix1 was replaced: gone from sysfs, its variables kept by fix2.
	[ ! -e $KLP_SYSFS_DIR/rust_ps_lock_fix1 ] || {
		ktap_print_msg "fix1 still listed after fix2 replaced it"
		return 1
	}
	local after=$(shadow_count $PS_LOCK)
	ktap_print_msg "ps_lock variables: $before before the replace, $after after"
	[ "$after" -gt 0 ] || return 1
	unload_mod rust_ps_lock_fix1 || return 1
	sleep "$PERIOD"
	local s=$(sta_stat stranded) o=$(sta_stat order_violations)
	ktap_print_msg "across the replace: $(sta_stat frames) frames, $s stranded, $o out of order"
	[ "$s" = 0 ] && [ "$o" = 0 ] || return 1
	locks_match_stations rust_ps_lock_fix2 || return 1
	remove_fix rust_ps_lock_fix2
}

cycles() {
	local fix=$1 i n=0 us frames stations ok=0
	read_var us /sys/module/sta_model/parameters/tx_interval_us
	echo "$CYCLE_TX_US" >/sys/module/sta_model/parameters/tx_interval_us
	reset
	read_sta stations_allocated_total
	stations=$REPLY
	# Where a cycle's time goes: microseconds in each step, over all cycles
	# (no fork in the loop: under TCG each costs about a second).
	local t_load=0 t_disable=0 t_unload=0 a b c d
	for ((i = 1; i <= CYCLES; i++)); do
		a=${EPOCHREALTIME/./}
		load_lp "$fix" && b=${EPOCHREALTIME/./} &&
			disable_lp "$fix" && c=${EPOCHREALTIME/./} &&
			unload_mod "$fix" && d=${EPOCHREALTIME/./} || {
			ktap_print_msg "$fix: cycle $i failed"
			ok=1
			break
		}
		t_load=$((t_load + b - a)) t_disable=$((t_disable + c - b)) t_unload=$((t_unload + d - c))
		n=$i
	done
	[ $n -gt 0 ] &&
		ktap_print_msg "$fix: time per cycle: enable (insmod, transition) $((t_load / n / 1000)) ms, disable (transition, sysfs gone) $((t_disable / n / 1000)) ms, rmmod $((t_unload / n / 1000)) ms"
	read_sta frames
	frames=$REPLY
	read_sta stations_allocated_total
	stations=$((REPLY - stations))
	echo "$us" >/sys/module/sta_model/parameters/tx_interval_us
	ktap_print_msg "$fix: $n cycles under traffic: $frames frames, $stations stations replaced, $(sta_stat stranded) stranded while unpatched"
	[ $ok = 0 ] || return 1
	# The traffic ran across the cycles: frames sent, stations replaced.
	[ "$frames" -gt 0 ] && [ "$stations" -gt 0 ] || {
		ktap_print_msg "no traffic during the cycles"
		return 1
	}
	read_count $PS_LOCK
	expect_eq "ps_lock variables after $CYCLES cycles" 0 "$REPLY"
}

PARTS=${PARTS:-race}
part() { [[ " $PARTS " == *" $1 "* ]]; }
plan=2
part race && plan=$((plan + 1 + ${#FIXES[@]} + 1))
# CYCLE_FIXES (default: all three): the fixes whose cycles run.
read -ra CYCLE_FIXES <<<"${CYCLE_FIXES:-${FIXES[*]}}"
part cycles && plan=$((plan + ${#CYCLE_FIXES[@]}))
ktap_print_header
ktap_set_plan $plan

# The table may be loaded already (by an earlier test): leave it as found.
table_was_loaded=0
is_loaded rust_klp_shadow && table_was_loaded=1
if ! { [ $table_was_loaded = 1 ] || load_mod rust_klp_shadow; } || ! load_mod sta_model; then
	ktap_exit_fail_msg "cannot load rust_klp_shadow and sta_model"
fi
if part race; then
	check "sta_model: unpatched, frames are stranded (the race is real)" unpatched_strands
	for fix in "${FIXES[@]}"; do
		check "$fix: transition, 0 stranded, a ps_lock per station, all freed on removal" \
			fix_closes_race "$fix"
	done
	check "rust_ps_lock_fix2 atomically replaces fix1: variables kept, 0 stranded" \
		replace_keeps_variables
fi
if part cycles; then
	for fix in "${CYCLE_FIXES[@]}"; do
		check "$fix: $CYCLES enable/disable/rmmod cycles under traffic" cycles "$fix"
	done
fi
check "sta_model unloads while traffic runs" unload_mod sta_model
table_done() {
	expect_eq "ps_lock variables left" 0 "$(shadow_count $PS_LOCK)" || return 1
	[ $table_was_loaded = 1 ] || unload_mod rust_klp_shadow
}
check "no ps_lock variable left; rust_klp_shadow unloads if this test loaded it" table_done
ktap_finished
