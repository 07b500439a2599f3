"""Tests of the README example (run by the debugging pack in its sandbox, where ``stats`` is importable)."""

from stats import mean, spread  # type: ignore[import-not-found]


def test_mean() -> None:
    assert mean([1, 2, 3]) == 2


def test_mean_of_one() -> None:
    assert mean([5]) == 5


def test_spread() -> None:
    assert spread([1, 4]) == 3
