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
