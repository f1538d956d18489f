#!/usr/bin/env bash
# Builds v2l-quant for aarch64 and runs its tests under qemu's user-mode
# emulator: on aarch64 only the portable search path exists, and this is
# where it is tested (the test log names the paths it ran).
#
#   bash scripts/test_aarch64.sh
#
# Installs what it lacks: the aarch64 standard library (rustup), Debian's
# qemu-user, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross. When one of
# them cannot be installed it prints SKIP and the reason, and exits 0, unless
# V2L_REQUIRE_AARCH64=1, when it fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu

skip() {
  if [ "${V2L_REQUIRE_AARCH64:-0}" = 1 ]; then
    echo "FAIL: $*" >&2
    exit 1
  fi
  echo "SKIP: aarch64 tests not run: $*"
  exit 0
}

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET" || skip "rustup target add $TARGET failed"
fi
if ! command -v qemu-aarch64 >/dev/null 2>&1 || ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
  [ ! -d /usr/aarch64-linux-gnu/lib ]; then
  apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null ||
    skip "cannot install qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# pipefail: a failing test fails the script; the filter only trims the log.
cargo test --profile fast --target "$TARGET" -p v2l-quant -- --nocapture 2>&1 |
  grep -v -e '^test .* ok$' -e '^ *Compiling '
