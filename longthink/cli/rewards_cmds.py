"""``longthink rewards``: train a learned verifier from stored runs, and show a trained one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

rewards_app = typer.Typer(help="Learned verifiers: train one from stored runs, show one.", no_args_is_help=True)
console = Console(highlight=False)

DEFAULT_EMBED_MODEL = "qwen2.5-coder-0.5b-instruct"


def default_artifact_path() -> Path:
    """Where ``rewards train`` writes by default: ``<user data dir>/verifiers/verifier.json``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("longthink")) / "verifiers" / "verifier.json"


def register(app: typer.Typer) -> None:
    app.add_typer(rewards_app, name="rewards")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _summary(artifact: Any, path: Path | None) -> dict[str, Any]:
    return {
        "path": str(path) if path else None,
        "features": len(artifact.feature_names),
        "embedder_model": artifact.embedder_model,
        "trained_on": artifact.trained_on.model_dump(mode="json"),
        "metrics": artifact.metrics.model_dump(mode="json"),
        "settings": artifact.settings,
        "created_at": artifact.created_at,
        "longthink_version": artifact.longthink_version,
    }


def _print(artifact: Any, path: Path | None, title: str) -> None:
    t, m = artifact.trained_on, artifact.metrics
    console.print(f"[bold]{escape(title)}[/bold]{f' {escape(str(path))}' if path else ''}")
    console.print(
        f"  trained on {t.examples} examples in {t.groups} groups from {t.runs} run(s): {t.positives} correct "
        f"(labels from {escape(', '.join(t.label_source))})"
    )
    console.print(
        f"  strategies: {escape(', '.join(t.sources) or '-')}; models: {escape(', '.join(t.policy_models) or '-')}"
    )
    emb = f", embeddings of {escape(artifact.embedder_model)}" if artifact.embedder_model else ""
    console.print(f"  {len(artifact.feature_names)} features{emb}; rows sha256 {t.rows_sha256[:16]}")
    console.print(
        f"  held out: {m.heldout_examples} examples in {m.heldout_groups} groups: AUROC {_fmt(m.heldout_auroc)}, "
        f"Brier {_fmt(m.heldout_brier)}, ECE {_fmt(m.heldout_ece)} (train AUROC {_fmt(m.train_auroc)})"
    )
    console.print(
        f"  [dim]created {escape(artifact.created_at)} by longthink {escape(artifact.longthink_version)}[/dim]"
    )


@rewards_app.command("train")
def rewards_train(
    db: Annotated[str | None, typer.Option("--db", help="Store URL (default: the configured run store).")] = None,
    run_id: Annotated[list[str] | None, typer.Option("--run", help="Runs to train on (default: all).")] = None,
    label_scorer: Annotated[
        list[str] | None,
        typer.Option(
            "--label-scorer", help="Scorer whose value >= 1 means correct (default: correct, reference, tests)."
        ),
    ] = None,
    embed: Annotated[bool, typer.Option("--embed/--no-embed", help="Add embedding features (loads a model).")] = False,
    embed_model: Annotated[str, typer.Option("--embed-model", help="Model for --embed.")] = DEFAULT_EMBED_MODEL,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads of the embedder.")] = None,
    heldout: Annotated[float, typer.Option("--heldout", help="Share of problems held out for the metrics.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Artifact to write.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Train a learned outcome verifier from the stored, labelled candidates of past runs."""
    from longthink.rewards.train import LABEL_SCORERS, labelled_from_store, train_verifier
    from longthink.store import open_store

    store = open_store(db)
    try:
        groups = labelled_from_store(store, run_id or None, tuple(label_scorer or LABEL_SCORERS))
    finally:
        store.close()
    embedder = None
    if embed:
        from longthink.llm.embeddings import LlamaCppEmbedder

        with console.status(f"loading {embed_model}", spinner="dots"):
            embedder = LlamaCppEmbedder(embed_model, n_threads=threads)
    try:
        artifact = train_verifier(groups, embedder=embedder, heldout=heldout, seed=seed)
    finally:
        if embedder is not None:
            embedder.close()
    path = artifact.save(out or default_artifact_path())
    if as_json:
        sys.stdout.write(json.dumps(_summary(artifact, path), indent=2) + "\n")
        return
    _print(artifact, path, "wrote")


@rewards_app.command("show")
def rewards_show(
    path: Annotated[Path, typer.Argument(help="A verifier artifact (JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A trained verifier's provenance and held-out metrics."""
    from longthink.rewards.learned import VerifierArtifact

    artifact = VerifierArtifact.load(path)
    if as_json:
        sys.stdout.write(json.dumps(_summary(artifact, path), indent=2) + "\n")
        return
    _print(artifact, path, "verifier")
