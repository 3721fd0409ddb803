#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shell functions for the rust_livepatch kselftests, after the kernel's
# tools/testing/selftests/livepatch/functions.sh.  Tests print KTAP with the
# kernel's own kselftest/ktap_helpers.sh (from $KDIR, never a copy).
#
# Environment (set by run.sh; tests also run stand-alone in a guest):
#   KDIR  the prepared test kernel tree
#   ROOT  the project tree, where the modules were built

KSFT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${ROOT:-$(cd "$KSFT_DIR/../../../.." && pwd)}
KDIR=${KDIR:-$(make -s -C "$ROOT" --no-print-directory kdir 2>/dev/null)}
. "$KDIR/tools/testing/selftests/kselftest/ktap_helpers.sh"

MAX_RETRIES=600
RETRY_INTERVAL=".1"	# seconds
KLP_SYSFS_DIR=/sys/kernel/livepatch
SHADOW_DEBUGFS=/sys/kernel/debug/rust_klp_shadow

# log(msg) - write a message to the kernel log
log() {
	echo "$*" >/dev/kmsg
}

# nap(seconds) - sleep without starting a process.  Under TCG a fork and
# exec on the debug kernel costs about half a second (measured: 10 `cat`s
# took 5 s), five times the poll interval: polls must not exec.  (A read
# with a timeout on a pipe that never gets data; this shell holds both ends.)
exec {NAP_FD}<> <(:)
nap() {
	read -rt "$1" -u "$NAP_FD" || :
}

# read_file(file) - its first line ("" if none)
read_file() {
	local line=
	read -r line 2>/dev/null <"$1"
	echo "$line"
}

# Under TCG on the debug kernel a fork costs 0.5-1.3 s (20 subshells took
# 14 s, 20 forks and execs of busybox 26 s, with two guests on the host's
# two cores): a command substitution, $(...), is a fork even when it runs
# a shell function.  The helpers below that tests call in loops and polls
# therefore set REPLY, as `read` does, instead of printing.

# read_var(var, file) - its first line into var ("" if none); no fork
read_var() {
	read -r "$1" 2>/dev/null <"$2" || printf -v "$1" ''
}

# loop_until(cmd) - retry cmd until it succeeds or MAX_RETRIES
loop_until() {
	local i=0
	while true; do
		eval "$*" && return 0
		[ $((i++)) -eq $MAX_RETRIES ] && return 1
		nap $RETRY_INTERVAL
	done
}

# modpath(name) - the built .ko of a project module, found under ROOT or KDIR.
# The guest reads the host's files over 9p, where a find through the work
# tree took 9 s under TCG: the module directories are listed once, here.
mapfile -t MODULE_KOS < <(find "$ROOT/samples" "$ROOT/rust/shadow" \
	"$KSFT_DIR/test_modules" "$KDIR/samples/livepatch" -maxdepth 2 \
	-name '*.ko' 2>/dev/null)
# Sets REPLY.
modpath() {
	local name=$1 p
	for p in "${MODULE_KOS[@]}"; do
		[ "${p##*/}" = "$name.ko" ] && { REPLY=$p; return 0; }
	done
	echo "no $name.ko built" >&2
	return 1
}

# is_loaded(name) - is the module loaded?
is_loaded() {
	[ -d "/sys/module/${1//-/_}" ]
}

# Module loads and unloads go through modctl (modctl.c, built beside this
# file by its Makefile): one process per test, started as a coprocess on
# first use, that makes the syscalls insmod and rmmod make (finit_module,
# delete_module with O_NONBLOCK) and answers with the errno.  Under TCG a
# fork and exec, even of busybox-static, costs about a second, twice per
# enable/disable/rmmod cycle.

# mod_request(load path [params...] | unload name) - one request to modctl,
# no fork; REPLY: "0", or the errno and its message; 1 on failure
mod_request() {
	if [ -z "${MODCTL_PID:-}" ]; then
		[ -x "$KSFT_DIR/modctl" ] || {
			REPLY="$KSFT_DIR/modctl not built (make -C $KSFT_DIR)"
			return 1
		}
		coproc MODCTL { exec "$KSFT_DIR/modctl"; }
	fi
	REPLY="modctl is gone"
	printf '%s\n' "$*" >&"${MODCTL[1]}" && read -r REPLY <&"${MODCTL[0]}"
	[ "$REPLY" = 0 ]
}

# load_mod(name, params...) - insmod a module; 1 on failure
load_mod() {
	local name=$1 p
	shift
	modpath "$name" || return 1
	p=$REPLY
	log "% insmod $name.ko $*"
	mod_request load "$p" "$@" || {
		ktap_print_msg "insmod $name failed: $REPLY"
		return 1
	}
}

# load_lp(name, params...) - insmod a livepatch and wait for its transition
load_lp() {
	local mod=${1//-/_}
	load_mod "$@" || return 1
	loop_until "read -r _lp_transition 2>/dev/null <$KLP_SYSFS_DIR/$mod/transition && [ \$_lp_transition = 0 ]" || {
		ktap_print_msg "livepatch $mod: transition did not complete"
		return 1
	}
	read_var _lp_enabled "$KLP_SYSFS_DIR/$mod/enabled"
	[ "$_lp_enabled" = 1 ] || {
		ktap_print_msg "livepatch $mod: not enabled after transition"
		return 1
	}
}

# disable_lp(name) - disable a livepatch, wait until it left sysfs
disable_lp() {
	local mod=${1//-/_}
	log "% echo 0 > $KLP_SYSFS_DIR/$mod/enabled"
	echo 0 >"$KLP_SYSFS_DIR/$mod/enabled" || return 1
	loop_until "[ ! -e $KLP_SYSFS_DIR/$mod ]" || {
		ktap_print_msg "livepatch $mod: still in sysfs after disable"
		return 1
	}
}

# unload_mod(name) - rmmod, waiting while the module is still busy
unload_mod() {
	local mod=${1//-/_}
	log "% rmmod $mod"
	loop_until "mod_request unload $mod" || {
		ktap_print_msg "rmmod $mod failed: $REPLY"
		return 1
	}
	! is_loaded "$mod"
}

# dmesg_mark() - a unique marker in the kernel log, in MARK
dmesg_mark() {
	MARK="rust_livepatch kselftest mark: $EPOCHREALTIME $RANDOM"
	log "$MARK"
}

# since_awk(mark, awk-args... program) - run an awk program over the kernel
# log lines after mark, timestamps removed; it must end with an END block.
# After dmesg_follow, it reads the test's own copy of the log when the mark
# is in it (a test polling the log then does not re-read the whole ring
# buffer, 256 KiB, each time), else the kernel's log: one process per call
# when the log is followed (a process start costs about a second under TCG).
since_awk() {
	local m=$1 n=$(($# - 1))
	local skip="!_p { if (index(\$0, _m)) _p = 1; next } { sub(/^\\[[ 0-9.]*\\] /, \"\") }"
	local args=("${@:2:n-1}")
	if [ -n "$DMESG_FOLLOW" ]; then
		# The mark not (yet) in the copy: exit 3 before the program's
		# END, and fall back to the kernel's log.
		awk -v _m="$m" "${args[@]}" "$skip END { if (!_p) exit 3 } ${!#}" "$DMESG_FOLLOW"
		local rc=$?
		[ $rc = 3 ] || return $rc
	fi
	dmesg | awk -v _m="$m" "${args[@]}" "$skip ${!#}"
}

# dmesg_since(mark) - kernel log lines after the mark, timestamps removed
dmesg_since() {
	since_awk "$1" '{ print } END {}'
}

# log_count(mark, ere) - how many kernel log lines after mark match ere
log_count() {
	since_awk "$1" -v re="$2" '$0 ~ re { n++ } END { print n + 0 }'
}

# dmesg_follow - from now on, copy new kernel log lines to a file for
# dmesg_since (util-linux dmesg --follow-new, line-buffered: it writes to a
# file); stopped when the test exits
DMESG_FOLLOW=
dmesg_follow() {
	local f i
	f=$(mktemp) || return 1
	stdbuf -oL dmesg --follow-new >"$f" &
	DMESG_FOLLOWER=$!
	trap 'kill $DMESG_FOLLOWER 2>/dev/null; rm -f "$DMESG_FOLLOW"' EXIT
	# dmesg copies only what is logged after it opened the log: mark until
	# a mark arrives (marks are unique: dmesg_since finds the later ones)
	for ((i = 0; i < 100; i++)); do
		log "rust_livepatch: dmesg_follow $i"
		grep -q "rust_livepatch: dmesg_follow" "$f" && { DMESG_FOLLOW=$f; return 0; }
		nap .2
	done
	ktap_print_msg "dmesg --follow-new did not copy the log"
	kill $DMESG_FOLLOWER
}

# kmemleak_scans([t0]) - the two scans kmemleak needs before it reports an
# object (the first records the checksums of new objects, the second reports
# those still unreferenced and unchanged), the second starting at least 6 s
# after t0 (an $EPOCHREALTIME; default: now), since kmemleak skips objects
# younger than 5 s at the start of a scan.  A scan under TCG takes seconds:
# it often covers that wait by itself.  Read the report from the kmemleak
# file afterwards.
KMEMLEAK=/sys/kernel/debug/kmemleak
kmemleak_scans() {
	local t0=${1:-$EPOCHREALTIME} us
	echo scan >$KMEMLEAK || return 1
	# Microseconds left until t0 + 6 s (bash arithmetic: no process).
	us=$((${t0/./} + 6000000 - ${EPOCHREALTIME/./}))
	[ "$us" -le 0 ] || nap "$((us / 1000000)).$(printf %06d $((us % 1000000)))"
	echo scan >$KMEMLEAK
}

# expect_splat_begin / expect_splat_end - bracket a deliberate WARN so
# run.sh's splat check does not count it against the test.  The test itself
# must check that the expected report did appear.
expect_splat_begin() { log "rust_livepatch: expected splat begin"; }
expect_splat_end() { log "rust_livepatch: expected splat end"; }

# read_count(id) - live variables of id in our table's debugfs (0 if
# none), in REPLY; shadow_count(id) prints it
read_count() {
	local k id _ n
	REPLY=0
	while read -r k id _ n _; do
		[ "$k" = id ] && [ "$id" = "$1" ] && { REPLY=$n; return 0; }
	done 2>/dev/null <"$SHADOW_DEBUGFS/ids"
	return 0
}
shadow_count() { read_count "$1"; echo "$REPLY"; }

# check(name, cmd...) - run cmd as a KTAP subtest
check() {
	local name=$1 start=$SECONDS rc=0
	shift
	"$@" || rc=1
	ktap_print_msg "$name: $((SECONDS - start)) s"
	if [ $rc = 0 ]; then
		ktap_test_pass "$name"
	else
		ktap_test_fail "$name"
	fi
}

# expect_eq(what, expected, actual) - compare, print a diff on mismatch
expect_eq() {
	[ "$2" = "$3" ] && return 0
	ktap_print_msg "$1: expected '$2', got '$3'"
	return 1
}

# expect_transcript(expected, actual) - like upstream check_result()
expect_transcript() {
	[ "$1" = "$2" ] && return 0
	diff -u --label expected --label result <(echo "$1") <(echo "$2") |
		sed 's/^/# /'
	return 1
}

# require_root - kselftest skip code 4 when not root
require_root() {
	[ "$(id -u)" = 0 ] || { echo "skip: must be root" >&2; exit "$KSFT_SKIP"; }
}

# --- rust_klp_shadow table helpers (test-shadow-*.sh) ---

SHADOW_TABLE_LOADED_HERE=0

# shadow_table_load() - insmod rust_klp_shadow unless it is loaded
shadow_table_load() {
	is_loaded rust_klp_shadow && return 0
	load_mod rust_klp_shadow && SHADOW_TABLE_LOADED_HERE=1
}

# shadow_table_unload() - rmmod rust_klp_shadow if shadow_table_load loaded it
shadow_table_unload() {
	[ "$SHADOW_TABLE_LOADED_HERE" = 1 ] || return 0
	SHADOW_TABLE_LOADED_HERE=0
	unload_mod rust_klp_shadow
}

# shadow_total() - all live variables (the debugfs "total" line)
shadow_total() {
	local k _ n
	while read -r k _ n _; do
		[ "$k" = total ] && { echo "$n"; return 0; }
	done 2>/dev/null <"$SHADOW_DEBUGFS/ids"
	echo 0
}

# read_stat(name) - a value of the table's debugfs stats file, in REPLY
# ("" if none); shadow_stat(name) prints it
read_stat() {
	local k v
	REPLY=
	while read -r k v _; do
		[ "$k" = "$1" ] && { REPLY=$v; return 0; }
	done 2>/dev/null <"$SHADOW_DEBUGFS/stats"
	return 0
}
shadow_stat() { read_stat "$1"; echo "$REPLY"; }

# shadow_case(case) - run a case of test_rust_klp_shadow.ko; 0 if it passed.
# On failure, prints the module's reason.
shadow_case() {
	local run=/sys/kernel/debug/test_rust_klp_shadow/run mark
	dmesg_mark
	mark=$MARK
	echo "$1" >"$run" 2>/dev/null && return 0
	dmesg_since "$mark" | grep -E "test_rust_klp_shadow: (FAIL|no case)" |
		while read -r l; do ktap_print_msg "$l"; done
	return 1
}
