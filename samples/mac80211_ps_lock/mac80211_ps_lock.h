/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What rust_mac80211_ps_lock uses of mac80211's internals, for bindgen
 * (scripts/klp-bindgen --internal): the patched test kernel's own headers,
 * compiled as mac80211 compiles them, so every structure layout is the one
 * the running mac80211 has.
 */
#include "ieee80211_i.h"
#include "sta_info.h"
#include "driver-ops.h"

/* Macros bindgen cannot evaluate (they combine enum constants), as enums. */
enum rks_mac80211_const {
	RKS_STA_MAX_TX_BUFFER = STA_MAX_TX_BUFFER,
	RKS_TOTAL_MAX_TX_BUFFER = TOTAL_MAX_TX_BUFFER,
	RKS_STA_INFO_CLEANUP_INTERVAL = STA_INFO_CLEANUP_INTERVAL,
	RKS_IEEE80211_NUM_ACS = IEEE80211_NUM_ACS,
	RKS_IEEE80211_TX_INTCFL_NEED_TXPROCESSING = IEEE80211_TX_INTCFL_NEED_TXPROCESSING,
};
enum rks_mac80211_tx_result {
	RKS_TX_CONTINUE = TX_CONTINUE,
	RKS_TX_QUEUED = TX_QUEUED,
};
enum rks_mac80211_tx_flags {
	RKS_IEEE80211_TX_TEMPORARY_FLAGS = IEEE80211_TX_TEMPORARY_FLAGS,
};
