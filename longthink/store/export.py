"""Export runs as JSONL: one line per searched step and problem, shaped as reward-model training data.

Each line is one JSON object (UTF-8, keys in this order)::

    {
      "run_id": "4f0c...",            # the run
      "step_id": "s2",                # the plan step (or the problem id for a search outside a plan)
      "problem_id": "s2",             # the problem the candidates answer
      "request": "Plan a ...",        # the user's request of the run, or null
      "goal": "Compute ...",          # the step's goal, or null
      "prompt": [{"role": "user", "content": "..."}],   # the prompt the candidates answer, or null
      "strategy": "best_of_n",        # the search strategy, or null
      "status": "finished",           # finished | failed | running
      "verified": true,               # the step's verification verdict, or null
      "answer": "42",                 # the step's final answer (after voting/selection), or null
      "reason": "best of 8 by ...",   # why that answer was chosen
      "chosen": "p/best_of_n0.0.3",   # id of the chosen candidate, or null
      "chosen_index": 3,              # its position in "candidates", or null
      "candidates": [
        {
          "id": "p/best_of_n0.0.3", "parent_id": null, "depth": 0, "index": 3,
          "text": "...", "reasoning": null, "answer": "42", "parse_error": null,
          "finish_reason": "stop", "partial": false,
          "prompt_tokens": 31, "completion_tokens": 57, "latency_s": 0.8,
          "model": "qwen2.5-0.5b", "seed": 1234, "prompt_hash": "9c1d...", "mean_logprob": -0.41,
          "scores": {"judge": 0.8},            # value per scorer (null if the scorer gave NaN)
          "step_scores": {"prm": [0.9, 0.7]},  # per-step values per scorer, when the scorer gave them
          "rationales": {"judge": "..."}       # non-empty rationales per scorer
        }
      ]
    }

Candidates are in generation order; tree and beam search nodes (``partial`` true, ``parent_id`` set) are
included so that step-level rewards can be trained from them. Steps without candidates (tool-only steps)
are left out. Runs come newest first, as :meth:`Store.list_runs` returns them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from longthink.store import codec
from longthink.store.records import CandidateRecord, RunDetail, RunQuery, ScoreRecord

if TYPE_CHECKING:
    from longthink.store.protocol import Store


def stored_step_lines(store: Store, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The export lines of the stored runs (by id, else all); a ``ConfigError`` names a run that is not stored."""
    from longthink.errors import ConfigError

    ids = list(run_ids) if run_ids is not None else [r.id for r in store.list_runs()]
    lines: list[dict[str, Any]] = []
    for run_id in ids:
        detail = store.get_run(run_id)
        if detail is None:
            raise ConfigError(f"no run {run_id!r} in the store", field="run_id")
        lines.extend(step_lines(detail))
    return lines


def step_lines(detail: RunDetail) -> Iterator[dict[str, Any]]:
    """The export lines of one run (see the module docstring)."""
    steps = {s.id: s for s in detail.steps}
    scores: dict[str, list[ScoreRecord]] = {}
    for sc in detail.scores:
        scores.setdefault(sc.candidate_id, []).append(sc)
    groups: dict[tuple[str | None, str | None], list[CandidateRecord]] = {}
    for c in detail.candidates:
        groups.setdefault((c.step_id, c.problem_id), []).append(c)
    for (step_id, problem_id), cands in groups.items():
        step = steps.get(step_id) if step_id is not None else None
        ids = [c.id for c in cands]
        chosen = step.chosen_id if step is not None and step.chosen_id in ids else None
        yield {
            "run_id": detail.run.id,
            "step_id": step_id,
            "problem_id": problem_id,
            "request": detail.run.request,
            "goal": step.goal if step else None,
            "prompt": [{"role": m.role, "content": m.content} for m in step.prompt] if step and step.prompt else None,
            "strategy": step.strategy if step else None,
            "status": step.status if step else None,
            "verified": step.verified if step else None,
            "answer": step.answer if step else None,
            "reason": step.reason if step else None,
            "chosen": chosen,
            "chosen_index": ids.index(chosen) if chosen is not None else None,
            "candidates": [_candidate(c, scores.get(c.id, [])) for c in cands],
        }


def _candidate(c: CandidateRecord, scores: Sequence[ScoreRecord]) -> dict[str, Any]:
    return {
        "id": c.id,
        "parent_id": c.parent_id,
        "depth": c.depth,
        "index": c.index,
        "text": c.text,
        "reasoning": c.reasoning,
        "answer": c.answer,
        "parse_error": c.parse_error,
        "finish_reason": c.finish_reason,
        "partial": c.partial,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "latency_s": c.latency_s,
        "model": c.model,
        "seed": c.seed,
        "prompt_hash": c.prompt_hash,
        "mean_logprob": c.mean_logprob,
        "scores": {s.scorer: s.value for s in scores},
        "step_scores": {s.scorer: list(s.steps) for s in scores if s.steps},
        "rationales": {s.scorer: s.rationale for s in scores if s.rationale},
    }


def export_jsonl(
    store: Store, out: TextIO, *, run_ids: Sequence[str] | None = None, query: RunQuery | None = None
) -> int:
    """Write the runs (by id, else those matching ``query``, else all) to ``out``; returns the line count."""
    ids = list(run_ids) if run_ids is not None else [r.id for r in store.list_runs(query)]
    lines = 0
    for run_id in ids:
        detail = store.get_run(run_id)
        if detail is None:
            continue
        for line in step_lines(detail):
            out.write(codec.dumps(line))
            out.write("\n")
            lines += 1
    return lines
