#!/usr/bin/env python3
"""Prepare the firmware's project-local PlatformIO core dir for offline builds.

Idempotent. Run it with the project's virtual environment, which holds the pinned
PlatformIO and SCons:  .venv/bin/python scripts/setup-platformio.py [CORE_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))

from lpn.pio import default_core_dir, ensure_offline_core  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip())
        return 2
    core_dir = ensure_offline_core(Path(argv[1]) if len(argv) == 2 else default_core_dir())
    print(f"PlatformIO core ready for offline builds: {core_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
