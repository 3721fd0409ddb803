#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The chain the project stands on: the test kernel loads an out-of-tree Rust
# module, and a Rust livepatch built with the klp API (rust/livepatch/)
# patches vmlinux and unpatches cleanly.
#
#  1. rust_minimal: insmod prints its load line, rmmod its unload line.
#  2. rust_livepatch_cmdline: the transition completes (enabled 1,
#     transition 0) and /proc/cmdline shows the patched text.
#  3. disabling it and rmmod restores the original /proc/cmdline.

. "$(dirname "$0")/functions.sh"
require_root

MOD_MIN=rust_minimal
MOD_LP=rust_livepatch_cmdline
PATCHED="this has been live patched"

ktap_print_header
ktap_set_plan 3

test_minimal() {
	local mark out
	dmesg_mark
	mark=$MARK
	load_mod $MOD_MIN || return 1
	unload_mod $MOD_MIN || return 1
	out=$(dmesg_since "$mark" | grep "^$MOD_MIN: Rust module")
	expect_transcript "$MOD_MIN: Rust module loaded (kernel Rust works)
$MOD_MIN: Rust module unloaded, sum 84" "$out"
}

read_var orig_cmdline /proc/cmdline

test_patch() {
	local mark out
	dmesg_mark
	mark=$MARK
	load_lp $MOD_LP || return 1
	read_var _v $KLP_SYSFS_DIR/$MOD_LP/enabled
	expect_eq "$MOD_LP enabled" 1 "$_v" || return 1
	read_var _v $KLP_SYSFS_DIR/$MOD_LP/transition
	expect_eq "$MOD_LP transition" 0 "$_v" || return 1
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline (patched)" "$PATCHED" "$_v" || return 1
	out=$(dmesg_since "$mark" | grep -E "^livepatch: .*(enabling patch|patching transition|patching complete)")
	expect_transcript "livepatch: enabling patch '$MOD_LP'
livepatch: '$MOD_LP': starting patching transition
livepatch: '$MOD_LP': patching complete" "$out"
}

test_unpatch() {
	is_loaded $MOD_LP || { ktap_print_msg "$MOD_LP is not loaded"; return 1; }
	disable_lp $MOD_LP || return 1
	unload_mod $MOD_LP || return 1
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline (restored)" "$orig_cmdline" "$_v"
}

check "$MOD_MIN loads and unloads" test_minimal
check "$MOD_LP patches /proc/cmdline" test_patch
check "$MOD_LP disables and unloads, /proc/cmdline restored" test_unpatch

# Leave nothing behind for the next test.
if is_loaded $MOD_LP; then
	[ -e $KLP_SYSFS_DIR/$MOD_LP ] && disable_lp $MOD_LP
	unload_mod $MOD_LP
fi
is_loaded $MOD_MIN && unload_mod $MOD_MIN

ktap_finished
