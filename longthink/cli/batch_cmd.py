"""``longthink batch TASKS.jsonl``: parse, call :func:`longthink.batch.run_batch`, show its progress and summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from longthink.cli.dialogue import console


def register(app: typer.Typer) -> None:
    @app.command()
    def batch(
        tasks_file: Annotated[
            Path, typer.Argument(help="JSONL: one task a line, {'request': ..., 'id', 'domain', 'strategy', 'budget'}.")
        ],
        db: Annotated[
            str | None, typer.Option("--db", help="The store every worker writes (default: LONGTHINK_DB_URL).")
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option("--workers", "-w", min=1, help="Processes (or Ray tasks in flight) without endpoints."),
        ] = None,
        use_ray: Annotated[bool, typer.Option("--ray", help="Distribute the tasks over Ray.")] = False,
        ray_address: Annotated[
            str | None, typer.Option("--ray-address", help="A running Ray cluster (implies --ray; default: local).")
        ] = None,
        per_endpoint: Annotated[
            int, typer.Option("--per-endpoint", min=1, help="Tasks in flight per model endpoint.")
        ] = 4,
        retries: Annotated[int, typer.Option("--retries", min=0, help="Runs again of a task whose worker died.")] = 3,
        llm: Annotated[
            str | None, typer.Option("--llm", help="A backend factory 'module:callable' instead of the model.")
        ] = None,
        model: Annotated[str | None, typer.Option("--model", "-m")] = None,
        endpoint: Annotated[
            list[str] | None, typer.Option("--endpoint", "-e", help="OpenAI-compatible base URL (repeat: replicas).")
        ] = None,
        threads: Annotated[int | None, typer.Option("--threads")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON (no progress bar).")] = False,
    ) -> None:
        """Run every request of a JSONL file, results in the store. Rerunning skips the finished tasks and resumes
        the interrupted ones. Exits 1 when a task failed."""
        from longthink.batch import BatchOptions, WorkerSpec, read_tasks, run_batch
        from longthink.config import load_settings

        tasks = read_tasks(tasks_file)  # every bad line named before anything runs
        settings = load_settings(model=model, endpoints=endpoint or None, n_threads=threads, db_url=db)
        options = BatchOptions(
            workers=workers, ray=use_ray or ray_address is not None, ray_address=ray_address,
            per_endpoint=per_endpoint, max_retries=retries,
        )  # fmt: skip
        spec = WorkerSpec(settings=settings, llm=llm)
        if as_json:
            summary = run_batch(spec, tasks, options)
            sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
        else:
            summary = _with_progress(spec, tasks, options)
            _print_summary(summary)
        if summary.failed:
            raise typer.Exit(1)


def _with_progress(spec: Any, tasks: list[Any], options: Any) -> Any:
    """The batch with a progress bar on stderr: done, failed and skipped so far."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from longthink.batch import run_batch

    counts = {"done": 0, "failed": 0, "skipped": 0}
    where = "Ray" if options.ray else "a local pool"
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=False,
    ) as progress:  # fmt: skip
        bar = progress.add_task(f"batch on {where}", total=len(tasks))

        def advance(result: Any) -> None:
            counts[result.state] += 1
            shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
            progress.update(bar, advance=1, description=f"batch on {where}: {shown}")

        return run_batch(spec, tasks, options, on_result=advance)


def _print_summary(summary: Any) -> None:
    for r in summary.results:
        if r.state == "failed":
            console.print(f"[red]failed[/red] {escape(r.id)} (run {r.run_id}): {escape(str(r.error))}")
    console.print(
        f"{len(summary.results)} tasks: {summary.done} done, {summary.failed} failed, {summary.skipped} skipped "
        f"in {summary.seconds:.1f}s ({summary.runner}, {summary.in_flight} in flight)"
    )
