# SPDX-License-Identifier: GPL-2.0
# Shared settings for the scripts/ helpers.  Source it, do not run it.
#
# Everything that is expensive to make (the test kernel, the tool venv,
# cargo-installed tools) lives in $RKS_CACHE, outside the work tree, so a
# fresh clone on the same machine (CI) reuses it.  Not under /var/cache:
# virtme-ng mounts a tmpfs there in the guest, and tests need the kernel
# tree (ktap_helpers.sh, the sample modules) at its host path.

RKS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RKS_CACHE=${RKS_CACHE:-/var/lib/rust-klp-shadow}

# Pinned tool versions.
KERNEL_SERIES=6.12
BINDGEN_VERSION=0.71.1
VNG_VERSION=1.42

# The kernel's Rust build must use Debian's rustc-web (its sysroot has the
# kernel's rust-src); the rustup toolchain some machines put on PATH does not.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export BINDGEN=$RKS_CACHE/cargo/bin/bindgen
VENV=$RKS_CACHE/venv
export PATH=$RKS_CACHE/cargo/bin:$VENV/bin:$PATH

# Every kernel and module build uses clang (KASAN + Rust needs it in 6.12).
KMAKE_FLAGS=(LLVM=1 RUSTC=$RUSTC RUSTDOC=$RUSTDOC BINDGEN=$BINDGEN)

die() { echo "error: $*" >&2; exit 1; }
info() { echo ">>> $*" >&2; }
