"""The fixed model still computes, step by step, what the committed golden vectors record."""
import json
from pathlib import Path

import pytest

from golden_cases import CASES, run_case

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_model_matches_golden_vectors(name):
    recorded = json.loads((GOLDEN / f"{name}.json").read_text())["state_sha256_16"]
    actual = run_case(name)
    first = next((i for i, (a, b) in enumerate(zip(recorded, actual)) if a != b), None)
    assert first is None and len(actual) == len(recorded), (
        f"state differs from the golden vector first after step {first}; if the contract "
        f"changed on purpose, run scripts/make-golden.py and say why in the commit")
