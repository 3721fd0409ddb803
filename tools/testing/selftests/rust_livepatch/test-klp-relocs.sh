#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Livepatch relocations of Rust livepatches (klp::extern_symbols! and
# scripts/klp-convert; Documentation/livepatch/rust-klp-relocations.rst):
# the samples of samples/klp_relocs/ reach static symbols of vmlinux and of
# the module they patch, as C livepatches built by kpatch-build or
# klp-build do.
#
#  1. rust_klp_relocs calls the static version_proc_show() of vmlinux:
#     /proc/cmdline shows "rust_klp_relocs: " and then /proc/version's line;
#     disabled and removed, /proc/cmdline is the boot's again.
#  2. rust_klp_relocs_sta, loaded before its target sta_model, is applied
#     when sta_model loads (klp writes the .klp.rela.sta_model sections
#     then): sta_model's stats file shows the frames counter read through
#     sta_model's static sta_model_counter_get() and counters[], equal to
#     the model's own frames file.
#  3. sta_model unloaded and loaded again while the livepatch stays: klp
#     clears the relocations and writes them again; the stats are right.
#  4. disabled and removed: sta_model's own stats are back.
#  5. rust_klp_relocs_unconverted (the same objects, never given to
#     klp-convert) is refused at load, ENOEXEC, because of its guard
#     relocations: never loaded with calls to address 0.
#  6. test_klp_relocs_unlisted, a vmlinux livepatch that calls a static
#     function of sta_model but does not list sta_model in its objects
#     (klp writes the relocations of the patch's objects only), is refused
#     at load, EINVAL, with a pr_err naming the object: never loaded with
#     a call that nothing resolves.

. "$(dirname "$0")/functions.sh"
require_root

LP=rust_klp_relocs
LP_STA=rust_klp_relocs_sta
STA=/sys/kernel/debug/sta_model

ktap_print_header
ktap_set_plan 6

read_var orig_cmdline /proc/cmdline

# logged(mark, text) - a kernel log line after mark contains text
logged() {
	since_awk "$1" -v s="$2" 'index($0, s) { f = 1 } END { exit !f }' && return 0
	ktap_print_msg "not in the log: $2"
	return 1
}

vmlinux_static() {
	local cmdline version
	load_lp $LP || return 1
	read_var cmdline /proc/cmdline
	read_var version /proc/version
	expect_eq "/proc/cmdline (patched)" "$LP: $version" "$cmdline" || return 1
	disable_lp $LP && unload_mod $LP || return 1
	read_var cmdline /proc/cmdline
	expect_eq "/proc/cmdline (restored)" "$orig_cmdline" "$cmdline"
}
check "$LP: calls vmlinux's static version_proc_show() through a klp relocation" \
	vmlinux_static

# frames_match - with the model's traffic paused, the patched stats file
# shows the model's own frames counter (and traffic ran: it is not 0)
frames_match() {
	local frames stats
	echo 0 >/sys/module/sta_model/parameters/run
	nap 1	# the TX threads see run = 0 within a frame
	read_var frames $STA/frames
	read_var stats $STA/stats
	echo 1 >/sys/module/sta_model/parameters/run
	expect_eq "sta_model stats (patched)" "frames $frames ($LP_STA)" "$stats" &&
		[ "$frames" -gt 0 ] || {
		ktap_print_msg "no frames counted"
		return 1
	}
}

# wait_frames - until the model counted a frame since its load
wait_frames() {
	loop_until "read_var _f $STA/frames && [ \"\$_f\" -gt 0 ]"
}

before_target() {
	local mark
	dmesg_mark
	mark=$MARK
	load_lp $LP_STA || return 1
	load_mod sta_model || return 1
	logged "$mark" "livepatch: applying patch '$LP_STA' to loading module 'sta_model'" &&
		wait_frames && frames_match
}
check "$LP_STA: loaded before sta_model, applied when it loads; static symbols read" \
	before_target

target_reloaded() {
	local mark
	dmesg_mark
	mark=$MARK
	unload_mod sta_model && load_mod sta_model || return 1
	logged "$mark" "livepatch: reverting patch '$LP_STA' on unloading module 'sta_model'" &&
		logged "$mark" "livepatch: applying patch '$LP_STA' to loading module 'sta_model'" &&
		wait_frames && frames_match
}
check "sta_model reloaded while $LP_STA stays: relocations cleared and written again" \
	target_reloaded

removed() {
	local first
	disable_lp $LP_STA && unload_mod $LP_STA || return 1
	read -r first _ <$STA/stats
	# The model's own stats: a line per counter, "frames N" first.
	expect_eq "sta_model stats (unpatched), first word" frames "$first" &&
		! grep -q "$LP_STA" $STA/stats || {
		ktap_print_msg "the patched stats are still shown"
		return 1
	}
	unload_mod sta_model
}
check "$LP_STA disabled and removed: sta_model's own stats back" removed

# refused(file, module, errno, text) - loading file.ko fails with errno
# (modctl's answer), the livepatch module is not loaded, and the kernel log
# since MARK has text
refused() {
	local file=$1 mod=$2
	modpath "$file" || return 1
	if mod_request load "$REPLY"; then
		ktap_print_msg "$file.ko loaded"
		[ -e $KLP_SYSFS_DIR/$mod ] && disable_lp "$mod"
		unload_mod "$mod"
		return 1
	fi
	ktap_print_msg "insmod: $REPLY"
	! is_loaded "$mod" && expect_eq "insmod errno" "$3" "${REPLY%% *}" && logged "$MARK" "$4"
}

dmesg_mark
check "$LP unconverted: refused at load (ENOEXEC), not loaded with calls to 0" \
	refused ${LP}_unconverted $LP 8 "$LP: Unknown rela relocation: 32"

dmesg_mark
check "an object the patch does not list: refused at load (EINVAL), pr_err names it" \
	refused test_klp_relocs_unlisted test_klp_relocs_unlisted 22 \
	"is for object 'sta_model', which the patch does not list in Livepatch::OBJECTS"

ktap_finished
