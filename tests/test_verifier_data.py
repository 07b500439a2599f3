"""The learned verifier's training problems: procedural, with exact integer answers, never evaluation data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

pytest.importorskip("reasoning_gym")
_saved = list(sys.path)
V = pytest.importorskip("verifier_data")
sys.path[:] = _saved  # the benchmark puts its folder first (its `datasets` module); keep that out of later tests


def test_training_problems_are_generated_in_both_modes_with_integer_answers() -> None:
    s = V.Settings(problems=2)
    problems = V.training_problems(s)
    generators = {p.metadata["generator"] for p in problems}
    assert generators == {name for name, _ in V.GENERATORS}
    assert "gsm_symbolic" not in generators  # built from GSM8K test questions: our evaluation set
    assert len(problems) == 2 * len(V.GENERATORS) * 2
    assert {p.mode for p in problems} == {"program", "text"}
    for p in problems:
        assert p.reference is not None and float(p.reference) == int(float(p.reference))
        assert p.answer_kind == "number"
    again = V.training_problems(s)
    assert [p.question for p in again] == [p.question for p in problems]  # seeded: the same set every time


def test_solve_takes_an_answer_mode_and_a_verifier() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "longthink"), "solve", "--help"], capture_output=True, text=True
    ).stdout
    assert "--mode" in out and "--verifier" in out and "--judge-model" in out
