#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The livepatch builder of rust/livepatch/ (klp::Livepatch, klp::livepatch!,
# klp::replacement!), with three test modules that replace cmdline_proc_show()
# and print their callbacks:
#
#  1. test_rust_api_patch transitions; /proc/cmdline is patched; init,
#     pre_patch, post_patch ran in that order;
#  2. disabling and unloading it runs pre_unpatch, post_unpatch, then the
#     drop of its data, and restores /proc/cmdline;
#  3. test_rust_api_patch_fail, whose pre_patch fails with ENODEV: insmod
#     fails with it, no other callback runs, nothing is left in sysfs;
#  4. test_rust_api_patch_replace (atomic replace, state 0x7e57 version 2)
#     replaces test_rust_api_patch (version 1): its pre_patch sees version 1,
#     the replaced patch leaves sysfs (without unpatch callbacks) and unloads;
#  5. disabling and unloading the replacement restores /proc/cmdline.

. "$(dirname "$0")/functions.sh"
require_root

MOD=test_rust_api_patch
MOD_FAIL=test_rust_api_patch_fail
MOD_REPL=test_rust_api_patch_replace

ktap_print_header
ktap_set_plan 5

read_var orig_cmdline /proc/cmdline

# lines(mark, mod) - the module's own log lines since mark, prefix removed
lines() {
	dmesg_since "$1" | grep -v '\(tainting\|taints\) kernel' | sed -n "s/^$2: //p"
}

test_patch() {
	dmesg_mark
	mark=$MARK
	load_lp $MOD || return 1
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline" "$MOD: patched" "$_v" || return 1
	expect_transcript "init
pre_patch vmlinux
post_patch vmlinux" "$(lines "$mark" $MOD)"
}

test_unpatch() {
	is_loaded $MOD || return 1
	disable_lp $MOD || return 1
	unload_mod $MOD || return 1
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline" "$orig_cmdline" "$_v" || return 1
	expect_transcript "init
pre_patch vmlinux
post_patch vmlinux
pre_unpatch vmlinux
post_unpatch vmlinux
exit" "$(lines "$mark" $MOD)"
}

test_failing_pre_patch() {
	local mark
	dmesg_mark
	mark=$MARK
	modpath $MOD_FAIL || return 1
	if mod_request load "$REPLY"; then
		ktap_print_msg "insmod $MOD_FAIL succeeded"
		return 1
	fi
	case $REPLY in
	*"No such device"*) ;;
	*) ktap_print_msg "insmod: expected ENODEV, got: $REPLY"; return 1 ;;
	esac
	! is_loaded $MOD_FAIL || { ktap_print_msg "$MOD_FAIL is loaded"; return 1; }
	[ ! -e $KLP_SYSFS_DIR/$MOD_FAIL ] || { ktap_print_msg "$MOD_FAIL in sysfs"; return 1; }
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline" "$orig_cmdline" "$_v" || return 1
	expect_transcript "pre_patch vmlinux: refusing
data dropped" "$(lines "$mark" $MOD_FAIL)"
}

test_replace() {
	local mark
	dmesg_mark
	mark=$MARK
	load_lp $MOD || return 1
	load_lp $MOD_REPL || return 1
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline" "$MOD_REPL: patched" "$_v" || return 1
	# The replaced patch goes away by itself; then its module can be unloaded.
	loop_until "[ ! -e $KLP_SYSFS_DIR/$MOD ]" ||
		{ ktap_print_msg "$MOD still in sysfs after replace"; return 1; }
	unload_mod $MOD || return 1
	expect_transcript "init
pre_patch vmlinux
post_patch vmlinux
exit" "$(lines "$mark" $MOD)" || return 1
	expect_transcript "pre_patch vmlinux, previous state version 1
post_patch vmlinux" "$(lines "$mark" $MOD_REPL)"
}

test_replace_unpatch() {
	local mark
	is_loaded $MOD_REPL || return 1
	dmesg_mark
	mark=$MARK
	disable_lp $MOD_REPL || return 1
	unload_mod $MOD_REPL || return 1
	read_var _v /proc/cmdline
	expect_eq "/proc/cmdline" "$orig_cmdline" "$_v" || return 1
	expect_transcript "pre_unpatch vmlinux
post_unpatch vmlinux" "$(lines "$mark" $MOD_REPL)"
}

check "patch transitions, pre_patch and post_patch run" test_patch
check "unpatch runs pre_unpatch and post_unpatch, unload restores" test_unpatch
check "failing pre_patch cancels the load" test_failing_pre_patch
check "atomic replace takes the state over" test_replace
check "the replacement unpatches cleanly" test_replace_unpatch

# Leave nothing behind for the next test.
for m in $MOD_REPL $MOD; do
	[ -e $KLP_SYSFS_DIR/$m ] && disable_lp $m
	is_loaded $m && unload_mod $m
done

ktap_finished
