"""Answer extraction and normalisation: model output is never trusted."""

from __future__ import annotations

import pytest

from longthink.answers import extract_answer, normalize_number
from longthink.budget import Budget, Price
from longthink.errors import BudgetExceeded, ConfigError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("so the total is $1,234.50. Answer: $1,234.50", "1234.5"),
        ("The answer is 18.", "18"),
        ("x = 3 ... #### 72", "72"),
        ("first \\boxed{3} then \\boxed{42}", "42"),
        ("**Answer:** 7 apples", "7"),
        ("we get 5 then 7", "7"),
        ("Final answer: -12", "-12"),
        ("Answer: 3/4", "0.75"),
        ("Answer: 12%", "12"),
    ],
)
def test_numbers(text: str, value: str) -> None:
    assert extract_answer(text, "number").value == value


def test_numbers_normalise_to_one_vote() -> None:
    assert normalize_number("$1,200.00") == normalize_number("1200") == "1200"
    assert normalize_number("-0.0") == "0"
    assert normalize_number("abc") is None


def test_cut_off_text_without_a_marked_answer_has_none() -> None:
    parsed = extract_answer("First 5 apples, then 7 more, so", "number", truncated=True)
    assert parsed.value is None and parsed.error == "cut off before giving an answer"
    assert extract_answer("... Answer: 12 and then", "number", truncated=True).value == "12"
    assert not extract_answer("no digits here", "number").ok


def test_other_kinds() -> None:
    assert extract_answer("I think the answer is (C).", "choice").value == "C"
    assert extract_answer("B", "choice").value == "B"
    code = extract_answer("text\n```python\ndef f():\n    return 1\n```\n", "code")
    assert code.value == "def f():\n    return 1\n"
    assert extract_answer("```python\ndef f(", "code", truncated=True).error == "code block cut off"
    assert extract_answer('here: {"b": 1, "a": [1,2]} ok', "json").value == '{"a":[1,2],"b":1}'
    assert extract_answer("{not json", "json").error == "no valid JSON found"
    assert extract_answer("Let me try: (4 + 8) * (6 - 4) = 24", "expression").value == "(4+8)*(6-4)"
    assert extract_answer("  many   spaces\n", "text").value == "many spaces"
    with pytest.raises(ConfigError, match="unknown answer kind"):
        extract_answer("x", "essay")


def test_money_budget_from_per_model_prices() -> None:
    budget = Budget(cost=0.01, prices={"big": Price(1.0, 4.0), "*": Price(0.1, 0.1)})
    budget.reserve(1).settle(prompt_tokens=1000, completion_tokens=1000, model="big")
    assert budget.spent.cost == pytest.approx(0.005)
    budget.reserve(1).settle(prompt_tokens=10_000, completion_tokens=40_000, model="small")
    assert budget.spent.cost == pytest.approx(0.01)
    with pytest.raises(BudgetExceeded, match="cost"):
        budget.reserve(1)
