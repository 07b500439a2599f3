"""End-to-end agent benchmark: everyday multi-step requests with numeric answers, through the default agent.

    .venv/bin/python benchmarks/agent.py                                        # 56 requests, the 0.5B default
    .venv/bin/python benchmarks/agent.py --model qwen2.5-coder-1.5b-instruct    # the 1.5B model
    .venv/bin/python benchmarks/agent.py --quick                                # 4 requests

The requests (``benchmarks/data/agent_requests.jsonl``) were written as users write them — business arithmetic,
payroll, discounts and taxes, fuel over several legs, inventory over a week, compound growth, unit conversions,
schedules, percentages, splitting a bill — before any change to the agent, and are frozen: :data:`SET_SHA256` is
the file's SHA-256, checked before anything runs (an edited set is refused), and the set is never used to tune
prompts. Each line: ``id``, ``category``, ``request``, ``answer`` (the exact ground truth, computed from the
request's parameters with exact decimal arithmetic), ``unit``, ``tolerance`` and ``steps`` (the arithmetic in words,
for the reader; never shown to the model). ``tolerance`` is absolute: 0.005 for money (rounded to cents; also for
whole amounts), 0 for whole-number answers (counts, rounded-up quantities, "nearest whole"), half a unit of the last
place the request asks to round to (0.05 for "one decimal"), and otherwise a relative 1e-6 written as the absolute
number (``1e-6 * |answer|``). Wherever intermediate rounding to cents (or whole users) could change the result, the
parameters were chosen so that it does not, and no answer sits on a rounding tie.

Every request runs through :class:`longthink.api.Agent` with default :class:`~longthink.agents.AgentOptions`
(default domain routing: a request may be detected as a domain pack's) and no judge model (the default settings:
the policy model judges), on the embedded model (``--model``: ``qwen2.5-coder-0.5b-instruct`` by default, or
``qwen2.5-coder-1.5b-instruct``), one thread, generations cached under ``benchmarks/cache/agent/`` by model, prompt,
parameters and seed (unseeded requests get seed 0, so every generation is cached and a rerun costs nothing; the
``seconds`` of a cached request are then not its cost). Only ``artifacts_dir`` is set (to the cache), so that a run
a domain pack answers writes no files into the user's data directory.

Per request: ``answer`` (the run's final answer text, :attr:`RunResult.answer`), ``number`` (the final number that
text states, :func:`read_number`), ``correct`` (within the tolerance, compared exactly in decimal), ``status`` (the
run's :attr:`RunResult.status`: done / partial / failed / rejected, and ``unverified`` when the agent reports it;
``error`` when the run raised), ``tokens`` (the run's spend: the completion tokens its budget charges; prompt tokens
are recorded apart), ``seconds``, the domain and answer kind the run chose (its ``run_started`` event) and its plan.

Summary: ``accuracy``; ``false_done_share`` (of ALL requests, the share answered wrongly yet reported ``done``);
``unverified_share`` (the share reported ``unverified``); ``tokens_per_request``; ``seconds_per_request``; with
``requests``, ``set_sha256``, Wilson 95% intervals of the three shares, accuracy per category, and counts of
statuses, domains and answer kinds. Results: ``benchmarks/results/agent.json`` (``agent_1.5b.json`` for the 1.5B
model; ``--quick`` adds ``_quick``) with the provenance block of ``benchmarks/provenance.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import jsonable, provenance, relative
from stats import wilson

from longthink.agents import AgentOptions
from longthink.api import Agent, RunResult
from longthink.config import Settings as LongthinkSettings
from longthink.events import RunStarted
from longthink.llm.base import LLM
from longthink.llm.cache import CachedLLM
from longthink.models import find_spec
from longthink.store import MemoryStore

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "agent_requests.jsonl"
RESULTS = HERE / "results"
CACHE = HERE / "cache" / "agent"
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
OUT_NAMES = {DEFAULT_MODEL: "agent", "qwen2.5-coder-1.5b-instruct": "agent_1.5b"}
"""The results file of each model (another model: ``agent_<name>``)."""

SET_SHA256 = "be60bf29747f6a0d9cb0b16b77e11fb39048b01bee6addee90bd86f99f3c8249"
"""The SHA-256 of ``benchmarks/data/agent_requests.jsonl`` as it was frozen: the benchmark refuses another file."""

FIELDS = ("id", "category", "request", "answer", "unit", "tolerance", "steps")
QUICK = 4
"""``--quick``: the first request of each of the first four categories."""


@dataclass(frozen=True)
class Settings:
    """Everything one run depends on (the agent itself runs with its default options)."""

    model: str = DEFAULT_MODEL
    threads: int = 1
    ids: tuple[str, ...] = ()  # the requests to run (empty: all of them; --quick: four)
    quick: bool = False
    out: Path = RESULTS / "agent.json"
    cache: Path = CACHE


# -- the frozen set ---------------------------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_set(path: Path = DATA, expected: str = SET_SHA256) -> list[dict[str, Any]]:
    """The frozen request set; ``SystemExit`` with the reason when the file is not the one frozen."""
    if not path.is_file():
        raise SystemExit(f"the request set {relative(path)} is missing")
    actual = file_sha256(path)
    if actual != expected:
        raise SystemExit(
            f"the request set {relative(path)} has SHA-256 {actual}, not the frozen {expected}: the set is frozen "
            "(written before the agent was changed, never tuned to it); restore the committed file, or freeze a new "
            "set deliberately by updating SET_SHA256 in benchmarks/agent.py and saying so"
        )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows, 1):
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise SystemExit(f"{relative(path)} line {i} lacks {', '.join(missing)}")
    return rows


def select(rows: Sequence[dict[str, Any]], s: Settings) -> list[dict[str, Any]]:
    """The requests of a run: those named by ``s.ids`` (in the set's order), ``--quick``'s four, or all."""
    if s.ids:
        unknown = sorted(set(s.ids) - {r["id"] for r in rows})
        if unknown:
            raise SystemExit(f"no request {', '.join(unknown)} in the set")
        return [r for r in rows if r["id"] in s.ids]
    if s.quick:
        firsts: dict[str, dict[str, Any]] = {}
        for r in rows:
            firsts.setdefault(r["category"], r)
        return list(firsts.values())[:QUICK]
    return list(rows)


# -- reading the answer -----------------------------------------------------------------------------------------------
_GROUP = "[ \u00a0\u202f\u2009',.]"
_NUMBER = re.compile(
    r"(?<![\w.,])"  # not the tail of a word or of another number
    rf"(\d{{1,3}}(?:{_GROUP}\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"(?!\d|st\b|nd\b|rd\b|th\b)"  # no ordinals (1st, 4th)
)
_SCALE = re.compile(r"\s?(thousand|million|billion)\b|k(?![A-Za-z])", re.IGNORECASE)
_SCALES = {"thousand": 10**3, "k": 10**3, "million": 10**6, "billion": 10**9}
_NEGATIVE = re.compile(r"(?:^|[\s(:=])[-−]\s?(?:[$€£]\s?)?$")
_MARKERS = (
    re.compile(r"\\boxed\s*\{([^{}]*)\}"),
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"(?i)\b(?:final\s+)?answer\b\**\s*(?:is|:|=)\s*:?\**\s*([^\n]+)"),
)


def _decimal(raw: str) -> Decimal | None:
    """``raw`` (a token of :data:`_NUMBER`) as a number: grouping by spaces, apostrophes, commas or dots, and a
    decimal point or comma. With both ``.`` and ``,`` the last one is the decimal mark; a lone ``,`` followed by
    exactly three digits after one to three digits (not a leading 0) groups thousands (``1,234``), else it is a decimal
    comma (``12,5``); a repeated mark groups; a lone ``.`` is a decimal point."""
    s = re.sub(r"[ \u00a0\u202f\u2009']", "", raw)
    dots, commas = s.count("."), s.count(",")
    if dots and commas:
        mark = "." if s.rfind(".") > s.rfind(",") else ","
        other = "," if mark == "." else "."
        s = s.replace(other, "").replace(mark, ".")
    elif commas:
        head, _, tail = s.rpartition(",")
        grouped = commas > 1 or (len(tail) == 3 and 1 <= len(head.split(",")[0]) <= 3 and not head.startswith("0"))
        s = s.replace(",", "") if grouped else s.replace(",", ".")
    elif dots > 1:
        s = s.replace(".", "")
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def _numbers(text: str) -> list[tuple[Decimal, int]]:
    """Every number stated in ``text``, in order, with its sign and scale word (``1.2 million``), and where it ends."""
    out = []
    for m in _NUMBER.finditer(text):
        value = _decimal(m.group(1))
        if value is None:
            continue
        end = m.end()
        scale = _SCALE.match(text, end)
        if scale:
            value *= _SCALES[scale.group(0).strip().lower()]
            end = scale.end()
        if _NEGATIVE.search(text[: m.start()]):
            value = -value
        out.append((value, end))
    return out


_OPERAND = re.compile(r"\s*(?:=|[-+*/x×÷]\s*[$€£(]?\s*\d)")


def read_number(answer_text: str | None) -> Decimal | None:
    """The final number an answer states, or None: after the last ``\\boxed{}``, ``####`` or ``Answer:`` ("final
    answer is", "the answer is") that holds a number, its first number that is not an operand (``Answer: 40*22 +
    6.5*33 = 1094.50`` reads 1094.50); else the last number of the text. Tolerant of currency signs and codes,
    thousands separators (``$1,234.50``, ``1 234,5 €``, ``1.234,50``), percent signs, units and words around it
    (``about 12.5 hours``), scale words (``1.2 million``, ``$12k``) and a sentence after it without a number. Not
    read: numbers in words, clock times (``1:53`` reads 53) and fractions (``3/4`` reads 4)."""
    if not answer_text:
        return None
    for marker in _MARKERS:
        for hit in reversed(marker.findall(answer_text)):
            found = _numbers(hit)
            results = [v for v, end in found if not _OPERAND.match(hit, end)]
            if results or found:
                return (results or [found[-1][0]])[0]
    found = _numbers(answer_text)
    return found[-1][0] if found else None


def is_correct(value: Decimal | None, row: dict[str, Any]) -> bool:
    """``value`` is the request's answer within its (absolute) tolerance, compared exactly."""
    if value is None:
        return False
    return abs(value - Decimal(row["answer"])) <= Decimal(str(row["tolerance"]))


# -- running ----------------------------------------------------------------------------------------------------------
def build_agent(llm: LLM, s: Settings) -> Agent:
    """The agent as a user gets it: default options (only the artifacts folder set), default settings (no judge
    model: the policy model judges), an in-memory store."""
    return Agent(
        llm=llm,
        options=AgentOptions(artifacts_dir=str(s.cache / "artifacts")),
        settings=LongthinkSettings(judge_model=None),
        store=MemoryStore(),
        checkpoints=None,
    )


async def solve(agent: Agent, row: dict[str, Any]) -> dict[str, Any]:
    """One request through the agent: what it answered, whether that is right, how the run ended and what it cost."""
    hits, misses = _cache_counts(agent.llm)
    started: dict[str, Any] = {}
    error: str | None = None
    result: RunResult | None = None
    start = time.perf_counter()
    try:
        handle = agent.astream(row["request"], run_id=f"agent-{row['id']}")
        async for event in handle:
            if isinstance(event, RunStarted):
                started = {"domain": event.domain, "answer_kind": event.answer_kind}
        result = await handle.result()
    except Exception as exc:  # noqa: BLE001 - a run that raised is recorded as data (wrong, status "error")
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    answer = result.answer if result is not None else None
    value = read_number(answer)
    plan = result.plan.steps if result is not None and result.plan is not None else []
    spend = result.spend if result is not None else None
    return {
        "id": row["id"],
        "category": row["category"],
        "expected": row["answer"],
        "unit": row["unit"],
        "answer": answer,
        "number": None if value is None else format(value, "f"),
        "correct": is_correct(value, row),
        "status": result.status if result is not None else "error",
        "error": error,
        "domain": result.domain if result is not None else started.get("domain"),
        "answer_kind": started.get("answer_kind"),
        "plan": [s.goal for s in plan],
        "steps_verified": sum(o.verified for o in result.steps.values()) if result is not None else 0,
        "steps_run": len(result.steps) if result is not None else 0,
        "tokens": spend.completion_tokens if spend is not None else 0,
        "prompt_tokens": spend.prompt_tokens if spend is not None else 0,
        "seconds": round(seconds, 2),
        "generations_cached": _cache_counts(agent.llm)[0] - hits,
        "generations_new": _cache_counts(agent.llm)[1] - misses,
    }


def _cache_counts(llm: Any) -> tuple[int, int]:
    """(prompts answered from the generation cache, prompts generated) so far, when ``llm`` is or wraps a
    :class:`CachedLLM`; else (0, 0)."""
    while llm is not None and not isinstance(llm, CachedLLM):
        llm = getattr(llm, "inner", None)
    return (llm.hits, llm.misses) if llm is not None else (0, 0)


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    correct = sum(r["correct"] for r in rows)
    false_done = sum(not r["correct"] and r["status"] == "done" for r in rows)
    unverified = sum(r["status"] == "unverified" for r in rows)
    categories: dict[str, dict[str, Any]] = {}
    for r in rows:
        c = categories.setdefault(r["category"], {"requests": 0, "correct": 0})
        c["requests"] += 1
        c["correct"] += int(r["correct"])
    for c in categories.values():
        c["accuracy"] = round(c["correct"] / c["requests"], 4)

    def share(k: int) -> float | None:
        return round(k / n, 4) if n else None

    return {
        "requests": n,
        "set_sha256": SET_SHA256,
        "accuracy": share(correct),
        "accuracy_ci95": wilson(correct, n),
        "false_done_share": share(false_done),
        "false_done_ci95": wilson(false_done, n),
        "unverified_share": share(unverified),
        "unverified_ci95": wilson(unverified, n),
        "tokens_per_request": round(sum(r["tokens"] for r in rows) / n, 1) if n else None,
        "seconds_per_request": round(sum(r["seconds"] for r in rows) / n, 2) if n else None,
        "per_category": categories,
        "statuses": dict(Counter(r["status"] for r in rows)),
        "domains": dict(Counter(str(r["domain"]) for r in rows)),
        "answer_kinds": dict(Counter(str(r["answer_kind"]) for r in rows)),
        "unread": sum(r["number"] is None for r in rows),
    }


def write(s: Settings, rows: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    settings = jsonable({k: v for k, v in vars(s).items() if k not in ("out", "cache")})
    settings["model"] = model_name(s.model)
    options = jsonable(AgentOptions())
    options["artifacts_dir"] = "<cache>/artifacts"
    settings.update(agent_options=options, judge_model=None, set=relative(DATA), set_sha256=SET_SHA256)
    result = {"summary": {**summarise(rows), "final": final}, "settings": settings,
              "provenance": provenance(settings), "rows": rows}  # fmt: skip
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def build_llm(s: Settings) -> LLM:
    """The embedded model, its generations cached under ``s.cache``."""
    from scaling import SeededLLM

    from longthink.llm.llama_cpp import LlamaCppLLM

    base = LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=8)
    return SeededLLM(CachedLLM(base, s.cache / "generations"), seed=0)


async def run(s: Settings, llm: LLM | None = None) -> dict[str, Any]:
    """Run the selected requests (the set's hash is checked first, before any model loads) and write the results."""
    todo = select(load_set(), s)
    own = llm is None
    llm = build_llm(s) if llm is None else llm
    agent = build_agent(llm, s)
    rows: list[dict[str, Any]] = []
    try:
        for row in todo:
            done = await solve(agent, row)
            rows.append(done)
            print(f"{done['id']:<20} expected {done['expected']:>10} read {done['number']!s:>12} "
                  f"{'ok   ' if done['correct'] else 'WRONG'} {done['status']:<9} {done['domain']:<8} "
                  f"{done['tokens']:>6} tok {done['seconds']:>7} s", flush=True)  # fmt: skip
            write(s, rows, final=False)
    finally:
        if own:
            await llm.aclose()
    return write(s, rows, final=True)


def table(result: dict[str, Any]) -> str:
    lines = [f"{'request':<20} {'expected':>10} {'read':>12} {'correct':>7} {'status':<9} {'domain':<13} "
             f"{'tokens':>6} {'seconds':>8}"]  # fmt: skip
    for r in result["rows"]:
        lines.append(f"{r['id']:<20} {r['expected']:>10} {r['number']!s:>12} {r['correct']!s:>7} {r['status']:<9} "
                     f"{r['domain']!s:<13} {r['tokens']:>6} {r['seconds']:>8}")  # fmt: skip
    sm = result["summary"]
    lines += [
        f"accuracy {sm['accuracy']} {sm['accuracy_ci95']}; false done {sm['false_done_share']} "
        f"{sm['false_done_ci95']}; unverified {sm['unverified_share']} {sm['unverified_ci95']}",
        f"tokens per request {sm['tokens_per_request']}; seconds per request {sm['seconds_per_request']}; "
        f"statuses {sm['statuses']}; domains {sm['domains']}",
        "per category: " + ", ".join(f"{k} {v['correct']}/{v['requests']}" for k, v in sm["per_category"].items()),
    ]
    return "\n".join(lines)


def model_name(model: str) -> str:
    """A known model's name (an alias resolved), else the file name of a model path (never a machine path)."""
    spec = find_spec(model)
    return spec.name if spec is not None else Path(model).name


def out_path(model: str, quick: bool) -> Path:
    """``benchmarks/results/agent.json`` for the default model, ``agent_1.5b.json`` for the 1.5B, ``_quick`` added
    for ``--quick``."""
    name = model_name(model)
    stem = OUT_NAMES.get(name) or "agent_" + re.sub(r"[^\w.-]+", "_", Path(name).stem)
    return RESULTS / f"{stem}{'_quick' if quick else ''}.json"


def parse(argv: Sequence[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help=f"{QUICK} requests, one from each of four categories")
    p.add_argument("--model", default=DEFAULT_MODEL, help="qwen2.5-coder-0.5b-instruct or qwen2.5-coder-1.5b-instruct")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ids", default="", help="comma-separated request ids to run (default: all)")
    p.add_argument("--out", type=Path, default=None, help="the results file (default: by model)")
    p.add_argument("--cache", type=Path, default=CACHE)
    a = p.parse_args(argv)
    ids = tuple(i.strip() for i in a.ids.split(",") if i.strip())
    s = Settings(model=a.model, threads=a.threads, ids=ids, quick=a.quick, cache=a.cache)
    return replace(s, out=a.out or out_path(a.model, a.quick))


def main(argv: Sequence[str] | None = None) -> int:
    s = parse(argv)
    load_set()  # refuse an edited set before anything loads
    print(table(asyncio.run(run(s))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
