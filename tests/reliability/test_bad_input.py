"""Bad user input to the Python API, the CLI and the HTTP service: non-strings, empty, huge and binary requests,
NUL characters and lone surrogates, absurd budgets, unknown fields, wrong JSON types, wrong content types, invalid
run ids. Each is a clear error naming the culprit (``ConfigError`` with its field, exit code 2 with one line, a
4xx with a message) -- never a traceback or a 500 -- and the store holds no run for a rejected request (every
test counts the runs after, next to a valid run that is stored, so the count means something)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from longthink.agents.options import MAX_REQUEST_CHARS, AgentOptions
from longthink.api import Agent
from longthink.errors import ConfigError
from longthink.store import RunQuery, open_store
from longthink.testing import arithmetic_llm

QUESTION = "What is 17 + 25?"


def stored_runs(db: Path) -> list[Any]:
    store = open_store(f"sqlite:///{db}")
    try:
        return list(store.list_runs(RunQuery(limit=1000)))
    finally:
        store.close()


# -- the Python API ----------------------------------------------------------------------------------------------------
@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """An agent factory over one SQLite store in ``tmp_path`` (the arithmetic test backend: no model)."""
    db = tmp_path / "runs.db"
    store = open_store(f"sqlite:///{db}")

    def agent(**options: Any) -> Agent:
        return Agent(llm=arithmetic_llm(0), options=AgentOptions(**options), store=store,
                     checkpoints=str(tmp_path / "checkpoints.sqlite"))  # fmt: skip

    yield agent, db
    store.close()


BAD_REQUESTS = {
    "bytes": b"What is 1 + 2?",
    "none": None,
    "number": 42,
    "list": ["What is 1 + 2?"],
    "blank": " \n\t ",
    "huge": "What is 1 + 2? " + "x" * (5 * 2**20),
    "nul": "What is 1 + 2?\x00",
    "surrogate": "What is 1 + 2? \ud800",
    "surrogate-escaped argv": "What is \udcff?",
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_api_refuses_bad_requests_before_storing_anything(api: tuple[Any, Path], name: str) -> None:
    agent, db = api
    with pytest.raises(ConfigError) as err:
        agent().solve(BAD_REQUESTS[name])
    assert err.value.field == "request" and "request" in str(err.value)
    assert stored_runs(db) == []
    good = agent().solve(QUESTION)  # the same agent factory and store take a valid request
    assert good.status == "done" and good.answer == "42"
    assert [r.id for r in stored_runs(db)] == [good.run_id]


def test_api_request_limit_is_a_setting(api: tuple[Any, Path]) -> None:
    agent, db = api
    assert MAX_REQUEST_CHARS == 1_000_000
    with pytest.raises(ConfigError, match="limit is 40"):
        agent(max_request_chars=40).solve(QUESTION + " " * 10 + "x" * 30)
    assert agent(max_request_chars=40).solve(QUESTION).answer == "42"
    assert len(stored_runs(db)) == 1


BAD_OPTIONS: list[tuple[str, Any]] = [
    ("budget_tokens", -5), ("budget_tokens", 0), ("budget_tokens", 1e30), ("budget_tokens", math.nan),
    ("budget_tokens", 10**30), ("budget_tokens", "4000"), ("budget_tokens", True), ("budget_samples", -1),
    ("budget_samples", math.inf), ("temperature", math.nan), ("temperature", -0.5), ("temperature", math.inf),
    ("step_max_tokens", 0), ("step_max_tokens", 2.5), ("answer_max_tokens", -1), ("plan_candidates", 0),
    ("max_plan_steps", 40), ("max_replans", -1), ("plan_budget_share", 0), ("plan_budget_share", math.nan),
    ("verify_threshold", math.nan), ("seed", 1.5), ("strategy_options", ["n", 4]), ("strategy", "beam_serch"),
    ("answer_mode", "telepathy"), ("approve_plan", "yes"), ("max_request_chars", 0), ("judge_model", " "),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), BAD_OPTIONS)
def test_api_refuses_absurd_options_naming_the_field(api: tuple[Any, Path], field: str, value: Any) -> None:
    agent, db = api
    with pytest.raises(ConfigError) as err:
        agent(**{field: value})
    assert err.value.field == field or field in str(err.value), err.value
    assert stored_runs(db) == []


def test_api_unknown_fields_and_names(api: tuple[Any, Path]) -> None:
    agent, db = api
    with pytest.raises(TypeError, match="budget_tokenz"):
        AgentOptions(budget_tokenz=100)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="did you mean"):
        agent(strategy="best_of_m")
    with pytest.raises(ConfigError, match="routing"):  # an unknown domain lists the known ones
        agent(domain="astrology")
    for bad_id in ("x" * 300, "line\nbreak", "nul\x00", "\ud800", 7):
        with pytest.raises(ConfigError) as err:
            agent().solve(QUESTION, run_id=bad_id)
        assert err.value.field == "run_id"
    with pytest.raises(ConfigError, match="no run"):
        agent().resume("no-such-run")
    assert stored_runs(db) == []
    assert agent(budget_tokens=10**12).solve(QUESTION, run_id="a run id with spaces").answer == "42"


def test_api_refuses_bad_plan_decisions_and_the_run_still_waits(api: tuple[Any, Path]) -> None:
    agent, db = api
    waiting = agent(approve_plan=True).solve(QUESTION)
    assert waiting.status == "awaiting_approval"
    for decision in ({"action": "aprove"}, {"action": "reject", "feedback": "no\x00"}, ["approve"],
                     {"action": "edit", "plan": {"steps": [{"id": "s1", "goal": "\ud800"}]}}):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            agent(approve_plan=True).resume(waiting.run_id, decision)  # type: ignore[arg-type]
        assert err.value.field == "decision"
    assert agent(approve_plan=True).resume(waiting.run_id, {"action": "approve"}).answer == "42"
    assert [r.status for r in stored_runs(db)] == ["done"]


# -- the CLI -----------------------------------------------------------------------------------------------------------
CLI = "from longthink.cli import main; main()"


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "LONGTHINK_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}",
            "LONGTHINK_CONFIG": str(tmp_path / "none.toml"), "NO_COLOR": "1", "COLUMNS": "200"}  # fmt: skip


def run_cli(args: list[str | bytes], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True,
                          errors="replace", timeout=120, check=False)  # fmt: skip


def test_cli_refuses_bad_input_with_exit_code_2_and_one_clear_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Every case fails before a model loads (none is configured: loading one would fail differently)."""
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(bytes(range(256)) * 8)
    zeros = tmp_path / "zeros.txt"
    zeros.write_bytes(b"\x00" * 1024)
    huge = tmp_path / "huge.txt"
    huge.write_text("word " * 400_000)
    cases: list[tuple[list[str | bytes], str]] = [
        (["solve", QUESTION, "--budget", "-5"], "budget_tokens must be >= 1"),
        (["solve", QUESTION, "--budget", "1e30"], "--budget"),
        (["solve", QUESTION, "--budget", "99999999999999999999999"], "budget_tokens must be <="),
        (["solve", QUESTION, "--file", str(binary)], "not a UTF-8 text file"),
        (["solve", QUESTION, "--file", str(zeros)], "NUL character"),
        (["solve", QUESTION, "--file", str(huge)], "the limit is 1000000"),
        (["solve", QUESTION, "--file", str(tmp_path / "missing.py")], "does not exist"),
        (["solve", "   "], "non-empty string"),
        ([b"solve", b"What is \xff\xfe?"], "not valid Unicode"),  # invalid UTF-8 in argv
        (["solve", QUESTION, "--strategy", "beam_serch"], "did you mean"),
        (["solve", QUESTION, "--mode", "telepathy"], "answer_mode"),
        (["solve", QUESTION, "--domain", "astrology"], "astrology"),
        (["solve", QUESTION, "--frobnicate"], "No such option"),
        (["runs", "show", "no-such-run"], "no run 'no-such-run'"),
    ]
    for args, message in cases:
        proc = run_cli(args, cli_env)
        shown = f"{args[:3]}: exit {proc.returncode}\n{proc.stderr[-1500:]}"
        assert proc.returncode == 2, shown
        assert message in " ".join(proc.stderr.split()), shown
        assert "Traceback" not in proc.stderr + proc.stdout, shown
    db = tmp_path / "runs.db"
    assert not db.exists() or stored_runs(db) == []


# -- the HTTP service (a real `longthink serve` process) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("fastapi")
    from service_proc import ServiceProcess

    with ServiceProcess(tmp_path_factory.mktemp("svc-bad-input"), delay_s=0.0, workers=2) as proc:
        yield proc


def _post(base: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base}{path}", timeout=30, **kwargs)


JSON = {"content-type": "application/json"}
BAD_BODIES: list[tuple[str, dict[str, Any], set[int], str]] = [
    # (what, httpx arguments, acceptable statuses, a word the message must hold)
    ("body over 1 MiB", {"json": {"request": "x" * (2 * 2**20)}}, {413}, "limit"),
    ("request over 100k characters", {"json": {"request": "y" * 200_000}}, {413}, "limit"),
    ("files over the limit", {"json": {"request": QUESTION, "files": {"a.txt": "z" * 150_000}}}, {413}, "limit"),
    ("21 files", {"json": {"request": QUESTION, "files": {f"f{i}.txt": "a" for i in range(21)}}}, {413}, "files"),
    ("binary body", {"content": bytes(range(256)) * 16, "headers": JSON}, {400, 422}, "body|JSON"),
    ("invalid UTF-8 in a JSON string", {"content": b'{"request": "What is \xff\xfe?"}', "headers": JSON}, {400, 422},
     "body|JSON"),
    ("lone surrogate", {"content": b'{"request": "What is 1 + 2? \\ud800"}', "headers": JSON}, {400, 422}, "Unicode"),
    ("NUL character", {"json": {"request": "What is 1 + 2?\x00"}}, {400, 422}, "NUL"),
    ("NUL in a file", {"json": {"request": QUESTION, "files": {"a.py": "x = 1\x00"}}}, {400, 422}, "NUL"),
    ("text/plain body", {"content": json.dumps({"request": QUESTION}), "headers": {"content-type": "text/plain"}},
     {415, 422, 400}, "invalid"),
    ("form body", {"data": {"request": QUESTION}}, {415, 422, 400}, "invalid"),
    ("no body", {"headers": JSON}, {422, 400}, "invalid"),
    ("JSON null", {"content": b"null", "headers": JSON}, {422, 400}, "invalid"),
    ("JSON list", {"json": [QUESTION]}, {422, 400}, "invalid"),
    ("JSON string", {"json": QUESTION}, {422, 400}, "invalid"),
    ("request is a number", {"json": {"request": 42}}, {422}, "request"),
    ("request is a list", {"json": {"request": [QUESTION]}}, {422}, "request"),
    ("request is empty", {"json": {"request": ""}}, {422}, "request"),
    ("request is blank", {"json": {"request": "   "}}, {400, 422}, "request"),
    ("unknown field", {"json": {"request": QUESTION, "budget_tokenz": 5}}, {422}, "budget_tokenz"),
    ("budget NaN", {"content": b'{"request": "What is 1 + 2?", "budget_tokens": NaN}', "headers": JSON}, {422},
     "budget_tokens"),
    ("budget 1e30", {"json": {"request": QUESTION, "budget_tokens": 1e30}}, {422}, "budget_tokens"),
    ("budget 10**30", {"json": {"request": QUESTION, "budget_tokens": 10**30}}, {422}, "budget_tokens"),
    ("budget negative", {"json": {"request": QUESTION, "budget_tokens": -1}}, {422}, "budget_tokens"),
    ("budget a word", {"json": {"request": QUESTION, "budget_tokens": "lots"}}, {422}, "budget_tokens"),
    ("strategy options a string", {"json": {"request": QUESTION, "strategy_options": "n=4"}}, {422},
     "strategy_options"),
    ("unknown strategy option", {"json": {"request": QUESTION, "strategy": "best_of_n",
                                          "strategy_options": {"m": 4}}}, {400, 422}, "'m'"),
    ("absurd strategy option", {"json": {"request": QUESTION, "strategy": "best_of_n",
                                         "strategy_options": {"n": -3}}}, {400, 422}, "n >= 1"),
    ("strategy option of the wrong type", {"json": {"request": QUESTION, "strategy": "best_of_n",
                                                    "strategy_options": {"n": "four"}}}, {400, 422}, "str"),
    ("unknown strategy", {"json": {"request": QUESTION, "strategy": "beam_serch"}}, {400}, "did you mean"),
    ("unknown domain", {"json": {"request": QUESTION, "domain": "astrology"}}, {400}, "astrology"),
    ("files of the wrong type", {"json": {"request": QUESTION, "files": ["a.py"]}}, {422}, "files"),
    ("file content of the wrong type", {"json": {"request": QUESTION, "files": {"a.py": 5}}}, {422}, "files"),
    ("answer mode", {"json": {"request": QUESTION, "answer_mode": "telepathy"}}, {422}, "answer_mode"),
    ("another model", {"json": {"request": QUESTION, "model": "gpt-7"}}, {400}, "gpt-7"),
    ("webhook without a secret", {"json": {"request": QUESTION, "webhook_url": "http://x"}}, {400}, "webhook"),
]  # fmt: skip


def _is_clear_error(r: httpx.Response, statuses: set[int], word: str) -> str | None:
    """None when ``r`` is one of ``statuses`` with an OpenAI-shaped error whose message holds ``word`` (or one of
    its ``|``-separated alternatives); else what is wrong."""
    if r.status_code not in statuses:
        return f"status {r.status_code}: {r.text[:300]}"
    try:
        message = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"not an error body: {r.text[:300]}"
    if not any(w.lower() in message.lower() for w in word.split("|")) or "Traceback" in r.text:
        return f"unclear message: {message[:300]}"
    return None


def test_service_refuses_bad_bodies_clearly_and_stores_nothing(service: Any) -> None:
    base = service.base_url
    problems = []
    for what, kwargs, statuses, word in BAD_BODIES:
        why = _is_clear_error(_post(base, "/v1/runs", **kwargs), statuses, word)
        if why:
            problems.append(f"{what}: {why}")
    # the same limit while the body streams in without a Content-Length (chunked)
    chunks = (b'{"request": "' + b"x" * 65536 for _ in range(40))
    why = _is_clear_error(_post(base, "/v1/runs", content=chunks, headers=JSON), {413}, "limit")
    if why:
        problems.append(f"chunked body over 1 MiB: {why}")
    assert not problems, "\n".join(problems)
    listed = httpx.get(f"{base}/v1/runs", timeout=10).json()
    assert listed["total"] == 0, listed  # nothing half-written: no job...
    assert stored_runs(service.db_dir / "runs.db") == []  # ...and no run in the store
    good = _post(base, "/v1/runs", json={"request": QUESTION, "budget_tokens": 10_000_000})
    assert good.status_code == 202, good.text
    assert httpx.get(f"{base}/v1/runs", timeout=10).json()["total"] == 1


BAD_CHATS: list[tuple[str, dict[str, Any], str]] = [
    ("no messages", {"model": "longthink", "messages": []}, "messages"),
    ("no model", {"messages": [{"role": "user", "content": QUESTION}]}, "model"),
    ("unknown role", {"model": "longthink", "messages": [{"role": "wizard", "content": QUESTION}]}, "role"),
    ("content a number", {"model": "longthink", "messages": [{"role": "user", "content": 5}]}, "content"),
    ("n of 5", {"model": "longthink", "n": 5, "messages": [{"role": "user", "content": QUESTION}]}, "n"),
    ("NUL", {"model": "longthink", "messages": [{"role": "user", "content": "1 + 2?\x00"}]}, "NUL"),
    ("huge", {"model": "longthink", "messages": [{"role": "user", "content": "x" * 200_000}]}, "limit"),
    ("absurd budget", {"model": "longthink", "messages": [{"role": "user", "content": QUESTION}],
                       "longthink": {"budget_tokens": 1e30}}, "budget_tokens"),
    ("unknown longthink option", {"model": "longthink", "messages": [{"role": "user", "content": QUESTION}],
                                  "longthink": {"budget": 5}}, "budget"),
]  # fmt: skip


def test_openai_endpoint_refuses_bad_bodies_clearly(service: Any) -> None:
    problems = []
    for what, body, word in BAD_CHATS:
        r = _post(service.base_url, "/v1/chat/completions", json=body)
        why = _is_clear_error(r, {400, 404, 413, 422}, word)
        if why:
            problems.append(f"{what}: {why}")
    assert not problems, "\n".join(problems)


def test_service_refuses_bad_plan_decisions(service: Any) -> None:
    base = service.base_url
    created = _post(base, "/v1/runs", json={"request": QUESTION, "approve_plan": True})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    for _ in range(300):
        if httpx.get(f"{base}/v1/runs/{run_id}", timeout=10).json()["status"] == "awaiting_approval":
            break
        time.sleep(0.1)
    bad: list[tuple[bytes, set[int], str]] = [
        (b'{"action": "reject", "feedback": "no\\u0000"}', {400}, "NUL"),
        (b'{"action": "edit", "plan": {"steps": [{"id": "s1", "goal": "\\ud800"}]}}', {400}, "Unicode"),
        (b'{"action": "explode"}', {422}, "action"),
        (b'{"action": "edit"}', {422}, "plan"),
        (b'{"action": "approve", "note": 1}', {422}, "note"),
    ]
    problems = []
    for body, statuses, word in bad:
        why = _is_clear_error(_post(base, f"/v1/runs/{run_id}/approve", content=body, headers=JSON), statuses, word)
        if why:
            problems.append(f"{body!r}: {why}")
    assert not problems, "\n".join(problems)
    assert httpx.get(f"{base}/v1/runs/{run_id}", timeout=10).json()["status"] == "awaiting_approval"
    assert _post(base, f"/v1/runs/{run_id}/approve", json={"action": "approve"}).status_code == 202


BAD_IDS = ["no-such-run", "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 5000, "%F0%9F%99%82", "%ED%A0%80", "1%0A2", "'; DROP"]


def test_invalid_run_ids_are_not_found_and_bad_query_values_are_422(service: Any) -> None:
    base = service.base_url
    problems = []
    for run_id in BAD_IDS:
        for method, path in (("GET", ""), ("GET", "/events"), ("POST", "/cancel"), ("GET", "/webhooks"),
                             ("GET", "/artifacts/..%2F..%2Fruns.db")):  # fmt: skip
            kwargs: dict[str, Any] = {"json": {"action": "approve"}} if method == "POST" else {}
            r = httpx.request(method, f"{base}/v1/runs/{run_id}{path}", timeout=10, **kwargs)
            why = _is_clear_error(r, {404}, "")
            if why:
                problems.append(f"{method} {run_id[:30]}{path}: {why}")
        r = _post(base, f"/v1/runs/{run_id}/approve", json={"action": "approve"})
        if _is_clear_error(r, {404}, "") is not None:
            problems.append(f"approve {run_id[:30]}: {r.status_code}")
    for query, word in (("limit=0", "limit"), ("limit=100000", "limit"), ("offset=-1", "offset"),
                        ("since=yesterday", "since"), ("limit=NaN", "limit")):  # fmt: skip
        why = _is_clear_error(httpx.get(f"{base}/v1/runs?{query}", timeout=10), {422}, word)
        if why:
            problems.append(f"?{query}: {why}")
    r = httpx.get(f"{base}/v1/runs?since=nan&until=inf", timeout=10)
    if r.status_code >= 500:
        problems.append(f"?since=nan: {r.status_code} {r.text[:200]}")
    approve = _post(base, "/v1/runs/no-such-run/approve", json={"action": "explode"})
    if _is_clear_error(approve, {422, 404}, "") is not None:
        problems.append(f"an unknown decision: {approve.status_code} {approve.text[:200]}")
    assert not problems, "\n".join(problems)
    assert "Traceback" not in service.logs() and "unhandled error" not in service.logs(), service.logs()[-3000:]
