"""The ``longthink`` command. It only parses arguments, calls the core API and renders results."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longthink.errors import LongthinkError

app = typer.Typer(
    name="longthink",
    help="Deliberate AI agents: plans, test-time search and rewards on your own models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model name, GGUF path, `longthink train` output folder or served model."),
]
EndpointOpt = Annotated[
    list[str] | None,
    typer.Option("--endpoint", "-e", help="OpenAI-compatible base URL (repeat for replicas)."),
]
BackendOpt = Annotated[str | None, typer.Option("--backend", "-b", help="auto, llama_cpp, openai_compat, ...")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for the embedded engine.")]


def _settings(model: str | None, endpoint: list[str] | None, backend: str | None, threads: int | None) -> Any:
    from longthink.config import load_settings

    return load_settings(model=model, endpoints=endpoint or None, backend=backend, n_threads=threads)


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to ask the model.")],
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 1,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Tokens per sample at most.")] = 256,
    temperature: Annotated[float, typer.Option("--temperature", "-t")] = 0.7,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system message.")] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="text: plain samples; program: the model writes a Python program, the sandbox runs it and "
            "its printed value is the answer (best for arithmetic on a coder model).",
        ),
    ] = "text",
    answer: Annotated[
        str | None,
        typer.Option(
            "--answer",
            help="Extract answers of this kind and vote (number, choice, expression, json, code, text); "
            "default: number in program mode, none in text mode.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: ModelOpt = None,
    endpoint: EndpointOpt = None,
    backend: BackendOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Sample N completions of a chat prompt from the configured model (the embedded one by default); with
    --mode program or --answer, every sample's answer is extracted (executed) and the answers are voted."""
    from longthink.answers import EXTRACTORS
    from longthink.llm import SamplingParams
    from longthink.llm.registry import build_llm

    if mode not in ("text", "program"):
        raise typer.BadParameter(f"--mode must be text or program, not {mode!r}")
    kind = answer or ("number" if mode == "program" else None)
    if kind is not None and kind not in EXTRACTORS:
        raise typer.BadParameter(f"--answer must be one of {', '.join(EXTRACTORS)}, not {kind!r}")
    SamplingParams(n=n, max_tokens=max_tokens, temperature=temperature, seed=seed)  # validated before loading
    settings = _settings(model, endpoint, backend, threads)
    start = time.perf_counter()
    with console.status(f"loading {settings.model} ({settings.resolved_backend})", spinner="dots"):
        llm = build_llm(settings)
    load_s = time.perf_counter() - start
    try:
        start = time.perf_counter()
        with console.status(f"sampling {n} completion(s)", spinner="dots"):
            samples = _sample(llm, prompt, n, max_tokens, temperature, seed, system, mode, kind)
        gen_s = time.perf_counter() - start
    finally:
        llm.close()
    tokens = sum(s.completion_tokens for s in samples)
    votes: dict[str, int] = {}
    for s in samples:
        if s.answer is not None:
            votes[s.answer] = votes.get(s.answer, 0) + 1
    voted = max(votes, key=lambda a: votes[a]) if votes else None
    if as_json:
        payload: dict[str, Any] = {
            "model": llm.model,
            "backend": settings.resolved_backend,
            "mode": mode,
            "load_s": round(load_s, 3),
            "generate_s": round(gen_s, 3),
            "completions": [
                {
                    "index": s.index,
                    "text": s.text,
                    "finish_reason": s.finish_reason,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    **({"answer": s.answer, "error": s.parse_error} if kind is not None else {}),
                }
                for s in samples
            ],
        }
        if kind is not None:
            payload["votes"] = votes
            payload["answer"] = voted
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    for s in samples:
        if n > 1:
            console.rule(f"sample {s.index}", style="dim")
        console.print(s.text, markup=False, highlight=False)
        if kind is not None:
            shown = f"[bold]{s.answer}[/bold]" if s.answer is not None else f"[red]no answer: {s.parse_error}[/red]"
            console.print(f"[dim]{'ran: ' if mode == 'program' else ''}answer[/dim] {shown}")
    if kind is not None and n > 1:
        tally = ", ".join(f"{a} x{c}" for a, c in sorted(votes.items(), key=lambda kv: -kv[1]))
        console.print(f"voted answer: [bold]{voted}[/bold] ({tally or 'no answers'})")
    console.print(
        f"[dim]{llm.model} via {settings.resolved_backend}: {tokens} tokens in {gen_s:.1f}s "
        f"({tokens / max(gen_s, 1e-9):.1f} tok/s), loaded in {load_s:.1f}s[/dim]"
    )


def _sample(
    llm: Any,
    prompt: str,
    n: int,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    system: str | None,
    mode: str,
    kind: str | None,
) -> list[Any]:
    """The samples as candidates (answers extracted, programs executed in the sandbox) through SearchContext,
    the one place that generates."""
    from longthink.answers import AnswerKind
    from longthink.llm.base import run_sync
    from longthink.program import AnswerMode
    from longthink.search.context import SearchContext
    from longthink.search.types import Problem

    problem = Problem.from_text(
        "cli",
        prompt,
        answer_kind=cast("AnswerKind", kind or "text"),
        system=system,
        mode=cast("AnswerMode", mode),
        max_tokens=max_tokens,
    )
    ctx = SearchContext(llm=llm, temperature=temperature, seed=seed, logprobs=False)

    async def draw() -> list[Any]:
        [cands] = await ctx.sample(problem, n, strategy="generate")
        return list(cands)

    return run_sync(draw())


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the known models, where they are, and whether they are ready."""
    from longthink.config import load_settings
    from longthink.models import KNOWN_MODELS, ModelStore

    settings = load_settings()
    store = ModelStore(settings.cache_dir)
    rows = []
    for spec in KNOWN_MODELS.values():
        st = store.status(spec)
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "license": spec.license,
                "size_mb": round(spec.size / 1e6, 1),
                "ready": st.ready,
                "installed": st.installed,
                "path": str(st.path) if st.path else None,
                "detail": st.detail,
                "configured": spec.name == settings.model,
            }
        )
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="Known models (any other GGUF path, HF directory or endpoint also works)")
    table.add_column("model", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("where", overflow="fold")
    for r in rows:
        mark = "[green]ready[/green]" if r["ready"] else ("installed" if r["installed"] else "[red]missing[/red]")
        name = f"{r['name']}\n[bold](configured)[/bold]" if r["configured"] else str(r["name"])
        where = f"{r['path'] or '-'}\n[dim]{r['detail']}[/dim]"
        table.add_row(name, f"{r['size_mb']} MB", mark, where)
    console.print(table)
    if settings.endpoints:
        console.print(f"Endpoints configured: {', '.join(settings.endpoints)} (model {settings.model})")


@app.command()
def config() -> None:
    """Show the effective settings (after file and environment) and where the file is read from."""
    from longthink.config import config_file, load_settings

    settings = load_settings()
    table = Table(title=f"Settings (file: {config_file()})")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for name, value in settings.model_dump().items():
        shown = "***" if name == "api_key" and value is not None else value
        table.add_row(name, str(shown))
    table.add_row("[dim]resolved backend[/dim]", settings.resolved_backend)
    console.print(table)


@app.command()
def domains() -> None:
    """List the domain packs: what each handles, its tools, and whether it runs its own plan."""
    from longthink.domains.registry import REGISTRY

    table = Table(title="Domain packs (--domain NAME; auto detects one from the request)")
    for col in ("name", "handles", "tools", "own plan"):
        table.add_column(col, overflow="fold")
    for name in REGISTRY.names():
        pack = REGISTRY.get(name)
        tools = ", ".join(t.name for t in pack.tools) or "-"
        table.add_row(name, pack.description, tools, "yes" if pack.pipeline is not None else "no")
    console.print(table)


@app.command()
def version() -> None:
    """Print the version."""
    from longthink import __version__

    console.print(__version__)


from longthink.cli.agent_cmds import register as _register_agent_commands  # noqa: E402

_register_agent_commands(app)
from longthink.cli.mcp_cmd import register as _register_mcp_command  # noqa: E402

_register_mcp_command(app)
from longthink.cli.rewards_cmds import register as _register_rewards_commands  # noqa: E402

_register_rewards_commands(app)
from longthink.cli.service_cmds import register as _register_service_commands  # noqa: E402

_register_service_commands(app)
from longthink.cli.batch_cmd import register as _register_batch_command  # noqa: E402

_register_batch_command(app)
from longthink.cli.post_training_cmds import register as _register_post_training_commands  # noqa: E402

_register_post_training_commands(app)


def main() -> None:
    """Entry point: errors that are the caller's or a backend's become one clear line and exit code 2."""
    try:
        app()
    except LongthinkError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
