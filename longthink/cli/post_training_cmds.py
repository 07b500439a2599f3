"""``longthink export`` and ``longthink train``: stored runs -> training data -> a LoRA-tuned model.

They parse, call :mod:`longthink.post_training` and render; ``longthink generate --model OUT`` serves the result.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("train")(train)


def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="sft (verified solutions), dpo (pairs) or prm (steps).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write (default: ./longthink-FORMAT).")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="Store URL (default: the configured run store).")] = None,
    run_id: Annotated[list[str] | None, typer.Option("--run", help="Runs to export (default: all).")] = None,
    heldout: Annotated[float, typer.Option("--heldout", help="Share of problems held out (by a hash).")] = 0.1,
    per_problem: Annotated[int, typer.Option("--per-problem", help="SFT: verified solutions per prompt.")] = 1,
    pairs: Annotated[int, typer.Option("--pairs", help="DPO: pairs per prompt.")] = 2,
    label_scorer: Annotated[
        list[str] | None,
        typer.Option(
            "--label-scorer", help="Scorer whose value >= 1 means correct (default: correct, reference, tests)."
        ),
    ] = None,
    source_model: Annotated[
        list[str] | None, typer.Option("--source-model", help="Only candidates of this model (repeat; default: all).")
    ] = None,
    instruction: Annotated[
        list[str] | None,
        typer.Option("--instruction", help="Text appended to questions that is not part of them (for the split)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Write training data from stored runs: train.jsonl, heldout.jsonl (split by problem) and manifest.json."""
    from longthink.config import load_settings
    from longthink.post_training.data import LABEL_SCORERS, ExportOptions, dataset_from_store
    from longthink.post_training.manifest import write_dataset
    from longthink.store import open_store

    options = ExportOptions(
        format=fmt,  # type: ignore[arg-type]  # validated by ExportOptions
        heldout=heldout,
        per_problem=per_problem,
        pairs_per_problem=pairs,
        label_scorers=tuple(label_scorer or LABEL_SCORERS),
        models=tuple(source_model or ()),
        instructions=tuple(instruction or ()),
    )
    url = db or load_settings().resolved_db_url
    store = open_store(url)
    try:
        dataset = dataset_from_store(store, options, run_id or None)
    finally:
        store.close()
    directory = out or Path(f"longthink-{options.format}")
    manifest = write_dataset(dataset, directory, store=url, options=options)
    if as_json:
        sys.stdout.write(manifest.model_dump_json(indent=2) + "\n")
        return
    files = ", ".join(f"{name} {f.examples} ({f.problems} problems)" for name, f in manifest.files.items())
    console.print(f"wrote {escape(str(directory))}: {escape(files)}")
    console.print(
        f"  from {len(manifest.runs)} run(s), {manifest.counts.get('prompts', 0)} prompts, "
        f"{manifest.counts.get('verified', 0)} verified of {manifest.counts.get('candidates', 0)} candidates; "
        f"models {escape(_tally(manifest.models))}; labels {escape(_tally(manifest.label_scorers))}"
    )
    if not dataset.train:
        err_console.print("[yellow]no training examples: do the runs carry a label scorer (--label-scorer)?[/yellow]")


def train(
    data: Annotated[Path, typer.Argument(help="A folder written by `longthink export` (sft or dpo).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (adapter, merged GGUF, checkpoints).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base model: name, GGUF or HF folder.")] = None,
    epochs: Annotated[float | None, typer.Option("--epochs")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimiser steps at most.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Learning rate (default 2e-4).")] = None,
    rank: Annotated[int | None, typer.Option("--rank", help="LoRA rank (default 16).")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="LoRA alpha (default 32).")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", help="Tokens per example at most.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", help="Examples per step = batch x this.")] = None,
    save_steps: Annotated[int | None, typer.Option("--save-steps", help="Checkpoint every N steps.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Training examples at most.")] = None,
    eval_examples: Annotated[int | None, typer.Option("--eval-examples", help="Held-out loss on N examples.")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")] = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="auto (bf16 where the hardware has it), bf16 or fp32.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Go on from the last checkpoint.")] = True,
    gguf: Annotated[bool, typer.Option("--gguf/--no-gguf", help="Merge into a GGUF for the embedded engine.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """LoRA fine-tuning on exported data (extra `train`); serve the result with `longthink generate --model OUT`."""
    from longthink.post_training.train import TrainOptions
    from longthink.post_training.train import train as run_training

    options = TrainOptions.of(
        data=data,
        out=out,
        model=model,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        rank=rank,
        alpha=alpha,
        max_length=max_length,
        batch_size=batch_size,
        grad_accum=grad_accum,
        save_steps=save_steps,
        limit=limit,
        eval_examples=eval_examples,
        seed=seed,
        threads=threads,
        device=device,
        precision=precision,
        resume=resume,
        gguf=gguf,
    )
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's progress bar and log lines: stdout stays the result
        report = run_training(options, log=lambda message: err_console.print(f"[dim]{escape(message)}[/dim]"))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    outputs = report["outputs"]
    console.print(
        f"trained {escape(report['base_model'])} on {report['examples']} {report['format']} examples: "
        f"{report['global_steps']} steps, loss {report['train_loss']:.3f}, {report['seconds_per_step']} s/step, "
        f"{report['wall_s']} s in all"
    )
    console.print(f"  adapter (vLLM): {escape(str(out / outputs['adapter']))}")
    if outputs["gguf"]:
        console.print(f"  merged GGUF (embedded): {escape(str(out / outputs['gguf']))}")
        console.print(f'  serve it: longthink generate "..." --model {escape(str(out))}')


def _tally(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
