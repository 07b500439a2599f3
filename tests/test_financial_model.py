"""The financial-model tool: projection arithmetic and rounding, the Markdown table, number extraction, and the
number-consistency verifier on hand-made texts with right and wrong figures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from longthink.domains.business_plan.claims import check_numbers, extract_numbers, find_calculations
from longthink.domains.business_plan.model import Assumptions, Investment, Lever, Projection, project
from longthink.domains.business_plan.tool import FinancialModel
from longthink.tools.base import call_tool

D = Decimal


def bakery() -> Projection:
    return project(
        Assumptions(
            revenue=D(2_000_000),
            variable_cost_pct=D(40),
            fixed_costs=D(1_000_000),
            revenue_growth_pct=D(5),
            levers=[Lever(name="catering", revenue_uplift_pct=D(3))],
            investments=[Investment(name="oven", amount=D(50_000), period=1)],
        )
    )


def test_projection_arithmetic_by_hand() -> None:
    t = bakery()
    assert [r.label for r in t.rows] == ["Baseline", "Year 1", "Year 2", "Year 3"]
    base, y1, y2 = t.rows[0], t.rows[1], t.rows[2]
    assert (base.revenue, base.variable_costs, base.fixed_costs, base.profit, base.margin) == (
        D(2_000_000),
        D(800_000),
        D(1_000_000),
        D(200_000),
        D("10.0"),
    )
    # year 1: 2,000,000 x 1.05 x 1.03 = 2,163,000; variable 40% = 865,200; + oven 50,000
    assert (y1.revenue, y1.variable_costs, y1.one_off, y1.total_costs) == (
        D(2_163_000),
        D(865_200),
        D(50_000),
        D(1_915_200),
    )
    assert y1.profit == D(247_800) and y1.margin == D("11.5")
    # year 2: 2,000,000 x 1.05^2 x 1.03 = 2,271,150 exactly
    assert y2.revenue == D(2_271_150) and y2.one_off == 0
    for r in t.rows:  # every printed row adds up exactly (totals from rounded lines)
        assert r.total_costs == r.variable_costs + r.fixed_costs + r.one_off
        assert r.profit == r.revenue - r.total_costs
    assert t.growth("profit", 1, base=0) == D("23.9")
    assert t.growth("revenue", 2) == D("5.0")


def test_rounding_is_half_up_per_line_and_price_volume_revenue() -> None:
    t = project(
        Assumptions(
            price=D("2.5"), volume=D(1001), variable_cost_pct=D(33), fixed_costs=D("100.4"), periods=1, period="quarter"
        )
    )
    base = t.rows[0]
    assert base.revenue == D(2503)  # 2502.5 rounds half up
    assert base.variable_costs == D(826)  # 825.825
    assert base.fixed_costs == D(100)
    assert base.profit == D(2503 - 826 - 100)
    assert t.rows[1].label == "Q1"
    cents = project(Assumptions(revenue=D("1000.005"), decimals=2, periods=1))
    assert cents.rows[0].revenue == D("1000.01")


def test_markdown_table() -> None:
    md = bakery().markdown()
    lines = md.splitlines()
    assert lines[0] == "| | Baseline | Year 1 | Year 2 | Year 3 |"
    assert "| **Profit** | $200,000 | $247,800 | $362,690 | $430,825 |" in lines
    assert "| Margin | 10.0% | 11.5% | 16.0% | 18.1% |" in lines
    assert "| Profit vs baseline | – | +23.9% | +81.3% | +115.4% |" in lines
    # no investment: no one-off row
    assert "One-off" not in project(Assumptions(revenue=D(10))).markdown()


def test_assumptions_are_validated() -> None:
    with pytest.raises(ValidationError, match="baseline revenue"):
        Assumptions(price=D(3))
    with pytest.raises(ValidationError, match="price x volume"):
        Assumptions(revenue=D(100), price=D(3), volume=D(10))
    with pytest.raises(ValidationError, match="after the horizon"):
        Assumptions(revenue=D(100), periods=2, investments=[Investment(amount=D(5), period=3)])
    with pytest.raises(ValidationError):
        Assumptions(revenue=D(100), variable_cost_pct=D(140))
    assert Projection.from_json(bakery().to_json()).rows == bakery().rows


def test_extract_numbers_formats() -> None:
    found = {
        (n.raw, n.value, n.kind)
        for n in extract_numbers(
            "Loss of ($1,200), -5%, €3.5bn, 12k, 7 percent, -$40 and $2.4 million; "
            "we open 3 stores in 2025.\n1. first item\nIn year 2 and Q3 nothing."
        )
    }
    assert ("($1,200)", D(-1200), "money") in found
    assert ("-5%", D(-5), "percent") in found
    assert ("€3.5bn", D("3.5e9"), "money") in found
    assert ("12k", D(12_000), "money") in found
    assert ("7 percent", D(7), "percent") in found
    assert ("-$40", D(-40), "money") in found
    assert ("$2.4 million", D(2_400_000), "money") in found
    assert ("3", D(3), "plain") in found
    values = {n.value for n in extract_numbers("In 2025, in year 2 and Q3.\n1. item")}
    assert values == set()  # a calendar year, a period and a list marker are no figures


GOOD = """Revenue of $2,000,000 today grows to $2.16M in year 1. Profit rises from $200,000 to $247,800 in
year 1, a margin of 11.5%. Profit grows by 24% in year 1. Variable costs are 40% of revenue. Fixed costs stay at
$1.0M. We open 3 new stores."""


def test_verifier_accepts_a_text_with_right_numbers() -> None:
    check = check_numbers(GOOD, bakery())
    assert check.consistent, check.summary()
    assert len(check.verdicts) >= 8  # the figures were really checked, not skipped


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("Profit of $500k in year 2.", "$500k"),
        ("Revenue will reach $3.1M in year 3.", "$3.1M"),
        ("Profit grows by 10% in year 1.", "10%"),
        ("Revenue is up 8% in year 2.", "8%"),
        ("In year 1 the margin is 15%.", "15%"),
        ("Variable costs are 30% of revenue.", "30%"),
        ("Total costs of $1,500,000 in year 1.", "$1,500,000"),
        ("Profit falls by 5% in year 1.", "5%"),
    ],
)
def test_verifier_rejects_wrong_numbers_with_context(text: str, wrong: str) -> None:
    check = check_numbers(GOOD + "\n" + text, bakery())
    assert not check.consistent
    [bad] = check.disagreements
    assert bad.claim.number.raw == wrong
    assert text.split()[0] in bad.describe() and "DISAGREES" in bad.describe()


def test_verifier_scope_periods_growth_and_goal() -> None:
    t = bakery()
    # checked against the baseline only: a year-2 claim is out of scope, a wrong baseline figure is not
    assert check_numbers("Profit of $9 in year 2.", t, periods=[0]).consistent
    assert not check_numbers("Today profit is $150,000.", t, periods=[0]).consistent
    assert check_numbers("Profit grows by 50%.", t, growth=False).consistent
    assert check_numbers("Our goal: grow profit by 10% next year.", t, ignore_growth=[D(10)]).consistent
    assert not check_numbers("Our goal: grow profit by 10% next year.", t).consistent
    # the tool's own Markdown table inside the text is not re-checked
    assert check_numbers(t.markdown(), t).numbers == 0


async def test_tool_wrapper() -> None:
    tool = FinancialModel()
    args = {"assumptions": {"revenue": 1000, "variable_cost_pct": 50, "fixed_costs": 300}, "text": "Profit is $200."}
    ok = await call_tool(tool, args)
    assert ok.ok and "| **Profit** | $200 |" in ok.output and ok.data["check"]["consistent"]
    bad = await call_tool(tool, {**args, "text": "Profit is $900."})
    assert not bad.ok and "disagree" in (bad.error or "") and "$900" in bad.output
    invalid = await call_tool(tool, {"assumptions": {"variable_cost_pct": 50}})
    assert not invalid.ok and "invalid arguments" in (invalid.error or "")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("We expect $180,000 + 0.10 * $180,000 = $198,000.", True),
        ("We expect $180,000 + 0.10 * $180,000 = $248,000.", False),
        ("A day brings 120 × $3 = $360.", True),
        ("Goal: $248,000 + 10% * $248,000 = $297,600.", False),
        ("We keep 5 - 2 = 4 stores.", False),
        ("Each of 4 shops makes $1,000 / 4 = $250.", True),
    ],
)
def test_inline_calculations_are_recomputed(text: str, ok: bool) -> None:
    t = project(Assumptions(revenue=D(10_000_000), fixed_costs=D(0)))  # no claim in these texts hits the table
    [calc] = find_calculations(text)
    assert calc.ok is ok
    check = check_numbers(text, t)
    assert check.consistent is ok
    if not ok:
        assert "WRONG" in check.summary() and calc.result.raw in check.summary()


def test_a_metric_after_a_comma_belongs_to_the_next_number() -> None:
    t = bakery()
    check = check_numbers("- 2019: $85,430,000, variable costs $800,000, profit $200,000.", t)
    assert check.consistent, check.summary()  # $85,430,000 is no variable-cost claim
    assert [v.claim.metric for v in check.verdicts] == ["variable_costs", "profit"]
    assert not check_numbers("We made $900,000 of profit and $2.2M in revenue.", t).consistent
    assert check_numbers("We made $200,000 of profit and $2.0M in revenue.", t).consistent


def test_a_calculation_with_period_labels_between_its_terms_is_recomputed() -> None:
    [wrong, right] = find_calculations(
        "Revenue: $2,419,238 (year 1) - $2,400,000 (year 3) = $198,712. Costs: $132,526 ($year 1) - $132,000 "
        "(baseline) = $526."
    )
    assert not wrong.ok and wrong.computed == 19_238 and right.ok
    assert find_calculations("Revenue is $2.4M (year 1); profit $180,000 (year 3) = steady.") == []


def test_a_list_item_takes_its_period_from_the_line_that_introduces_it() -> None:
    t = bakery()  # profit 200,000 / 247,800 / 362,690 / 430,825; revenue year 2 2,271,150
    text = (
        "- **Year 2**:\n  - **Revenue**: $2,271,150\n  - **Profit**: $247,800\n  - **Margin**: like Year 1, 11.5%\n\n"
        "### Year 3\nProfit reaches $362,690.\n\n## Outlook\n\nProfit of $200,000."
    )
    check = check_numbers(text, t)
    bad = {(v.claim.number.raw, v.claim.period) for v in check.disagreements}
    assert bad == {("$247,800", 2), ("$362,690", 3)}  # year 1's and year 2's profit, said of years 2 and 3
    assert len(check.verdicts) == 5  # the baseline profit under a heading with no period: any year


def test_a_metric_on_the_next_line_names_the_next_figure_and_growth_vs_baseline_has_no_period() -> None:
    t = bakery()  # year 1: revenue 2,163,000, variable costs 865,200, profit 247,800 (+23.9% vs baseline)
    text = "Year 1\n\nRevenue: $2,163,000\nVariable costs: $865,200\nProfit vs baseline: +23.9%"
    check = check_numbers(text, t)
    assert check.consistent and len(check.verdicts) == 3, check.summary()
    assert [v.claim.metric for v in check.verdicts] == ["revenue", "variable_costs", "profit"]


def test_a_figure_under_a_metric_heading_whose_line_names_only_its_period_is_checked() -> None:
    t = bakery()  # revenue 2,163,000 / 2,271,150 in years 1 and 2; profit growth year 1 +23.9%
    text = (
        "### Revenue\n- Year 1: $2,163,000\n- **Year 2**: $2,500,000\n\n"
        "**Profit growth:**\n- Year 1: 23.9%\n\n"
        "### Marketing and sales\n- Year 1: $40,000\n\n"  # two metrics named: which one is unknown
        "### Revenue\n- Social media: $20,000\n- Year 2: 3 stores\n\n"  # a line that says more; a count
        "#### Projected fixed costs (USD)\n1. Year 1: $1,000,000"
    )
    check = check_numbers(text, t)
    got = [(v.claim.metric, v.claim.what, v.claim.period, v.ok) for v in check.verdicts]
    assert got == [
        ("revenue", "level", 1, True),
        ("revenue", "level", 2, False),
        ("profit", "growth", 1, True),
        ("fixed_costs", "level", 1, True),
    ], check.summary()
