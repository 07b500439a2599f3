"""The business-plan pack's text-quality checks (``quality.py``) on section texts like the embedded 0.5B model's:
complete endings, empty list items, letters from a script the request does not use, placeholders, near-empty
texts; the conservative repair of a cut ending; and properties over arbitrary text (the check never raises, the
repair is an idempotent prefix that leaves a finished text alone)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longthink.domains.business_plan.quality import TextQuality, check_text, repair, scripts_of

REQUEST = "Write a business plan for an artisan bakery in Berlin with 3 shops and catering for offices."

GOOD = """Berlin Bakes will open its third shop in Q1 2027 and grow B2B catering for offices.

Revenue is projected to reach €2.4M in year 3 [1], driven by catering contracts (see table).
Customers describe the bread as “the best sourdough in Kreuzberg”.

- Risk: rising flour prices. Mitigation: fixed-price contracts with two mills
- Risk: staff turnover. Mitigation: training and profit sharing"""


def problems(text: str, request: str = REQUEST, *, truncated: bool = False) -> tuple[str, ...]:
    return check_text(text, request, truncated=truncated).problems


def has(found: tuple[str, ...], start: str) -> bool:
    return any(p.startswith(start) for p in found)


# --- the result object ---------------------------------------------------------------------------------------


def test_text_quality_ok_summary_and_json() -> None:
    good = TextQuality()
    assert good.ok
    assert good.summary() == "no text problems"
    assert good.to_json() == {"ok": True, "problems": []}
    bad = TextQuality(("empty list item 2", "placeholder: 'TBD'"))
    assert not bad.ok
    assert bad.summary() == "2 text problems\n- empty list item 2\n- placeholder: 'TBD'"
    assert json.loads(json.dumps(bad.to_json())) == {
        "ok": False,
        "problems": ["empty list item 2", "placeholder: 'TBD'"],
    }
    assert TextQuality(("x",)).summary().startswith("1 text problem\n")


def test_check_text_returns_text_quality() -> None:
    q = check_text(GOOD, REQUEST)
    assert isinstance(q, TextQuality)
    assert q.ok, q.summary()


# --- scripts ----------------------------------------------------------------------------------------------------


def test_scripts_of_names_the_scripts_of_letters() -> None:
    assert scripts_of("Hello Мир Γειά 世界 ひらがな カタカナ 한국어 مرحبا שלום नमस्ते สวัสดี") == {
        "Latin",
        "Cyrillic",
        "Greek",
        "Han",
        "Kana",
        "Hangul",
        "Arabic",
        "Hebrew",
        "Devanagari",
        "Thai",
    }


@pytest.mark.parametrize(
    "text",
    [
        "2027 €2.4 £300 $1,000 ¥5 – — “ ” ‘ ’ « » % § © ® ™ № ° ± × ÷ → • … ·",
        "😀 🚀 📈 👍🏽 🇩🇪 ❤️ ✅",
        "µ ˆ ʼ",  # the micro sign and modifier letters
        "",
    ],
)
def test_scripts_of_ignores_digits_punctuation_symbols_and_emoji(text: str) -> None:
    assert scripts_of(text) == set()


def test_scripts_of_folds_compatibility_forms() -> None:
    assert scripts_of("Ｂｅｒｌｉｎ ﬁnance ℌ 𝐁𝐞𝐫𝐥𝐢𝐧 ℓ ª") == {"Latin"}
    assert scripts_of("ｶﾀｶﾅ") == {"Kana"}  # half-width katakana
    assert scripts_of("Zürich Kraków São Paulo İstanbul Ærø façade") == {"Latin"}


def test_chinese_characters_mixed_into_english_are_reported() -> None:
    text = "We will increase sales 提高销售 by focusing on office catering and a loyalty app for regulars."
    found = problems(text)
    assert found == ("characters from a script the request does not use: Han (4), e.g. '提高销售'",)


def test_cyrillic_garbage_is_counted_per_script() -> None:
    text = "Our marketing plan targets offices в Берлине and uses 社交 media to reach new customers."
    (found,) = problems(text)
    assert found.startswith("characters from a script the request does not use: Cyrillic (8), Han (2)")


def test_a_cyrillic_request_allows_cyrillic() -> None:
    request = "Напишите бизнес-план для пекарни в Берлине."
    text = "Пекарня Berlin Bakes откроет третий магазин в 2027 году. Выручка вырастет до €2,4 млн."
    assert problems(text, request) == ()
    assert has(problems(text, REQUEST), "characters from a script the request does not use: Cyrillic (")


def test_a_japanese_request_allows_han_and_kana() -> None:
    request = "ベルリンのパン屋の事業計画を書いてください。"
    assert problems("当社は2027年に3号店を開店します。売上は増加します。", request) == ()


def test_emoji_and_symbols_are_not_a_foreign_script() -> None:
    text = "We will grow catering revenue by 25% 🚀📈 — from €1.2M to €1.5M ✅. Great news! 😀"
    assert problems(text) == ()


def test_a_lone_greek_letter_is_a_symbol_but_greek_words_are_not() -> None:
    assert problems("The ΔRevenue is 5% and our β = 1.2 against the market.") == ()
    assert has(problems("Our bakery είναι η καλύτερη in Berlin and grows fast."), "characters from a script")


# --- completeness -------------------------------------------------------------------------------------------------


def test_a_good_section_passes() -> None:
    assert problems(GOOD) == ()
    assert problems(GOOD + ".", truncated=True) == ()


def test_cut_mid_sentence() -> None:
    text = (
        "Berlin Bakes will expand into office catering in 2027. The catering line is expected to contribute "
        "30% of revenue by year 3, while the shops focus on"
    )
    assert problems(text) == ("ends mid-sentence: '...by year 3, while the shops focus on'",)
    assert problems(text, truncated=True) == problems(text)


def test_dangling_list_numbers_are_empty_items() -> None:
    text = "Our growth strategy:\n1. Expand online sales.\n2.\n3."
    assert problems(text) == ("empty list item 2", "empty list item 3")


@pytest.mark.parametrize("marker", ["-", "*", "**", "•", "3)", "(4)", "a)", "##", "2. **"])
def test_every_dangling_marker_is_an_empty_item_anywhere(marker: str) -> None:
    text = f"Our plan has three steps.\n{marker}\nWe open the third shop in 2027."
    found = problems(text)
    assert len(found) == 1 and found[0].startswith("empty list item"), found


def test_a_complete_list_item_without_a_period_is_fine_unless_truncated() -> None:
    text = "Key risks:\n- Risk: competition from chains. Mitigation: loyalty program"
    assert problems(text) == ()
    assert problems(text, truncated=True) == (
        "ends without sentence punctuation at the token limit: '...from chains. Mitigation: loyalty program'",
    )


@pytest.mark.parametrize(
    "last",
    ["3. Hire two bakers and", "- Mitigation: contracts with", "- Costs:", "- Marketing (social media,", "- Rent,"],
)
def test_an_unfinished_list_item(last: str) -> None:
    (found,) = problems(f"Our priorities for 2027:\n1. Open the third shop.\n{last}")
    assert found.startswith("ends with an unfinished list item")


@pytest.mark.parametrize(
    "text",
    [
        "We will grow revenue by 20% in 2027!",
        "Will customers pay more for organic bread? Our survey says yes.",
        "Our motto is simple: “Fresh bread every morning.”",
        "(All figures are in euros.)\nRevenue grows by 8% a year (see table).",
        "Revenue grows by 8% a year. (see table)",
        "Revenue grows by 8% a year.[1]",
        "Revenue grows by 8% a year. [1, 2]",
        "**Revenue grows by 8% a year.**",
        "We are ready to launch. 🚀",
        "Break-even is reached in month 14.\n\n**Total investment: €2.4M**",
        "Our growth targets are ambitious.\nBreak-even: Q3 2027",
        "We sell bread, cakes, coffee, etc.",
        "Выручка вырастет на 20%.",
        "我们计划在2027年开设第三家店。",
    ],
)
def test_finished_endings(text: str) -> None:
    assert problems(text, text) == (), text


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("We expand our catering business to new districts", "ends mid-sentence"),
        ("Our growth comes from several sources, e.g.", "ends mid-sentence"),
        ("Our sales will grow in several ways...", "trails off"),
        ("Our sales will grow in several ways …", "trails off"),
        ("We grow.\n\n## Risks and mitigation", "ends with a heading"),
        ("We grow quickly.\n**Financial Plan**", "ends with a heading"),
        ("Our main channels include:", "ends mid-sentence"),
        ("We grow quickly in 2027.\n---", "ends with a horizontal rule"),
    ],
)
def test_unfinished_endings(text: str, start: str) -> None:
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(start), found


def test_truncated_text_must_end_with_sentence_punctuation() -> None:
    assert problems("We grow revenue by 20% in 2027.", truncated=True) == ()
    assert has(problems("We grow revenue by 20% in", truncated=True), "ends mid-sentence")


def test_the_quoted_tail_is_short() -> None:
    (found,) = problems("word " * 50 + "and then")
    assert found == "ends mid-sentence: '...word word word word word word and then'"


# --- placeholders -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        ("The bakery [Insert company name] opens its third shop in 2027.", "[Insert company name]"),
        ("[Company Name] will open its third shop in 2027.", "[Company Name]"),
        ("The shop opens in [Year] with a team of ten.", "[Year]"),
        ("The owner, <name>, has ten years of experience.", "<name>"),
        ("Welcome to {company}, the best bakery in Berlin.", "{company}"),
        ("XYZ Bakery will open its third shop in 2027.", "XYZ"),
        ("Our competitor ABC Company sells cheaper bread.", "ABC Company"),
        ("Our competitor ABC Corp. sells cheaper bread.", "ABC Corp."),
        ("Our competitor ABC Ltd sells cheaper bread.", "ABC Ltd"),
        ("Our competitor ABC Inc sells cheaper bread.", "ABC Inc"),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "Lorem ipsum"),
        ("The opening date of the third shop is TBD.", "TBD"),
        ("The new head baker is TBA.", "TBA"),
        ("The bakery is run by John Doe since 2015.", "John Doe"),
        ("Revenue will reach $XX million with a margin of 15%.", "$XX"),
        ("Revenue will grow by X% per year in all shops.", "X%"),
        ("Contact us at info@example.com for catering orders.", "example.com"),
        ("The manager is ________ and starts in March.", "________"),
        ("The bakery (insert name here) opens in 2027.", "(insert name here)"),
    ],
)
def test_placeholders(text: str, placeholder: str) -> None:
    assert f"placeholder: '{placeholder}'" in problems(text), problems(text)


def test_placeholder_lines_and_lists() -> None:
    assert problems("Our products include bread and cakes.\n...\nWe sell them daily.") == ("placeholder: '...'",)
    assert problems("Our products include bread and cakes.\n- etc.\nWe sell them daily.") == ("placeholder: '- etc.'",)
    assert problems("Our strategy has three parts:\n1. 2. 3.\nWe will explain them.") == (
        "placeholder list: '1. 2. 3.'",
    )
    stand_ins = "Our strategy has three parts:\n- Item 1\n- Item 2\n- Item 3\nEach part matters."
    assert problems(stand_ins) == ("placeholder list: 'Item 1', 'Item 2', 'Item 3'",)


def test_many_placeholders_are_summarised() -> None:
    text = " ".join(f"[Insert figure {i}]" for i in range(12)) + " is our plan."
    found = problems(text)
    assert len(found) == 9 and found[-1] == "4 more placeholders"
    assert found[0] == "placeholder: '[Insert figure 0]'"


def test_placeholders_are_reported_once_in_text_order() -> None:
    text = "XYZ grows. [Your City] is home to XYZ. Lorem ipsum applies to XYZ as well."
    assert problems(text) == ("placeholder: 'XYZ'", "placeholder: '[Your City]'", "placeholder: 'Lorem ipsum'")


@pytest.mark.parametrize(
    "text",
    [
        "Revenue reaches €2.4M in Q1 2027, and B2B catering grows fastest [1].",
        "Our ABC analysis ranks products by revenue (see table).",
        "Sales of the XXL party platter doubled; Louis XIV would approve.",
        "We use a 10X growth plan and 2x capacity.",
        "Our checklist: [x] permits, [ ] lease. See [our website](https://berlinbakes.de) for details.",
        "Email <info@berlinbakes.de> or visit <https://berlinbakes.de> today.",
        "Use <b>bold</b> and <br> sparingly in the brochure.",
        "Margins exceed 12% when volume is <5% below plan and the ratio is > 1.2.",
        "The guidance is based on [2, 3] and on our own survey [4].",
        "The abbreviation TBDX is a product code, not a placeholder.",
        "Our sourdough sells for €4.50 (incl. VAT) and our coffee for €2.80.",
        "- Phase 1: lease signed.\n- Phase 2: shop fitted.\n- Phase 3: grand opening.",
        "Channels:\n- Online\n- Retail\n- Catering",
        "Quarters:\n- Q1\n- Q2\n- Q3",
        "The founders hold 60% and the investors hold 40% [sic].",
    ],
)
def test_normal_business_prose_is_not_a_placeholder(text: str) -> None:
    assert problems(text) == (), problems(text)


# --- empty texts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [("", 0), ("   \n\n ", 0), ("1.\n2.\n3.", 0), ("Growth.", 1), ("**Conclusion**", 1), ("€2.4M in 2027.", 2)],
)
def test_empty_or_near_empty_text(text: str, words: int) -> None:
    assert problems(text) == (f"empty text ({words} word{'s' * (words != 1)})",)


def test_three_words_are_enough_and_unspaced_scripts_count_letters() -> None:
    assert problems("We grow fast.") == ()
    assert problems("我们成长。", "我们的计划") == ()
    assert has(problems("成长。", "我们的计划"), "empty text")


# --- repair -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "We grow.",
        "Key risks:\n- Risk: competition. Mitigation: loyalty program",
        "我们计划在2027年开设第三家店。",
    ],
)
def test_repair_leaves_finished_text_unchanged(text: str) -> None:
    assert repair(text) == text
    assert repair(text + "  \n\n") == text


@pytest.mark.parametrize(
    ("text", "repaired"),
    [
        ("1. Expand online sales.\n2.\n3.", "1. Expand online sales."),
        ("Our growth strategy:\n1. Expand online sales.\n2. Open a third shop.\n3.\n", None),
        (
            "We open a third shop in 2027. Catering grows to 30% of revenue. The shops focus on",
            "We open a third shop in 2027. Catering grows to 30% of revenue.",
        ),
        (
            "Key risks:\n1. Competition from chains. Mitigation: loyalty program\n2. Rising costs of",
            "Key risks:\n1. Competition from chains. Mitigation: loyalty program",
        ),
        ("We grow fast in all districts.\n\n## Risks", "We grow fast in all districts."),
        ("We grow fast in all districts.\n---\n", "We grow fast in all districts."),
        ("We grow fast in all districts.\n...", "We grow fast in all districts."),
        ("We are ready to launch. 🚀 Next we", "We are ready to launch."),
        ("Our products include bread, e.g. sourdough. Then we", "Our products include bread, e.g. sourdough."),
        ("我们计划在2027年扩大销售。我们将重点发展线上渠道", "我们计划在2027年扩大销售。"),
    ],
)
def test_repair_drops_an_unfinished_end(text: str, repaired: str | None) -> None:
    expected = (
        repaired if repaired is not None else "Our growth strategy:\n1. Expand online sales.\n2. Open a third shop."
    )
    assert repair(text) == expected
    assert check_text(repair(text), text).ok


@pytest.mark.parametrize(
    "text",
    [
        "We will expand our online sales channel and focus on",  # nothing finished to keep
        "Our growth comes from several sources, e.g.",
        "We grow.\nAnd then we",  # cutting would leave fewer than three words
    ],
)
def test_repair_keeps_a_text_it_cannot_shorten_to_something_usable(text: str) -> None:
    assert repair(text) == text


def test_repair_never_touches_the_middle() -> None:
    text = "1. 2. 3.\n[Insert name] opens a shop.\n-\nWe grow 提高 fast. We then"
    assert repair(text) == "1. 2. 3.\n[Insert name] opens a shop.\n-\nWe grow 提高 fast."


def test_repair_only_trailing_empty_items_when_the_cut_would_leave_nothing() -> None:
    assert repair("We expand our online sales channel and\n2.\n-") == "We expand our online sales channel and"


# --- properties -------------------------------------------------------------------------------------------------

FRAGMENTS = [
    "We grow revenue by 20% in 2027.",
    "Catering is our focus",
    "and then",
    "1.",
    "2. Expand online sales.",
    "3)",
    "- Risk: competition. Mitigation: loyalty",
    "-",
    "**",
    "## Risks",
    "**Total: €2.4M**",
    "---",
    "...",
    "etc.",
    "[Insert name]",
    "提高销售",
    "Мы растём.",
    "🚀",
    "e.g.",
    "(see table)",
    "[1]",
    "“quoted.”",
    "",
    " ",
]
structured = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(
    lambda parts: "".join(p + ("\n" if i % 3 == 0 else " ") for i, p in enumerate(parts))
)
texts = st.one_of(st.text(max_size=300), structured, st.text(alphabet="-*#.1234 \nabc.!?:", max_size=80))


@settings(max_examples=300, deadline=None)
@given(text=texts, request=st.text(max_size=40), truncated=st.booleans())
def test_check_text_never_raises(text: str, request: str, truncated: bool) -> None:
    q = check_text(text, request, truncated=truncated)
    assert all(isinstance(p, str) and p for p in q.problems)
    assert q.ok == (not q.problems)
    json.dumps(q.to_json())
    assert isinstance(scripts_of(text), set)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_repair_is_an_idempotent_prefix(text: str) -> None:
    fixed = repair(text)
    assert len(fixed) <= len(text)
    assert text.startswith(fixed)
    assert fixed == fixed.rstrip()
    assert repair(fixed) == fixed


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_repair_leaves_a_text_without_problems_unchanged(text: str) -> None:
    if check_text(text, text).ok:
        assert repair(text) == text.rstrip()


@settings(max_examples=300, deadline=None)
@given(text=structured)
def test_repaired_text_ends_with_no_empty_list_item(text: str) -> None:
    fixed = repair(text)
    found = check_text(fixed, text).problems
    last = fixed.rsplit("\n", 1)[-1].strip()
    assert not any(p.startswith(("ends with a horizontal rule",)) for p in found)
    assert last not in {"1.", "3)", "-", "**", "---", "...", "etc."}
