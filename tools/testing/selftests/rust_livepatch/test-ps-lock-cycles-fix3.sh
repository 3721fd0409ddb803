#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The CYCLES enable/disable/rmmod cycles of rust_ps_lock_fix3 under traffic
# (test-ps-lock.sh's "cycles" part for this fix alone: each fix's cycles are
# a test of their own, so that scripts/check can spread them over its guests).
PARTS=cycles CYCLE_FIXES=rust_ps_lock_fix3 exec "$(dirname "$0")/test-ps-lock.sh"
