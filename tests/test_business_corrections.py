"""Figures put right: claims that disagree with the financial model's table are rewritten in their own format, a
claim no figure can make true loses its sentence, and the result passes the number check."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_financial_model import bakery

from longthink.domains.business_plan.claims import check_numbers, extract_numbers
from longthink.domains.business_plan.corrections import correct_numbers, render_like
from longthink.domains.business_plan.document import render_document
from longthink.outcome import StepOutcome

D = Decimal
# bakery(): revenue 2,000,000 / 2,163,000 / 2,271,150 / 2,384,708; profit 200,000 / 247,800 / 362,690 / 430,825;
# margin 10.0 / 11.5 / 16.0 / 18.1; variable costs 40% of revenue


def test_figures_that_disagree_are_rewritten_in_their_own_format() -> None:
    text = (
        "Revenue reaches $2.5M in year 1 and profit grows by 40% in year 2. Our margin of 15% is healthy.\n\n"
        "- Fixed costs stay at $1,000,000.\n- Variable costs are 45% of revenue."
    )
    t = bakery()
    assert len(check_numbers(text, t).disagreements) == 4
    fixed = correct_numbers(text, t)
    assert fixed.check.consistent and fixed.check.verdicts
    assert "$2.16M in year 1" in fixed.text  # millions stay millions, 1% precision
    assert "grows by 46.4% in year 2" in fixed.text  # period-on-period growth, closest to what was said
    assert "margin of 16% is healthy" in fixed.text  # no period: the closest year (16.0%)
    assert "Variable costs are 40% of revenue" in fixed.text
    assert "- Fixed costs stay at $1,000,000." in fixed.text  # what agreed is untouched
    assert len(fixed.changes) == 4 and not fixed.removed
    assert fixed.changes[0] == "'$2.5M' -> '$2.16M' (revenue, period 1)"


def test_a_change_in_the_wrong_direction_loses_its_sentence() -> None:
    text = "Profit rises to $247,800 in year 1.\n\n- Profit falls by 5% in year 1.\n- Fixed costs are flat."
    fixed = correct_numbers(text, bakery())
    assert fixed.removed == ("- Profit falls by 5% in year 1.",)
    assert fixed.text == "Profit rises to $247,800 in year 1.\n\n- Fixed costs are flat."
    assert fixed.check.consistent and not fixed.changes


def test_a_wrong_calculation_gets_its_computed_result() -> None:
    fixed = correct_numbers("Catering adds 3% x $2,000,000 = $80,000.", bakery())
    assert "= $60,000" in fixed.text and fixed.check.consistent


def test_text_that_agrees_and_the_tools_table_are_left_alone() -> None:
    t = bakery()
    text = "Profit grows from $200,000 to $247,800 in year 1.\n\n" + t.markdown()
    fixed = correct_numbers(text, t)
    assert fixed.text == text and not fixed.touched


def test_only_the_periods_and_growth_claims_asked_for_are_corrected() -> None:
    t = bakery()
    fixed = correct_numbers("Today profit is $150,000. Profit grows by 50%.", t, periods=[0], growth=False)
    assert fixed.text == "Today profit is $200,000. Profit grows by 50%."
    goal = correct_numbers("Our goal: grow profit by 10% next year.", t, ignore_growth=[D(10)])
    assert not goal.touched


@pytest.mark.parametrize(
    ("raw", "value", "out"),
    [
        ("$1.2M", D(1_312_345), "$1.31M"),
        ("$1.2 million", D(2_163_000), "$2.16 million"),
        ("$300,000", D(262_400), "$262,400"),
        ("$3000", D(2_500), "$2500"),
        ("€40k", D(47_800), "€47.8k"),
        ("12%", D("16.0"), "16%"),
        ("12.5 percent", D("11.5"), "11.5 percent"),
        ("+8%", D("5.0"), "+5%"),
        ("(5%)", D("-3.2"), "(3.2%)"),
    ],
)
def test_render_like_keeps_the_numbers_format(raw: str, value: Decimal, out: str) -> None:
    [n] = extract_numbers(raw)
    assert render_like(n, value) == out


def test_the_document_puts_figures_right_and_says_so() -> None:
    t = bakery()
    outcome = StepOutcome(step_id="strategy", answer="x", text="Profit reaches $300,000 in year 2.", verified=True)
    proj = StepOutcome(step_id="projection", answer="goal", text="table", verified=True, data={"table": t.to_json()})
    rendered = render_document("Grow our bakery.", {"strategy": outcome, "projection": proj})
    assert "Profit reaches $362,690 in year 2." in rendered.doc
    assert rendered.check is not None and rendered.check.consistent
    assert rendered.corrections == ["Chosen strategy: '$300,000' -> '$362,690' (profit, period 2)"]
    assert "put right where they disagreed (1)" in rendered.doc


def test_a_figure_the_table_holds_for_another_line_is_left_as_written() -> None:
    # "$865,200" is year 1's variable costs, said of profit: a misreading is likelier than a miswriting, so the
    # document leaves it (its check still counts the disagreement) instead of turning it into the profit
    text = "Profit: $865,200 in year 1. Profit of $300,000 in year 2."
    fixed = correct_numbers(text, bakery())
    assert "Profit: $865,200 in year 1." in fixed.text and "Profit of $362,690 in year 2." in fixed.text
    assert len(fixed.check.disagreements) == 1 and len(fixed.changes) == 1


def test_a_figure_under_a_metric_heading_is_put_right_for_its_period() -> None:
    text = "### Projected revenue\n- Year 1: $2,163,000\n- Year 2: $2.5M\n\n### Team\n- Year 2: $90,000"
    fixed = correct_numbers(text, bakery())
    assert fixed.text == "### Projected revenue\n- Year 1: $2,163,000\n- Year 2: $2.27M\n\n### Team\n- Year 2: $90,000"
    assert fixed.check.consistent and len(fixed.changes) == 1


def test_the_banner_names_no_goal_when_the_request_stated_none() -> None:
    from longthink.domains.business_plan.document import banners

    def projection(goal_met: bool | None) -> dict[str, StepOutcome]:
        data = {"reaches_goal": False, "goal_met": goal_met, "line": "profit +4.0%: goal not met",
                "problems": ["investments of 5,000,000 exceed 2x the baseline revenue"]}  # fmt: skip
        return {"projection": StepOutcome(step_id="projection", answer="x", text="t", verified=False, data=data)}

    [none] = banners(projection(None))
    assert none.startswith("> **The projection is not plausible.**") and "goal" not in none
    assert "investments of 5,000,000" in none
    [missed] = banners(projection(False))
    assert missed.startswith("> **The goal is not reached.**") and "goal not met" in missed
