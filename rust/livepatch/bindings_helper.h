/* SPDX-License-Identifier: GPL-2.0 */
/* What scripts/klp-bindgen generates Rust bindings for. */
#include <linux/livepatch.h>
#include "rust_klp_shadow.h"
