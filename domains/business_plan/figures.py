"""The figures the steps pass on: the tool's table and the request's goal, read back from a step's data, and
the sentences computed from them (never written by the model)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from longthink.domains.business_plan.model import Projection
from longthink.domains.business_plan.request import Target


def table_of(data: Mapping[str, Any]) -> Projection | None:
    """The projection a step's data holds (recomputed from its assumptions), or None."""
    raw = data.get("table")
    if not isinstance(raw, Mapping):
        return None
    try:
        return Projection.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None


def target_of(data: Mapping[str, Any]) -> Target | None:
    """The request's goal as the baseline step's data holds it, or None."""
    raw = data.get("target")
    if not isinstance(raw, Mapping):
        return None
    return Target(raw["metric"], Decimal(str(raw["pct"])), int(raw["period"]))


def target_data(target: Target | None) -> dict[str, str | int] | None:
    """The goal as step data (read back by :func:`target_of`)."""
    if target is None:
        return None
    return {"metric": target.metric, "pct": str(target.pct), "period": target.period}


def target_line(table: Projection, target: Target | None) -> tuple[str, bool | None]:
    """One sentence computed from the table: the goal and whether the projection meets it."""
    if target is None or target.period >= len(table.rows):
        return "", None
    row, base = table.rows[target.period], table.rows[0]
    if target.metric == "margin":
        change = row.margin - base.margin
        met = change >= target.pct
        return (
            f"Goal: margin +{target.pct} points by {row.label}. The projection gives a margin of {row.margin}% "
            f"in {row.label} against {base.margin}% at baseline: goal {'met' if met else 'not met'}.",
            met,
        )
    growth = table.growth(target.metric, target.period, base=0)
    met = growth is not None and growth >= target.pct
    name = target.metric.replace("_", " ")
    return (
        f"Goal: {name} +{target.pct}% by {row.label}. The projection gives {name} of "
        f"{table.money(row.value(target.metric))} in {row.label} against {table.money(base.value(target.metric))} "
        f"at baseline ({growth if growth is not None else 'n/a'}% growth): goal {'met' if met else 'not met'}.",
        met,
    )


def summary_line(table: Projection, period: int = 0) -> str:
    """One period of the table in a sentence (revenue, costs, profit, margin)."""
    r = table.rows[period]
    return (
        f"{r.label}: revenue {table.money(r.revenue)}, variable costs {table.money(r.variable_costs)}, fixed costs "
        f"{table.money(r.fixed_costs)}, profit {table.money(r.profit)} (margin {r.margin}%)"
    )
