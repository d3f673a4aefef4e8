#!/usr/bin/env bash
# Builds the project's own emulator tools (after scripts/install-system-deps.sh):
#   tools/simavr-bridge  the AVR UART-to-TCP bridge on libsimavr
#   tools/qemu-icount    the QEMU plugin that counts executed instructions
# Idempotent: make rebuilds only what changed. The host tool also builds them
# on first use (lpn.avr.ensure_bridge, lpn.icount.ensure_plugin).
set -euo pipefail

cd "$(dirname "$0")/.."
make -s -C tools/simavr-bridge
make -s -C tools/qemu-icount
