"""The post-training loop, measured: verified search traces -> SFT data -> one LoRA round -> GSM8K before and after.

    .venv/bin/python benchmarks/post_training.py                  # the full round (about 8 hours on 2 idle CPU cores)
    .venv/bin/python benchmarks/post_training.py --collect-only   # the traces only (the README's first step)
    .venv/bin/python benchmarks/post_training.py --quick          # SmolLM2 taught by the 0.5B, tiny, a tmp folder

Training problems come from reasoning-gym generators (``verifier_data.GENERATORS``: word problems and arithmetic
with integer answers; never GSM8K, the evaluation set), each in program mode and in text mode. They are sampled
``--samples`` times by the policy model itself (self-improvement) and ``--teacher-samples`` times by the teacher
(distillation; ``--teacher none`` for self-improvement only) through longthink's ``SearchContext`` and scored against
the reference (scorer ``correct``) by ``verifier_data.collect`` into one store, one run per model. Then, as a user
would: ``longthink export --format sft`` (per prompt the shortest ``--per-problem`` verified solutions, 10% of the
questions held out) and ``longthink train`` (LoRA, one epoch).

Evaluation: ``--eval-problems`` GSM8K test problems (the seeded subset the scaling benchmark uses), in text mode and
in program mode, ``--eval-samples`` samples each at T=0.7 from the base GGUF and from the trained one, both on the
embedded engine with the same seeds (generations cached in ``benchmarks/cache``). Per model and mode: single-sample
accuracy (the mean over samples), SC@N (the majority vote, ties broken by ``longthink.search.base.leader``), and
generated tokens per problem and per solved problem (one sample's for single; all N samples' for SC@N).

``benchmarks/results/post_training.json`` holds the provenance block, the collection, export and training reports,
every evaluated problem and a ``summary``: ``single_before``/``single_after``, ``sc8_before``/``sc8_after`` and
``tokens_per_solved_before``/``tokens_per_solved_after`` in text mode — *before* is the base model's SC@N (the
test-time compute to distil), *after* the trained model's single sample — the same under ``program``, and
``goal_met``: the trained single sample reaches the base's SC@N at <= 1/4 of its tokens per solved problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import verifier_data
from datasets import GSM8K_INSTRUCTION, load_gsm8k, problem_seed
from provenance import provenance, relative

from longthink.llm.cache import CachedLLM
from longthink.rewards.verifier import ReferenceMatch
from longthink.search.base import leader, tally
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"
MODES = ("text", "program")


@dataclass(frozen=True)
class Settings:
    model: str = "qwen2.5-coder-0.5b-instruct"
    teacher: str | None = "qwen2.5-coder-1.5b-instruct"
    problems: int = 12  # per generator and mode
    samples: int = 8
    teacher_samples: int = 4
    max_tokens: int = 320
    temperature: float = 0.7
    seed: int = 0
    per_problem: int = 2
    heldout: float = 0.1
    epochs: float = 1.0
    max_steps: int | None = None
    max_length: int = 768
    grad_accum: int = 4
    learning_rate: float = 2e-4
    eval_problems: int = 40
    eval_samples: int = 8
    eval_max_tokens: int = 320
    threads: int = 1
    train_threads: int | None = None
    db: Path = CACHE / "post_training_traces.db"
    work: Path = CACHE / "post_training"
    out: Path = RESULTS / "post_training.json"
    cache: Path = CACHE
    quick: bool = False


def parse(argv: Sequence[str] | None = None) -> tuple[Settings, bool]:
    """The settings and whether to stop after collecting."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--model", default=None, help="the policy model (trained and evaluated)")
    ap.add_argument("--teacher", default=None, help="a larger model whose verified solutions are distilled, or none")
    ap.add_argument("--problems", type=int, default=None, help="training problems per generator")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--teacher-samples", type=int, default=None)
    ap.add_argument("--max-steps", type=int, default=None, help="optimiser steps at most (default: one epoch)")
    ap.add_argument("--eval-problems", type=int, default=None)
    ap.add_argument("--eval-samples", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="threads of the embedded engine")
    ap.add_argument("--train-threads", type=int, default=None, help="torch threads for training")
    ap.add_argument("--work", type=Path, default=None, help="where the data and the trained model go")
    ap.add_argument("--out", type=Path, default=None, help="the results JSON")
    ap.add_argument("--collect-only", action="store_true", help="collect the traces, then stop")
    ap.add_argument("--quick", action="store_true", help="SmolLM2 taught by the 0.5B, tiny sizes, a temporary folder")
    a = ap.parse_args(argv)
    s = Settings()
    if a.quick:
        tmp = Path(tempfile.mkdtemp(prefix="post-training-quick-"))
        s = replace(
            s,
            model="smollm2-135m-instruct",
            teacher="qwen2.5-coder-0.5b-instruct",  # SmolLM2 solves none of these: its teacher does
            problems=1,
            samples=2,
            teacher_samples=2,
            max_tokens=96,
            per_problem=1,
            heldout=0.0,
            max_steps=2,
            max_length=128,
            grad_accum=1,
            learning_rate=5e-3,
            eval_problems=2,
            eval_samples=2,
            eval_max_tokens=48,
            db=tmp / "traces.db",
            work=tmp / "work",
            out=tmp / "post_training.json",
            cache=tmp / "cache",
            quick=True,
        )
    teacher = s.teacher if a.teacher is None else (None if a.teacher.lower() == "none" else a.teacher)
    s = replace(
        s,
        model=a.model or s.model,
        teacher=teacher,
        problems=a.problems or s.problems,
        samples=a.samples or s.samples,
        teacher_samples=a.teacher_samples or s.teacher_samples,
        max_steps=a.max_steps or s.max_steps,
        eval_problems=a.eval_problems or s.eval_problems,
        eval_samples=a.eval_samples or s.eval_samples,
        threads=a.threads,
        train_threads=a.train_threads,
        work=a.work or s.work,
        out=a.out or s.out,
    )
    return s, a.collect_only


# -- collection (the learned verifier's collector, one run per model) ---------------------------------------------
async def collect(s: Settings) -> list[dict[str, Any]]:
    vs = verifier_data.Settings(
        model=s.model,
        threads=s.threads,
        problems=s.problems,
        samples=s.samples,
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        seed=s.seed,
        db=s.db,
        cache=s.cache,
    )
    problems = verifier_data.training_problems(vs)
    runs = [replace(vs, model=s.model)]
    if s.teacher:
        runs.append(replace(vs, model=s.teacher, samples=s.teacher_samples))
    stats = []
    for run in runs:
        print(f"collecting: {len(problems)} problems x {run.samples} samples by {run.model}", flush=True)
        stats.append({"model": run.model, "samples": run.samples, **await verifier_data.collect(run, problems)})
    return stats


# -- export and training, through the CLI ------------------------------------------------------------------------
def cli(args: Sequence[str]) -> dict[str, Any]:
    """Run ``longthink ARGS --json`` and return its JSON (the progress goes to this process's stderr)."""
    cmd = [str(Path(sys.executable).parent / "longthink"), *args, "--json"]
    print("$ " + shlex.join(["longthink", *cmd[1:]]), flush=True)
    done = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"longthink {args[0]} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def export_and_train(s: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    data, trained = s.work / "sft", s.work / "trained"
    manifest = cli(
        [
            "export",
            "--format",
            "sft",
            "--db",
            f"sqlite:///{s.db}",
            "--out",
            str(data),
            "--per-problem",
            str(s.per_problem),
            "--heldout",
            str(s.heldout),
            "--instruction",
            GSM8K_INSTRUCTION,  # what verifier_data appends to text-mode questions: not part of the question
        ]
    )
    if manifest["files"]["train.jsonl"]["examples"] == 0:
        raise SystemExit("no verified solutions to train on: more problems or samples, or a teacher")
    args = [
        "train",
        str(data),
        "--out",
        str(trained),
        "--model",
        s.model,
        "--epochs",
        str(s.epochs),
        "--max-length",
        str(s.max_length),
        "--grad-accum",
        str(s.grad_accum),
        "--lr",
        str(s.learning_rate),
    ]
    if s.max_steps:
        args += ["--max-steps", str(s.max_steps)]
    if s.train_threads:
        args += ["--threads", str(s.train_threads)]
    return manifest, cli(args)


# -- evaluation --------------------------------------------------------------------------------------------------
def problem_row(problem: Problem, cands: Sequence[Candidate], correct: Sequence[bool]) -> dict[str, Any]:
    """One evaluated problem: every sample's answer, correctness and tokens, and the vote."""
    vote = leader(tally(cands), cands)
    right = {c.answer for c, ok in zip(cands, correct, strict=True) if ok}
    return {
        "id": problem.id,
        "reference": problem.reference,
        "answers": [c.answer for c in cands],
        "correct": [bool(x) for x in correct],
        "tokens": [c.completion_tokens for c in cands],
        "vote": vote,
        "vote_correct": vote is not None and vote in right,
    }


def metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Single-sample accuracy, SC@N and tokens per (solved) problem of evaluated problems (see the docstring)."""
    samples = sum(len(r["correct"]) for r in rows)
    right = sum(sum(r["correct"]) for r in rows)
    tokens = sum(sum(r["tokens"]) for r in rows)
    voted = sum(bool(r["vote_correct"]) for r in rows)
    n = max((len(r["correct"]) for r in rows), default=0)
    return {
        "problems": len(rows),
        "samples_per_problem": n,
        "single": round(right / samples, 4) if samples else None,
        f"sc{n}": round(voted / len(rows), 4) if rows else None,
        "tokens_per_sample": round(tokens / samples, 1) if samples else None,
        "tokens_per_solved_single": round(tokens / right, 1) if right else None,
        f"tokens_per_solved_sc{n}": round(tokens / voted, 1) if voted else None,
        "oracle": round(sum(any(r["correct"]) for r in rows) / len(rows), 4) if rows else None,
    }


async def evaluate(model: str, s: Settings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``model`` (a known name or a trained folder) on the GSM8K problems, in each mode."""
    from longthink.llm.llama_cpp import LlamaCppLLM

    llm = CachedLLM(LlamaCppLLM(model, n_threads=s.threads, n_ctx=8192, max_sequences=16), s.cache)
    correct = ReferenceMatch(name="correct")
    out: dict[str, Any] = {"model": llm.model}
    try:
        for mode in MODES:
            problems = load_gsm8k(s.eval_problems, mode=mode, max_tokens=s.eval_max_tokens)  # type: ignore[arg-type]
            rows = []
            for k, p in enumerate(problems):
                ctx = SearchContext(llm=llm, seed=problem_seed(s.seed, p.id), temperature=s.temperature)
                [cands] = await ctx.sample(p, s.eval_samples, strategy="eval")
                scores = await correct.score(p, cands)
                rows.append(problem_row(p, cands, [sc.value >= 1.0 for sc in scores]))
                log(f"[{llm.model} {mode} {k + 1}/{len(problems)}] {sum(rows[-1]['correct'])}/{len(cands)} right")
            out[mode] = {"metrics": metrics(rows), "problems": rows}
    finally:
        await llm.aclose()
    return out


def summarise(before: Mapping[str, Any], after: Mapping[str, Any], n: int) -> dict[str, Any]:
    """The issue's summary keys (text mode at the top, program mode under ``program``) and whether the goal is met."""

    def keys(mode: str) -> dict[str, Any]:
        b, a = before[mode]["metrics"], after[mode]["metrics"]
        row = {
            "single_before": b["single"],
            "single_after": a["single"],
            f"sc{n}_before": b[f"sc{n}"],
            f"sc{n}_after": a[f"sc{n}"],
            "tokens_per_solved_before": b[f"tokens_per_solved_sc{n}"],
            "tokens_per_solved_after": a["tokens_per_solved_single"],
            "tokens_per_solved_single_before": b["tokens_per_solved_single"],
            f"tokens_per_solved_sc{n}_after": a[f"tokens_per_solved_sc{n}"],
        }
        reached = a["single"] is not None and b[f"sc{n}"] is not None and a["single"] >= b[f"sc{n}"]
        tb, ta = row["tokens_per_solved_before"], row["tokens_per_solved_after"]
        row["goal_met"] = bool(reached and tb and ta and ta <= tb / 4)
        return row

    return {**keys("text"), "program": keys("program"), "samples": n, "problems": before["text"]["metrics"]["problems"]}


def table(summary: Mapping[str, Any]) -> str:
    n = summary["samples"]
    lines = [
        f"| mode | single before | single after | SC@{n} before | SC@{n} after | tokens/solved: base SC@{n} | "
        "trained single |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, row in (("text", summary), ("program", summary["program"])):
        lines.append(
            f"| {mode} | {row['single_before']} | {row['single_after']} | {row[f'sc{n}_before']} | "
            f"{row[f'sc{n}_after']} | {row['tokens_per_solved_before']} | {row['tokens_per_solved_after']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    s, collect_only = parse(argv)
    started = time.perf_counter()
    collection = asyncio.run(collect(s))
    print(json.dumps(collection), flush=True)
    if collect_only:
        return 0
    manifest, training = export_and_train(s)
    trained = s.work / "trained"
    before = asyncio.run(evaluate(s.model, s))
    after = asyncio.run(evaluate(str(trained), s))
    summary = summarise(before, after, s.eval_samples)
    result = {
        "provenance": provenance(s, wall_s=round(time.perf_counter() - started, 1)),
        "summary": summary,
        "collection": collection,
        "export": manifest,
        "training": training,
        "before": before,
        "after": after,
    }
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(summary))
    print(f"results in {relative(s.out) if not s.quick else s.out}: goal met {summary['goal_met']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
