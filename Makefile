# SPDX-License-Identifier: GPL-2.0
#
# Rust shadow variables for livepatches: out-of-tree modules, a cached test
# kernel and kselftests run in a virtme-ng guest.  `make help` lists targets.

ROOT := $(CURDIR)
S := $(ROOT)/scripts
# The prepared test kernel tree; built and cached on first use.
KDIR_CMD = $(S)/build-kernel
# Debian's Rust 1.96 (the kernel's rust/ was built with it), not rustup's on PATH;
# `make modules CLIPPY=1` lints with the same toolchain's clippy-driver.
KMAKE = $(MAKE) -C $(KDIR) M=$(ROOT) LLVM=1 RUSTC=/usr/bin/rustc \
	RUSTDOC=/usr/bin/rustdoc CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$(BINDGEN)
BINDGEN = /var/lib/rust-klp-shadow/cargo/bin/bindgen
KSFT := tools/testing/selftests/rust_livepatch
GEN := rust/livepatch/bindings_generated.rs
# bindgen of the table's private header: the prototypes of its C glue.
GLUE_GEN := rust/shadow/glue_generated.rs
# bindgen of the ps_lock samples' patch target (sta_model.h).
STA_GEN := samples/ps_lock/sta_model_generated.rs
# bindgen of the kernel's own shadow sample target, from its .c file (no header).
SHADOW_MOD_C = $(KDIR)/samples/livepatch/livepatch-shadow-mod.c
SHADOW_GEN := samples/shadow_fix/livepatch_shadow_mod_generated.rs
# bindgen of mac80211's internals for the real-mac80211 ps_lock fix: the
# structures and prototypes it uses, and C wrappers of the inline helpers.
MAC_DIR := samples/mac80211_ps_lock
MAC_GEN := $(MAC_DIR)/mac80211_generated.rs
MAC_WRAP := $(MAC_DIR)/mac80211_wrap.c
MAC_ITEMS := sta_info ieee80211_tx_data ieee80211_local ieee80211_sub_if_data txq_info ps_data \
	ieee80211_tx_info ieee80211_hdr rks_mac80211_.* ieee80211_sta_info_flags \
	ieee80211_sub_if_data_flags ieee80211_hw_flags sta_notify_cmd nl80211_iftype \
	mac80211_tx_info_flags txq_info_flags \
	ieee80211_sta_ps_deliver_wakeup sta_info_recalc_tim ieee80211_add_pending_skbs \
	ieee80211_check_fast_xmit ieee80211_free_txskb __ieee80211_schedule_txq \
	ieee80211_is_mgmt ieee80211_is_bufferable_mmpdu ieee80211_vif_is_mesh _ieee80211_hw_check \
	test_sta_flag clear_sta_flag vif_to_sdata get_bss_sdata to_txq_info txq_has_queue \
	skb_queue_head_init skb_queue_splice_tail_init skb_queue_len skb_get_queue_mapping \
	timer_pending atomic_dec set_bit ieee80211_tx_result
space := $(subst ,, )
# The livepatch relocations of Rust livepatches (scripts/klp-convert, issue 16):
# a host tool, built with Debian's cargo into the cache, run on every module
# `make modules` built.
KLP_CONVERT_TARGET = $(or $(RKS_CACHE),/var/lib/rust-klp-shadow)/klp-convert-target
KLP_CONVERT = $(KLP_CONVERT_TARGET)/release/klp-convert

.PHONY: all help setup kernel kdir modules run check shell bench rust-analyzer \
	clean host-test klp-convert

all: modules

help:
	@echo 'Targets:'
	@echo '  run           the live ps_lock demo in a test-kernel guest (installs what is missing)'
	@echo '  check         every test: the kselftests in one guest per core, the host tests beside them'
	@echo '  setup         install the Debian packages, bindgen-cli and virtme-ng'
	@echo '  kernel        build (once) and cache the test kernel'
	@echo '  kdir          print the absolute path of the prepared kernel tree (make -s kdir)'
	@echo '  modules       build the project modules against the test kernel'
	@echo '  shell         an interactive root shell in the test kernel (modules at their host paths)'
	@echo '  bench         benchmark our table against the kernel klp_shadow_* (bench kernel)'
	@echo '                (scripts/bench --profile: the table'"'"'s instructions per function and operation)'
	@echo '  host-test     cargo test of the table logic and of klp-convert on the host'
	@echo '  klp-convert   build the tool that writes livepatch relocations into .ko files'
	@echo '  rust-analyzer write rust-project.json for editors'
	@echo '  clean         remove build products (keeps the cached kernel)'
	@echo 'Variables: KDIR=<tree> to use another prepared kernel tree.'

setup:
	@$(S)/setup

kernel: setup
	@$(KDIR_CMD) >/dev/null

kdir: kernel
	@$(KDIR_CMD)

# The generated bindings depend on files of the kernel tree: their rules
# exist only in the sub-make that `modules` runs with KDIR set, after
# `kernel` made sure the tree exists (never while a fresh machine's make
# parses this file, before scripts/setup installed the kernel source).
# They also depend on the kernel's configuration: another test kernel
# (a changed .config.fragment) regenerates them.
ifdef KDIR
$(GEN): rust/livepatch/bindings_helper.h rust/shadow/rust_klp_shadow.h $(S)/klp-bindgen \
		$(KDIR)/.config
	@$(S)/klp-bindgen $(KDIR) $< $@

$(GLUE_GEN): rust/shadow/shadow_glue.h rust/shadow/rust_klp_shadow.h $(S)/klp-bindgen \
		$(KDIR)/.config
	@$(S)/klp-bindgen $(KDIR) $< $@ 'rks_.*'

$(STA_GEN): samples/ps_lock/sta_model.h $(S)/klp-bindgen $(KDIR)/.config
	@$(S)/klp-bindgen $(KDIR) $< $@ 'sta_.*|ieee80211_.*'

$(SHADOW_GEN): $(SHADOW_MOD_C) $(S)/klp-bindgen $(KDIR)/.config
	@$(S)/klp-bindgen $(KDIR) $< $@ 'dummy|dummy_(alloc|free|check)' --static-fns

$(MAC_GEN) $(MAC_WRAP) &: $(MAC_DIR)/mac80211_ps_lock.h $(S)/klp-bindgen $(KDIR)/.config Makefile
	@$(S)/klp-bindgen $(KDIR) $< $(MAC_GEN) '^($(subst $(space),|,$(strip $(MAC_ITEMS))))$$' --internal $(MAC_WRAP) $(KDIR)/net/mac80211
endif

# Evaluated lazily, in recipes that run after `kernel`.
KDIR ?= $(shell $(KDIR_CMD) --print-dir)

# klp-convert runs on every module of modules.order: it rewrites those that
# declare livepatch symbols (`klp::extern_symbols!`), leaves the others (and
# those it converted before) alone, and fails the build, naming the module and
# the symbol, on anything klp could not resolve or write.  Module targets are
# looked up among this project's and the test kernel's modules.
modules: kernel klp-convert
	@$(MAKE) --no-print-directory KDIR=$(KDIR) $(GEN) $(GLUE_GEN) $(STA_GEN) $(SHADOW_GEN) $(MAC_GEN)
	@$(KMAKE) modules
	@cmd=$$(sed -n 's/^savedcmd_[^ ]* := //p' samples/klp_relocs/.rust_klp_relocs.ko.cmd | \
		sed 's|-o [^ ]*rust_klp_relocs\.ko |-o $(ROOT)/$(KLP_UNCONVERTED) |') && \
		[ -n "$$cmd" ] && (cd $(KDIR) && eval "$$cmd")
	@sed 's/\.o$$/.ko/' modules.order | xargs $(KLP_CONVERT) -v --vmlinux $(KDIR)/vmlinux \
		--modules $(ROOT) --modules $(KDIR)
	@$(MAKE) --no-print-directory -C $(KSFT) KDIR=$(KDIR)

# A copy of rust_klp_relocs that klp-convert never sees (it is not in
# modules.order), linked by `modules` from the same objects with kbuild's own
# saved command, for test-klp-relocs.sh: the loader must refuse it (its
# guards), never load it with calls to address 0.
KLP_UNCONVERTED := samples/klp_relocs/rust_klp_relocs_unconverted.ko

klp-convert: setup
	@cd $(S)/klp-convert && CARGO_TARGET_DIR=$(KLP_CONVERT_TARGET) RUSTC=/usr/bin/rustc \
		nice -n 19 /usr/bin/cargo build -q --locked --release -j1

host-test: setup
	@$(S)/host-test

# The host tests run inside scripts/check, beside the guests; its time
# table counts from here.
check: export CHECK_T0 := $(shell date +%s)
check: modules
	@$(S)/check

run: modules
	@$(S)/guest-run $(ROOT)/scripts/demo

shell: modules
	@$(S)/guest-run --interactive

bench: setup
	@$(S)/bench

rust-analyzer: kernel
	@$(MAKE) --no-print-directory KDIR=$(KDIR) $(GEN) $(GLUE_GEN) $(STA_GEN) $(SHADOW_GEN) $(MAC_GEN)
	@$(KMAKE) rust-analyzer

clean:
	@[ ! -d "$(KDIR)" ] || $(KMAKE) clean
	@rm -f $(GEN) $(GLUE_GEN) $(STA_GEN) $(SHADOW_GEN) $(MAC_GEN) $(MAC_WRAP) rust-project.json
	@$(MAKE) --no-print-directory -C $(KSFT) clean
