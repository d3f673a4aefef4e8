#!/usr/bin/env python3
"""Regenerate tests/golden/*.json from the fixed model.

Run this only when the fixed-point contract (docs/fixed-point.md) changes on
purpose; the golden files exist to make any unintended change fail the tests.
"""
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "tests"))

from golden_cases import CASES, STEPS, run_case  # noqa: E402

for name in CASES:
    out = root / "tests" / "golden" / f"{name}.json"
    out.write_text(json.dumps({"case": name, "steps": STEPS, "state_sha256_16": run_case(name)}, indent=0) + "\n")
    print(f"wrote {out.relative_to(root)}")
