"""``longthink solve``, ``longthink chat`` and ``longthink runs``: parse, call the Agent API, render events."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from longthink.cli.dialogue import console, run_streamed, wait_loop

runs_app = typer.Typer(help="Stored runs: list, show, export, resume.", no_args_is_help=True)
JudgeModelOpt = Annotated[
    str | None,
    typer.Option("--judge-model", help="A separate judge / reward model (name, GGUF path or served model)."),
]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="How numeric steps are answered: program (the model writes Python, the sandbox runs it), text, "
        "or auto (program on a coder model; the default).",
    ),
]
VerifierOpt = Annotated[
    Path | None,
    typer.Option(
        "--verifier",
        help="Score candidates with a learned verifier (an artifact of `longthink rewards train`).",
        exists=True,
        dir_okay=False,
    ),
]


def _agent(
    strategy: str | None,
    budget: int | None,
    model: str | None,
    endpoint: list[str] | None,
    threads: int | None,
    approve: bool = False,
    domain: str | None = None,
    judge_model: str | None = None,
    mode: str | None = None,
    verifier: Path | None = None,
    ask_missing: bool = False,
) -> Any:
    from longthink.agents.options import AgentOptions
    from longthink.api import Agent
    from longthink.config import load_settings

    settings = load_settings(model=model, judge_model=judge_model, endpoints=endpoint or None, n_threads=threads)
    options = AgentOptions(
        strategy=strategy or "auto",
        budget_tokens=budget if budget is not None else AgentOptions().budget_tokens,
        approve_plan=approve,
        ask_missing=ask_missing,
        domain=domain,
        answer_mode=mode or "auto",
    )
    scorer = None
    if verifier is not None:
        from longthink.rewards.learned import LearnedVerifier

        scorer = LearnedVerifier(verifier)
    return Agent(settings=settings, options=options, scorer=scorer)


PROJECT_SUFFIXES = (".py", ".ini", ".toml", ".cfg")
"""What a project folder (``--repo``, or ``--file`` naming a folder) contributes: its Python files and the
configuration of its tests (``pytest.ini``, ``pyproject.toml``, ``setup.cfg``, ``tox.ini``)."""
SKIPPED_DIRS = ("__pycache__", "node_modules", "build", "dist", "site-packages")
MAX_PROJECT_FILES = 300
MAX_PROJECT_BYTES = 2_000_000


def _folder_files(root: Path, hint: str) -> dict[str, str]:
    """The project files under ``root`` by their path relative to it (``/`` separated), skipping hidden folders
    (``.git``, ``.venv``), virtual environments and build output; a clear error past the size limits."""
    found: dict[str, str] = {}
    size = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        folders = rel.parts[:-1]
        if any(p.startswith(".") or p in SKIPPED_DIRS or p.endswith(".egg-info") for p in folders):
            continue
        if any((root.joinpath(*folders[: i + 1]) / "pyvenv.cfg").exists() for i in range(len(folders))):
            continue
        if not path.is_file() or path.suffix not in PROJECT_SUFFIXES or rel.name.startswith("."):
            continue
        size += path.stat().st_size
        if len(found) >= MAX_PROJECT_FILES or size > MAX_PROJECT_BYTES:
            raise typer.BadParameter(f"{root} holds more than {MAX_PROJECT_FILES} files or "
                                     f"{MAX_PROJECT_BYTES // 1_000_000} MB of code: point at a smaller folder",
                                     param_hint=hint)  # fmt: skip
        found[rel.as_posix()] = _read(path, hint)
    if not found:
        raise typer.BadParameter(f"{root} holds no Python files", param_hint=hint)
    return found


def _read(path: Path, hint: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{path} is not a UTF-8 text file", param_hint=hint) from None


def _with_files(request: str, files: list[Path], repo: Path | None = None) -> str:
    """The request with each ``--file`` attached (see :func:`longthink.domains.pipeline.attach_files`): a file by
    its name, a folder's files (and ``repo``'s) by their paths inside it."""
    if not files and repo is None:
        return request
    from longthink.domains.pipeline import attach_files

    contents: dict[str, str] = {}
    for path in files:
        new = _folder_files(path, "--file") if path.is_dir() else {path.name: _read(path, "--file")}
        for name, text in new.items():
            if name in contents and contents[name] != text:
                raise typer.BadParameter(f"two different files named {name}", param_hint="--file")
            contents[name] = text
    if repo is not None:
        contents.update(_folder_files(repo, "--repo"))
    return attach_files(request, contents)


def _print_result(result: Any, *, as_json: bool, elapsed: float) -> None:
    if as_json:
        payload = {
            "run_id": result.run_id,
            "status": result.status,
            "reason": result.reason,
            "answer": result.answer,
            "justification": result.justification,
            "plan": result.plan.model_dump() if result.plan else None,
            "steps": {sid: o.model_dump(mode="json") for sid, o in result.steps.items()},
            "spend": result.spend.as_dict(),
            "seconds": round(elapsed, 2),
            "domain": result.domain,
            "artifacts": result.artifacts,
        }
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    console.rule("answer")
    console.print(escape(str(result.answer)) if result.answer is not None else "[red]no answer[/red]")
    console.print(f"[dim]{escape(result.justification)}[/dim]")
    for path in result.artifacts:
        console.print(f"[dim]wrote {escape(path)}[/dim]")
    spent = result.spend.completion_tokens
    console.print(f"[dim]run {result.run_id} · {result.status} · {spent:g} tokens · {elapsed:.1f}s[/dim]")


def register(app: typer.Typer) -> None:
    @app.command()
    def solve(
        request: Annotated[str, typer.Argument(help="What to solve.")],
        strategy: Annotated[str | None, typer.Option("--strategy", "-s", help="Strategy for every step.")] = None,
        budget: Annotated[int | None, typer.Option("--budget", help="Generated-token budget of the run.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m")] = None,
        judge_model: JudgeModelOpt = None,
        mode: ModeOpt = None,
        verifier: VerifierOpt = None,
        endpoint: Annotated[list[str] | None, typer.Option("--endpoint", "-e")] = None,
        threads: Annotated[int | None, typer.Option("--threads")] = None,
        approve: Annotated[bool, typer.Option("--approve", help="Ask before executing the plan.")] = False,
        yes: Annotated[
            bool,
            typer.Option(
                "--yes",
                "-y",
                help="Do not ask for facts the request lacks (a business plan's revenue, profit): take each "
                "question's stated default, labelled as an assumption in the result.",
            ),
        ] = False,
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="Print the result as JSON. Never waits on stdin for missing facts: their defaults are taken, "
                "as with --yes (a plan to --approve is still asked for, on stderr).",
            ),
        ] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every candidate.")] = False,
        domain: Annotated[
            str | None,
            typer.Option(
                "--domain",
                "-d",
                help="A domain pack (routing, debugging, business_plan), 'general' for "
                "none, or 'auto' (default: detected from the request).",
            ),
        ] = None,
        files: Annotated[
            list[Path] | None,
            typer.Option(
                "--file",
                "-f",
                help="Attach a file (code, tests, a CVRPLIB/Solomon instance, a CSV) or a folder's Python files; "
                "repeat for several.",
                exists=True,
                readable=True,
            ),
        ] = None,
        repo: Annotated[
            Path | None,
            typer.Option(
                "--repo",
                help="A project folder: its Python files, tests and pytest configuration are attached by their "
                "paths in it (the debugging pack runs its tests with pytest; the diff applies with git apply there).",
                exists=True,
                file_okay=False,
                readable=True,
            ),
        ] = None,
    ) -> None:
        """Plan the request, search every step, verify, and print the plan and the answer. Facts the request lacks
        and the plan needs (a business plan's baseline) are asked for first, unless --yes or --json."""
        request = _with_files(request, files or [], repo)
        agent = _agent(strategy, budget, model, endpoint, threads, approve, domain, judge_model, mode, verifier,
                       ask_missing=not (yes or as_json))  # fmt: skip
        start = time.perf_counter()
        try:
            result = run_streamed(agent, agent.astream(request), quiet=as_json, verbose=verbose)
            result = wait_loop(agent, result, quiet=as_json, yes=yes or as_json)
        finally:
            agent.close()
        _print_result(result, as_json=as_json, elapsed=time.perf_counter() - start)

    @app.command()
    def chat(
        strategy: Annotated[str | None, typer.Option("--strategy", "-s")] = None,
        budget: Annotated[int | None, typer.Option("--budget")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m")] = None,
        judge_model: JudgeModelOpt = None,
        mode: ModeOpt = None,
        verifier: VerifierOpt = None,
        endpoint: Annotated[list[str] | None, typer.Option("--endpoint", "-e")] = None,
        threads: Annotated[int | None, typer.Option("--threads")] = None,
        domain: Annotated[
            str | None, typer.Option("--domain", "-d", help="A domain pack, 'general' or 'auto'.")
        ] = None,
    ) -> None:
        """A chat session: plans, per-step candidates and scores, a budget bar; /help lists commands."""
        from longthink.cli.chat import ChatSession

        agent = _agent(strategy, budget, model, endpoint, threads, domain=domain, judge_model=judge_model, mode=mode,
                       verifier=verifier, ask_missing=True)  # fmt: skip
        ChatSession(agent, console).loop()

    app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The most recent runs."""
    from rich.table import Table

    from longthink.store import RunQuery, open_store

    store = open_store()
    try:
        runs = store.list_runs(RunQuery(limit=limit))
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps([_run_row(r) for r in runs], indent=2, default=str) + "\n")
        return
    table = Table(title="runs")
    for col in ("run", "status", "request", "answer"):
        table.add_column(col, overflow="fold")
    for r in runs:
        row = _run_row(r)
        table.add_row(row["run_id"], str(row["status"]), str(row["request"])[:60], str(row["answer"])[:40])
    console.print(table)


def _run_row(r: Any) -> dict[str, Any]:
    return {"run_id": r.id, **{k: getattr(r, k, None) for k in ("status", "request", "answer", "created_at")}}


@runs_app.command("show")
def runs_show(run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One run with its plan, steps, candidates and scores."""
    from dataclasses import asdict, is_dataclass

    from longthink.errors import ConfigError
    from longthink.store import open_store

    store = open_store()
    try:
        detail = store.get_run(run_id)
    finally:
        store.close()
    if detail is None:
        raise ConfigError(f"no run {run_id!r} in the store", field="run_id")
    data = asdict(detail) if is_dataclass(detail) else dict(detail)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    run = data.get("run", {})
    console.print(
        f"[bold]run {escape(run_id)}[/bold] {escape(str(run.get('status')))}: {escape(str(run.get('request')))}"
    )
    for step in data.get("steps", []):
        console.print(
            f"  step {escape(str(step.get('id')))} {escape(str(step.get('goal') or ''))} -> "
            f"{escape(str(step.get('answer')))}"
        )
    console.print(f"  {len(data.get('candidates', []))} candidates, {len(data.get('scores', []))} scores")
    console.print(f"  answer: {escape(str(run.get('answer')))}")


@runs_app.command("export")
def runs_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    run_id: Annotated[list[str] | None, typer.Option("--run", help="Runs to export (default: all).")] = None,
) -> None:
    """Export runs as JSONL reward-model training data (prompt, candidates, scores, chosen)."""
    from longthink.store import open_store

    store = open_store()
    try:
        with out.open("w") as f:
            n = store.export(f, run_ids=run_id or None)
    finally:
        store.close()
    console.print(f"wrote {n} lines to {out}")


@runs_app.command("resume")
def runs_resume(
    run_id: str,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (missing facts: as --yes).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Answer a run's questions with their defaults (as assumptions).")
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
) -> None:
    """Finish a run that was interrupted (killed, crashed, waiting for answers to its questions or for plan
    approval)."""
    from longthink.api import WAITING
    from longthink.llm.base import run_sync

    agent = _agent(None, None, None, None, threads)
    start = time.perf_counter()
    try:
        result = run_sync(agent.astatus(run_id))
        if result.status not in WAITING:
            result = run_sync(agent.aresume(run_id))
        result = wait_loop(agent, result, quiet=as_json, yes=yes or as_json)
    finally:
        agent.close()
    _print_result(result, as_json=as_json, elapsed=time.perf_counter() - start)
