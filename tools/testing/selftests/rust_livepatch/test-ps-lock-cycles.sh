#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The enable/disable/rmmod cycles of test-ps-lock.sh (CYCLES per fix, under
# traffic), as a test of their own: they take most of its time, and
# scripts/check runs them in one guest while test-ps-lock.sh's race subtests
# run in another.
PARTS=cycles exec "$(dirname "$0")/test-ps-lock.sh"
