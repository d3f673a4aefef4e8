#!/usr/bin/env bash
# Installs the Debian packages the project builds and tests with (cross compilers,
# emulators). Idempotent: asks apt only for what is missing, and refreshes apt's
# package lists only when something is missing, so a set-up machine does no network work.
set -euo pipefail

PACKAGES=(
    # Strictness checks of the generated C (a second compiler, a static analyser)
    clang
    cppcheck
    # Cortex-M firmware and its emulator
    gcc-arm-none-eabi
    libnewlib-arm-none-eabi
    binutils-arm-none-eabi
    qemu-system-arm
    # AVR firmware and its cycle-exact simulator
    gcc-avr
    avr-libc
    simavr
    libsimavr-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
