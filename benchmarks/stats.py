"""Small statistics the benchmarks share."""

from __future__ import annotations

import math


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """The Wilson score interval (95% with the default ``z``) of the share k/n, rounded to 4 places; None without
    trials."""
    if n == 0:
        return None
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(0.0, mid - half), 4), round(min(1.0, mid + half), 4)]


def mean_ci(values: list[float], boots: int = 10_000, seed: int = 0) -> list[float] | None:
    """A 95% percentile-bootstrap interval of the mean of ``values`` (paired differences, say), seeded, rounded to
    4 places; None with fewer than two values."""
    import random

    if len(values) < 2:
        return None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(boots))
    return [round(means[int(0.025 * boots)], 4), round(means[int(0.975 * boots) - 1], 4)]
