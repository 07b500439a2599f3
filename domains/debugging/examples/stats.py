"""Small statistics helpers (the debugging pack's README example: ``mean`` has a bug)."""


def mean(xs: list[float]) -> float:
    """The average of ``xs``."""
    total = 0.0
    for x in xs:
        total += x
    return total / (len(xs) - 1)


def spread(xs: list[float]) -> float:
    """The distance between the largest and the smallest item."""
    return max(xs) - min(xs)
