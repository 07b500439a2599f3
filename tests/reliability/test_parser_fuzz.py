"""Bad model output: every parser of model text gets random, truncated and adversarial text (hypothesis) and must
return its documented value or record the failure the way its docstring says (a ``Parsed``/``Reading`` with the
error, None, or the parser's own error type) -- never an unhandled exception.

Parsers covered: the answer extractors (``longthink.answers``), program output and code (``longthink.program``),
the plan parser and its repair (``planners.plan``), judge verdicts (text and logprobs), routing extractions, passage
readings and route answers, debugging patches and requests, business-plan proposals and number checks, the OpenAI
wire format's ``choices``, and the safe expression evaluator behind the calculator tool (its input is the plan's
``tool_args``). Each failure hypothesis found is kept below as an ``@example``. Runs are derandomized (the same
cases on every run); ``CASES`` counts the cases each parser saw (printed with ``pytest -s``).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from longthink.answers import EXTRACTORS, Parsed, extract_answer, normalize_number
from longthink.domains.business_plan.claims import check_numbers, extract_numbers, find_claims
from longthink.domains.business_plan.corrections import correct_numbers
from longthink.domains.business_plan.model import Assumptions, project
from longthink.domains.business_plan.readers import BaselineReader, ProjectionReader, SectionText
from longthink.domains.business_plan.request import read_request
from longthink.domains.debugging.repair import PatchReader, reply_code
from longthink.domains.debugging.source import BadInput, DebugInput, Patched, apply_patch, parse_request
from longthink.domains.routing.extract import EXAMPLES, RequestFacts, json_object, read_extraction
from longthink.domains.routing.parsing import ExtractionError, close_json
from longthink.domains.routing.passages import PartReading, read_part, split_request
from longthink.domains.routing.verify import RoutingVerdict, parse_routes, verify
from longthink.llm.openai_wire import Malformed, parse_choices
from longthink.llm.types import Completion, SamplingParams, TokenLogprob
from longthink.planners.plan import MAX_STEPS, Plan, parse_plan
from longthink.planners.planner import PlanStructure
from longthink.program import parse_run, program_of, runnable
from longthink.rewards.judge import expected_rating, parse_rating, parse_yes_no, yes_probability
from longthink.search.types import Reading
from longthink.tools.arithmetic import EvaluationError, evaluate

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # ast.parse of "1if": a model's typo, not ours
CASES: Counter[str] = Counter()

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print("\nparser fuzz cases: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))
    print(f"total {sum(CASES.values())}")


# -- realistic outputs (cut at every point, and at random points with garbage after) ----------------------------------
PLAN = json.dumps(
    {"steps": [
        {"id": "s1", "goal": "Find the daily revenue", "depends_on": [], "answer_kind": "number",
         "success_check": "a positive number", "difficulty": 0.3},
        {"id": "s2", "goal": "Multiply by 30 days", "depends_on": ["s1"], "answer_kind": "number",
         "tool": "calculator", "tool_args": {"expression": "360*30"}},
    ]}
)  # fmt: skip
ROUTING_REQUEST, ROUTING_JSON = EXAMPLES[1]
PASSAGE_REPLY = 'Passage: "Client 1: (44, 61), 35 units, time window 5 to 90."\nJSON: {"id": 1, "x": 44, "y": 61, ' \
    '"demand": 35, "ready": 5, "due": 90}'  # fmt: skip
ORIGINAL = (
    '"""Adds."""\n\n\ndef add(a, b):\n    """Sum."""\n    return a - b\n\n\ndef twice(x):\n    return add(x, x)\n'
)
PATCH = "Here is the fix:\n```python\ndef add(a, b):\n    return a + b\n```\nThis fixes the sign."
PROPOSAL = '```json\n{"revenue": 2400000, "variable_cost_pct": "35%", "fixed_costs": "$500,000", ' \
    '"revenue_growth_pct": 8, "levers": [{"name": "Raise prices", "revenue_uplift_pct": 4, "start": 2}], ' \
    '"investments": [{"name": "Shop fit", "amount": 120000, "period": 1}]}\n```'  # fmt: skip
SECTION = "## Outlook\nRevenue grows from $2,400,000 in Year 1 to $2,592,000 in Year 2 (+8%), and profit to $310,000."
EXAMPLES_BY_KIND = {
    "number": "Step 1: 120 * 3 = 360.\nStep 2: 360 - 15 = 345.\nThe answer is $1,234.50",
    "choice": "The options compare as follows... so the answer is (C).",
    "code": "Here is the code:\n```python\ndef solution():\n    return 6 * 7\n```\n",
    "json": 'Result: ```json\n{"a": [1, 2.5, {"b": null}], "c": "x"}\n```',
    "expression": "Try (4 + 8) * (6 - 4) = 24, which works.",
    "text": "  The capital of France is Paris.  ",
}
REALISTIC = [PLAN, ROUTING_JSON, PASSAGE_REPLY, PATCH, PROPOSAL, SECTION, *EXAMPLES_BY_KIND.values(),
             '{"routes": [[0, 3, 1, 0], {"stops": [2]}]}', "Yes, the solution is correct.", "Rating: 4/5"]  # fmt: skip

# -- adversarial pieces -----------------------------------------------------------------------------------------------
ADVERSARIAL = [
    "9" * 5000, "12345678901234567890123456789", "0." + "0" * 40 + "1", "1e999999", "-1e309", "NaN", "Infinity",
    "-Infinity", "nan", "inf", "1/0", "0/0", "3/", "$,", "%", "−7", "[" * 3000, "{" * 3000, "(" * 400, "]" * 50,
    "-" * 3000 + "1", '{"a":' * 1500, "\\boxed{" * 200, "\x00", "\x1b[31m", "\r\n", "\u2028", "\ufeff", "\u202e",
    "１２３", "٣٤٥", "🙂", "e\u0301", "```", "```python\n", "```json\n", "\n```\n", "x" * 20000, "Answer: ",
    "#### ", "The answer is ", "\nJSON: ", "def f(:\n", "    return\n", "yes", "No", "10", "0", "-1",
    '{"steps": "s1"}', '{"steps": [null, 1, "do it", {"goal": []}]}', '{"customers": [[1, 2]]}',
    '{"routes": {"stops": 1}}', '[[true, 1.5, "3"]]', '{"revenue": "1e999999", "fixed_costs": -5}',
    '{"levers": {"name": 7}}', '{"depot": [1], "customers": []}',
]  # fmt: skip
SURROGATE = st.characters(categories=["Cs"])
CHARS = st.one_of(st.characters(), st.sampled_from('{}[]()":,0123456789.-+eE\n\t `#*$%/\\'), SURROGATE)
random_text = st.text(CHARS, max_size=200)
adversarial = st.lists(st.one_of(st.sampled_from(ADVERSARIAL), random_text), min_size=1, max_size=5).map("".join)


def _cut(args: tuple[str, int, str]) -> str:
    text, at, tail = args
    return text[: at % (len(text) + 1)] + tail


truncated = st.tuples(st.sampled_from(REALISTIC), st.integers(0, 10**6), st.one_of(st.just(""), random_text)).map(_cut)

KEYS = [
    "steps", "plan", "tasks", "id", "goal", "description", "depends_on", "dependencies", "answer_kind", "kind",
    "success_check", "difficulty", "tool", "tool_args", "depot", "x", "y", "vehicles", "capacity", "customers",
    "demand", "ready", "due", "service", "time_window", "location", "fleet", "routes", "stops", "depot_x", "depot_y",
    "revenue", "variable_cost_pct", "fixed_costs", "revenue_growth_pct", "levers", "investments", "name", "amount",
    "period", "revenue_uplift_pct", "start", "choices", "message", "content", "text", "finish_reason", "usage",
    "logprobs", "index", "error",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["1e999999", "35%", "$1,000", "NaN", "", "s1", "number", "calculator"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner,
                                                                max_size=6),
    max_leaves=25,
)  # fmt: skip
json_text = st.tuples(json_values, st.sampled_from(["{}", "```json\n{}\n```", "Here: {} done", "{}"])).map(
    lambda vt: vt[1].replace("{}", json.dumps(vt[0])) if vt[1] != "{}" else json.dumps(vt[0])
)
model_text = st.one_of(random_text, adversarial, truncated, json_text)


def every_cut(text: str) -> Iterator[str]:
    """``text`` cut at every point."""
    for i in range(len(text) + 1):
        yield text[:i]


def _parsed_ok(p: Parsed) -> None:
    assert isinstance(p, Parsed)
    assert (p.value is None) == (p.error is not None), p
    assert p.value is None or isinstance(p.value, str)


# -- answers and programs ---------------------------------------------------------------------------------------------
def check_answer(text: str, kind: str, cut: bool) -> None:
    p = extract_answer(text, kind, truncated=cut)
    _parsed_ok(p)
    if p.value is not None and kind == "number":
        assert Decimal(p.value).is_finite()
    if p.value is not None and kind == "json":
        json.loads(p.value)
    if p.value is not None and kind == "choice":
        assert p.value in "ABCDEFGHIJ" and len(p.value) == 1
    CASES["answers." + kind] += 1


@FUZZ
@given(model_text, st.sampled_from(sorted(EXTRACTORS)), st.booleans())
@example("The answer is 1234567890123456789012345", "number", False)  # a 25-digit number broke quantize()
@example("[" * 3000, "json", False)  # deep nesting: RecursionError in the JSON decoder
def test_answer_extractors(text: str, kind: str, cut: bool) -> None:
    check_answer(text, kind, cut)


@FUZZ
@given(model_text)
@example("9" * 30)
def test_normalize_number(text: str) -> None:
    value = normalize_number(text)
    assert value is None or Decimal(value).is_finite()
    CASES["answers.normalize_number"] += 1


@FUZZ
@given(model_text, st.sampled_from(sorted(EXTRACTORS)))
@example("x = 1\n" + "-" * 100_000 + "1\n", "number")  # too deep for the parser: MemoryError
def test_program_code_and_output(text: str, kind: str) -> None:
    _parsed_ok(program_of(text, truncated=False))
    assert isinstance(runnable(text), str)
    _parsed_ok(parse_run(text, kind))
    CASES["program"] += 1


# -- plans --------------------------------------------------------------------------------------------------------------
def check_plan(text: str) -> None:
    parsed = parse_plan(text, goal="the request")
    assert (parsed.plan is None) == (parsed.error is not None), parsed
    if parsed.plan is not None:
        plan = parsed.plan
        assert 1 <= len(plan.steps) <= MAX_STEPS
        assert len({s.id for s in plan.steps}) == len(plan.steps)
        assert sum(len(layer) for layer in plan.layers()) == len(plan.steps)
        assert Plan.model_validate(plan.model_dump()) == plan
    score = PlanStructure().judge(parsed)
    assert 0.0 <= score.value <= 1.0
    CASES["planners.parse_plan"] += 1


@FUZZ
@given(model_text)
@example('{"steps": [{"goal": "a", "difficulty": NaN}, {"goal": "b", "depends_on": [[1]]}]}')
def test_plan_parser(text: str) -> None:
    check_plan(text)


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(KEYS[:14]), json_values, max_size=6) | json_values, max_size=14))
def test_plan_parser_on_plan_shaped_json(steps: list[Any]) -> None:
    check_plan(json.dumps({"steps": steps}))


# -- judge verdicts -----------------------------------------------------------------------------------------------------
@FUZZ
@given(model_text, st.integers(2, 9))
@example("9" * 5000, 5)  # more digits than int() converts: ValueError
def test_judge_text_verdicts(text: str, k: int) -> None:
    assert parse_yes_no(text) in (None, 0.0, 1.0)
    rating = parse_rating(text, k)
    assert rating is None or 1 <= rating <= k
    CASES["judge.text"] += 1


logprob_values = st.one_of(st.floats(), st.floats(-50, 0), st.sampled_from([1000.0, math.inf, -math.inf, math.nan]))
tokens = st.one_of(st.sampled_from(["yes", " Yes", "No.", "no", "1", "3", " 5", "9", "maybe", ""]), random_text)
positions = st.lists(
    st.builds(TokenLogprob, tokens, logprob_values, st.lists(st.tuples(tokens, logprob_values), max_size=4).map(tuple)),
    max_size=6,
)


@FUZZ
@given(positions, st.integers(2, 9))
@example([TokenLogprob("yes", 1000.0)], 5)  # math.exp overflow
@example([TokenLogprob("yes", math.inf, (("no", -1.0),))], 5)  # inf / inf: NaN
def test_judge_logprob_verdicts(logprobs: list[TokenLogprob], k: int) -> None:
    p = yes_probability(logprobs)
    assert p is None or 0.0 <= p <= 1.0
    e = expected_rating(logprobs, k)
    assert e is None or 1.0 <= e <= k
    CASES["judge.logprobs"] += 1


# -- routing ------------------------------------------------------------------------------------------------------------
FACTS = RequestFacts.of(ROUTING_REQUEST)
PASSAGES = split_request(ROUTING_REQUEST) or []
ROUTING_PROBLEM = read_extraction(ROUTING_JSON, FACTS).problem


def test_the_routing_examples_read() -> None:  # the fixtures below mean something only if the valid cases pass
    assert ROUTING_PROBLEM is not None and len(PASSAGES) == 3
    assert read_part(PASSAGE_REPLY, PASSAGES[1]).accepted


def check_routing(text: str) -> None:
    try:
        routes = parse_routes(text)
    except ValueError as exc:
        why = str(exc)
    else:
        why = "read"
        assert all(isinstance(i, int) for r in routes for i in r)
        assert ROUTING_PROBLEM is not None
        assert isinstance(verify(ROUTING_PROBLEM, routes), RoutingVerdict)
    assert why  # a failure says why
    try:
        why = "read" if isinstance(json_object(text), dict) else ""
    except ExtractionError as exc:
        why = str(exc)
    assert why
    reading = read_extraction(text, FACTS)
    assert (reading.problem is None) == (reading.error is not None)
    for passage in PASSAGES:
        part = read_part(text, passage)
        assert isinstance(part, PartReading) and (part.values is None) == (part.error is not None)
    assert isinstance(close_json(text), str)
    CASES["routing"] += 1


@FUZZ
@given(model_text)
@example("[[" + "1" * 400 + "]]")  # an id too large for float(): OverflowError
@example("[" * 3000)  # RecursionError in the JSON decoder
@example('{"depot": {"x": 1' + "0" * 400 + ', "y": 2}, "capacity": 3, "customers": [{"id": 1, "x": 1, "y": 1, '
         '"demand": 1}]}')  # fmt: skip
def test_routing_readers(text: str) -> None:
    check_routing(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS[14:32]), json_values, max_size=8))
def test_routing_readers_on_problem_shaped_json(data: dict[str, Any]) -> None:
    check_routing(json.dumps(data))
    check_routing("JSON: " + json.dumps(data))


@FUZZ
@given(model_text)
def test_routing_request_readers(text: str) -> None:  # the user's request, read before any model runs
    facts = RequestFacts.of(text)
    assert isinstance(facts.numbers, frozenset)
    passages = split_request(text)
    assert passages is None or passages[0].customer is None
    CASES["routing.request"] += 1


# -- debugging ----------------------------------------------------------------------------------------------------------
READER = PatchReader(ORIGINAL)


@FUZZ
@given(model_text, st.booleans())
@example("```python\ndef add(a, b):\n    return " + "-" * 100_000 + "1\n```", False)  # MemoryError in the parser
@example("```python\ndef add(a, b):\n    return 1\x00\n```", False)
def test_patch_reader(text: str, cut: bool) -> None:
    reading = READER(text, cut)
    assert isinstance(reading, Reading) and (reading.payload is None) == (reading.error is not None)
    code = reply_code(text, cut)
    _parsed_ok(code)
    patched = apply_patch(ORIGINAL, text)
    assert isinstance(patched, Patched) and (patched.source is None) == (patched.error is not None)
    CASES["debugging.patch"] += 1


@FUZZ
@given(model_text)
@example("fix this\n```python\ndef f():\n    return " + "-" * 100_000 + "1\n```")
def test_debug_request_reader(text: str) -> None:  # a user's request, but often pasted model output
    try:
        why = "read" if isinstance(parse_request(text), DebugInput) else ""
    except BadInput as exc:
        why = str(exc)
    assert why
    CASES["debugging.request"] += 1


# -- business plans -----------------------------------------------------------------------------------------------------
BP_FACTS = read_request("Our bakery had revenue of $2.4M last year. Grow profit by 10% next year.")
BASELINE = Assumptions(revenue=Decimal(2_400_000), variable_cost_pct=Decimal(35), fixed_costs=Decimal(500_000))
TABLE = project(BASELINE)


def check_business(text: str, cut: bool) -> None:
    for reader in (BaselineReader(BP_FACTS), ProjectionReader(BASELINE), SectionText("Outlook")):
        reading = reader(text, cut)
        assert isinstance(reading, Reading)
        if isinstance(reader, ProjectionReader) and reading.payload is not None:
            project(reading.payload)  # what the pipeline does next with it
    read_request(text)
    extract_numbers(text)
    find_claims(text)
    check_numbers(text, TABLE)
    fixed = correct_numbers(text, TABLE)  # what the document does with a section's figures
    assert isinstance(fixed.text, str) and len(fixed.changes) + len(fixed.removed) <= 2 * len(extract_numbers(text))
    CASES["business_plan"] += 1


@FUZZ
@given(model_text, st.booleans())
@example('{"revenue": "1e999999"}', False)  # decimal Overflow
@example('{"revenue": 1e300, "variable_cost_pct": 50}', False)  # decimal InvalidOperation
@example('{"investments": [{"amount": "1e999999"}]}', False)
@example("9" * 15_000, False)  # a regex scanning each digit run from every digit: 9 s
@example("[" * 9_000, False)  # a JSON decode from every bracket, each to the recursion limit: 2 s
def test_business_plan_readers(text: str, cut: bool) -> None:
    start = time.perf_counter()
    check_business(text, cut)
    assert time.perf_counter() - start < 3.0  # linear, not quadratic, in the length of the reply


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS[32:45]), json_values, max_size=8))
def test_business_plan_readers_on_proposal_shaped_json(data: dict[str, Any]) -> None:
    check_business(json.dumps(data), False)


# -- the OpenAI wire format ---------------------------------------------------------------------------------------------
def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, strategy, strategy, json_values)  # mostly the right type


_token = st.fixed_dictionaries(
    {"token": _maybe(tokens), "logprob": _maybe(logprob_values),
     "top_logprobs": _maybe(st.lists(st.fixed_dictionaries({"token": _maybe(tokens), "logprob": _maybe(logprob_values)}),
                                     max_size=3))},
)  # fmt: skip
_choice = st.fixed_dictionaries(
    {"message": _maybe(st.fixed_dictionaries({"content": _maybe(random_text)})), "text": _maybe(random_text),
     "logprobs": _maybe(st.fixed_dictionaries({"content": _maybe(st.lists(_token, max_size=3))}))},
    optional={"index": _maybe(st.integers(-2, 3)), "finish_reason": _maybe(st.sampled_from(["stop", "length"])),
              "stop_reason": _maybe(st.sampled_from(["\n", 7]))},
)  # fmt: skip
responses = st.fixed_dictionaries(
    {"choices": _maybe(st.lists(_choice, max_size=3)),
     "usage": _maybe(st.fixed_dictionaries({"prompt_tokens": _maybe(st.integers(-1, 10**12)),
                                            "completion_tokens": _maybe(st.integers(-1, 10**12))}))},
    optional={"model": _maybe(random_text), "error": json_values},
)  # fmt: skip


@FUZZ
@given(st.one_of(json_values, responses), st.booleans(), st.booleans(), st.sampled_from(["", "\n", "</s>"]))
def test_openai_choices(data: Any, chat: bool, logprobs: bool, stop: str) -> None:
    params = SamplingParams(n=2, logprobs=logprobs, top_logprobs=2 if logprobs else 0, stop=(stop,) if stop else ())
    try:
        out = parse_choices(data, params, chat, first_index=0, asked=2, latency_s=0.1, model="m")
    except Malformed as exc:
        why = str(exc)
    else:
        why = "read"
        assert 1 <= len(out) <= 2 and all(isinstance(c, Completion) and c.completion_tokens >= 0 for c in out)
        CASES["openai_wire.choices (read)"] += 1
    assert why
    CASES["openai_wire.choices"] += 1


# -- the calculator's expressions (a plan's tool_args) -----------------------------------------------------------------
expressions = st.one_of(
    model_text,
    st.lists(st.sampled_from(["1", "2", "10**9", "(", ")", "+", "-", "*", "/", "**", "%", "//", "[1]", "'a'", "<",
                              "math.comb(", "math.perm(", "sum(", "range(", ",", "9999", "{", "}", ":", "1e308",
                              " if ", " else ", "not ", "max(", "sorted(", "str(", "[1]*100000"]),
             max_size=30).map("".join),
)  # fmt: skip


@FUZZ
@given(expressions, st.booleans())
@example("[1] < 'a'", False)  # TypeError from a comparison
@example("-'a'", False)  # TypeError from a unary operator
@example("{[1]: 2}", False)  # unhashable key
@example("math.perm(10**6)", False)  # seconds of CPU: a denial of service
@example("((2**10000)**10000)**10000", False)  # a number no memory holds
@example("[[1]*100000]*100000", False)  # 10**10 elements once rendered
@example("1 + \ud800", False)  # a lone surrogate: UnicodeEncodeError from the parser
@example("-" * 1999 + "1", False)  # nested deeper than the evaluator recurses
def test_expression_evaluator(expression: str, arithmetic_only: bool) -> None:
    start = time.perf_counter()
    try:
        value = evaluate(expression, arithmetic_only=arithmetic_only)
    except EvaluationError as exc:
        why = str(exc)
    else:
        why = "evaluated"
        assert len(repr(value) if not isinstance(value, int) else str(value.bit_length())) < 10**7
    assert why and time.perf_counter() - start < 2.0, expression
    CASES["tools.evaluate"] += 1


# -- realistic outputs cut at every point -------------------------------------------------------------------------------
CUT_CHECKS: dict[str, Callable[[str], None]] = {
    "plan": check_plan,
    "routing": check_routing,
    "business": lambda t: check_business(t, True),
    **{f"answers.{k}": (lambda t, k=k: check_answer(t, k, True)) for k in EXTRACTORS},
    "patch": lambda t: (READER(t, True), None)[1],
}


@pytest.mark.parametrize("name", sorted(CUT_CHECKS))
def test_realistic_outputs_cut_at_every_point(name: str) -> None:
    check = CUT_CHECKS[name]
    source = {"plan": PLAN, "routing": ROUTING_JSON + PASSAGE_REPLY, "business": PROPOSAL + SECTION,
              "patch": PATCH}.get(name) or EXAMPLES_BY_KIND[name.split(".")[1]]  # fmt: skip
    for text in every_cut(source):
        check(text)
        CASES["cut." + name] += 1
    assert CASES["cut." + name] >= len(source)
