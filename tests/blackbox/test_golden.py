"""Replays the reference's recorded answers (tests/golden/, recorded by tests/differential/run.py
--record against the real reference and the real inference-schema) against our binary with the
stand-in inference-schema: CI needs no reference, and a drift of ours or of the stand-in shows up here.
Differences the project keeps on purpose are the harness's DIFFERENCES list, each with its reason."""
import os
import sys

import pytest

from conftest import require_binary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "differential"))
import harness  # noqa: E402

GOLDEN_CASES = sorted(name[:-5] for name in os.listdir(harness.GOLDEN) if name.endswith(".json")) \
    if os.path.isdir(harness.GOLDEN) else []


def test_every_case_has_a_golden():
    """A case added to the corpus without recording its golden would never be checked in CI."""
    assert set(harness.case_names()) == set(GOLDEN_CASES), (
        "tests/differential/corpus and tests/golden disagree; record the goldens with "
        "`/usr/bin/python3 tests/differential/run.py --record` (see tests/differential/README.md)")
    assert len(GOLDEN_CASES) >= 40


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden(name, monkeypatch):
    monkeypatch.setenv("AZMLINFSRV", require_binary())
    case = harness.load_case(name)
    expected = harness.read_golden(name)
    actual = harness.run_case(case, "ours", harness.STAND_IN_SCHEMA)
    problems = harness.compare(case, expected, actual)
    assert not problems, (f"case {name} ({case.get('about', '')}) differs from the reference:\n    "
                          + "\n    ".join(problems) + "\n---- our log\n" + actual["raw_log"])
