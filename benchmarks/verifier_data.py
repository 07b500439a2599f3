"""Training traces for the learned verifier: procedurally generated problems with exact answers, searched by the
policy model through longthink itself, every candidate stored in a run store (the same SQL rows a user's runs
make), then ``longthink rewards train`` fits the verifier from that store.

    .venv/bin/python benchmarks/verifier_data.py                 # collect (cached generations) and train
    .venv/bin/python benchmarks/verifier_data.py --problems 4 --quick   # a smoke run (SmolLM2, a tmp dir)

Training problems come from ``reasoning-gym`` generators (never from an evaluation set): word problems and
arithmetic with integer answers. ``gsm_symbolic`` is deliberately left out: its templates are built from GSM8K
test questions, which are our evaluation set. Each problem is sampled ``--samples`` times in program mode and
in text mode (the verifier reads features of both), scored against the reference (scorer ``correct``) — the
label — and by self-certainty. The artifact goes to ``benchmarks/results/verifier.json`` with its provenance block;
the training record ``verifier_training.json`` has the same block and the artifact's SHA-256.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import GSM8K_INSTRUCTION, problem_seed
from provenance import provenance, relative, sha256

from longthink.answers import normalize_number
from longthink.events import EventBus, RunStarted, StepFinished, StepStarted
from longthink.llm.cache import CachedLLM
from longthink.outcome import StepOutcome
from longthink.rewards.learned import VerifierArtifact
from longthink.rewards.self_certainty import SelfCertainty
from longthink.rewards.verifier import ReferenceMatch
from longthink.search.context import SearchContext
from longthink.search.types import Problem
from longthink.store import open_store
from longthink.store.observer import StoreObserver

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"

GENERATORS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("leg_counting", {}),
    ("aiw", {}),
    ("basic_arithmetic", {}),
    ("chain_sum", {}),
    ("products", {}),
    ("gcd", {}),
    ("lcm", {}),
    ("count_primes", {}),
)
"""reasoning-gym generators with integer answers (word problems, arithmetic, number theory)."""


@dataclass(frozen=True)
class Settings:
    model: str = "qwen2.5-coder-0.5b-instruct"
    threads: int = 1
    problems: int = 3  # per generator
    samples: int = 8
    modes: tuple[str, ...] = ("program", "text")
    max_tokens: int = 320
    temperature: float = 0.7
    seed: int = 0
    db: Path = CACHE / "verifier_traces.db"
    out: Path = RESULTS / "verifier.json"
    cache: Path = CACHE
    embed: bool = False
    quick: bool = False


def training_problems(s: Settings) -> list[Problem]:
    """``s.problems`` problems of every generator, in each mode, with integer reference answers."""
    import reasoning_gym

    out: list[Problem] = []
    for name, config in GENERATORS:
        data = reasoning_gym.create_dataset(name, size=s.problems * 3, seed=s.seed, **config)
        kept = 0
        for i, item in enumerate(data):
            ref = normalize_number(str(item["answer"]))
            if ref is None or kept >= s.problems:
                continue
            kept += 1
            for mode in s.modes:
                question = str(item["question"]).strip()
                text = question if mode == "program" else f"{question}\n\n{GSM8K_INSTRUCTION}"
                out.append(
                    Problem.from_text(
                        f"rg-{name}-{i}-{mode}",
                        text,
                        answer_kind="number",
                        mode="program" if mode == "program" else "text",
                        max_tokens=s.max_tokens,
                        reference=ref,
                        metadata={"generator": name, "index": i},
                    )
                )
    return out


async def collect(s: Settings, problems: Sequence[Problem]) -> dict[str, Any]:
    from longthink.llm.llama_cpp import LlamaCppLLM

    base = LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=16)
    llm = CachedLLM(base, s.cache)
    s.db.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{s.db}")
    bus = EventBus(run_id=f"verifier-traces-{s.seed}-{s.model}")
    bus.emit(RunStarted(request=f"training traces: {len(problems)} reasoning-gym problems", options={"model": s.model}))
    correct, certainty = ReferenceMatch(name="correct"), SelfCertainty()
    stats = {"problems": 0, "candidates": 0, "positives": 0, "wall_s": 0.0}
    start = time.perf_counter()
    try:
        with StoreObserver(store, bus):
            for k, p in enumerate(problems):
                ctx = SearchContext(
                    llm=llm, events=bus, seed=problem_seed(s.seed, p.id), temperature=s.temperature, step_id=p.id
                )
                bus.emit(StepStarted(step_id=p.id, goal=p.question[:200], strategy="pool", problem_id=p.id,
                                     prompt=[{"role": m.role, "content": m.content} for m in p.prompt]))  # fmt: skip
                [cands] = await ctx.sample(p, s.samples, strategy="pool")
                cands = await ctx.score(p, cands, correct)
                cands = await ctx.score(p, cands, certainty)
                right = sum((c.score("correct") or 0) >= 1 for c in cands)
                outcome = StepOutcome(
                    step_id=p.id,
                    strategy="pool",
                    candidates=len(cands),
                    accepted=True,
                    reason="training traces: every candidate is kept, none is chosen",
                )
                bus.emit(StepFinished(step_id=p.id, outcome=outcome))
                stats["problems"] += 1
                stats["candidates"] += len(cands)
                stats["positives"] += right
                print(f"[{k + 1}/{len(problems)}] {p.id}: {right}/{len(cands)} correct", flush=True)
    finally:
        await llm.aclose()
        store.close()
    stats["wall_s"] = round(time.perf_counter() - start, 1)
    return stats


def train(s: Settings) -> dict[str, Any]:
    """Fit the verifier from the store through the CLI, as a user would."""
    cmd = [str(Path(sys.executable).parent / "longthink"), "rewards", "train", "--db", f"sqlite:///{s.db}",
           "--label-scorer", "correct", "--out", str(s.out), "--json"]  # fmt: skip
    cmd.append("--embed" if s.embed else "--no-embed")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--problems", type=int, default=None, help="problems per generator")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embed", action="store_true", help="add policy-model embedding features")
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--quick", action="store_true", help="SmolLM2, 2 problems per generator, 4 samples, tmp dir")
    a = ap.parse_args(argv)
    s = Settings()
    if a.quick:
        tmp = Path(tempfile.mkdtemp(prefix="verifier-quick-"))
        s = replace(s, model="smollm2-135m-instruct", problems=2, samples=4, max_tokens=96, db=tmp / "traces.db",
                    out=tmp / "verifier.json", cache=tmp / "cache", quick=True)  # fmt: skip
    s = replace(
        s,
        problems=a.problems or s.problems,
        samples=a.samples or s.samples,
        model=a.model or s.model,
        threads=a.threads,
        embed=a.embed,
    )
    problems = training_problems(s)
    print(f"{len(problems)} training problems x {s.samples} samples, model {s.model}", flush=True)
    stats = asyncio.run(collect(s, problems))
    print(json.dumps(stats), flush=True)
    if a.collect_only:
        return 0
    trained = train(s)
    trained["path"] = relative(s.out)
    block = provenance(s, collection=stats)
    artifact = VerifierArtifact.load(s.out)
    artifact.model_copy(update={"provenance": block}).save(s.out)  # the artifact carries its own provenance
    record = {**block, "artifacts": {relative(s.out): sha256(s.out)}}
    (s.out.parent / "verifier_training.json").write_text(json.dumps({"provenance": record, **trained}, indent=1))
    print(json.dumps(trained, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
