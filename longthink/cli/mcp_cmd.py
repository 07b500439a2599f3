"""``longthink mcp``: parse the options, build the shared backend and store, hand them to the MCP server.

The MCP SDK is imported only when the command runs, so ``import longthink.cli`` works without the ``server``
extra; without it, the command says which extra to install (exit code 2, like every caller's mistake).
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("mcp")
    def mcp_command(
        transport: Annotated[
            str, typer.Option("--transport", help="stdio (a client launches the server) or http (streamable HTTP).")
        ] = "stdio",
        host: Annotated[str, typer.Option("--host", help="Address to listen on (http).")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on (http); the endpoint is /mcp.")] = 8765,
        llm: Annotated[
            str | None,
            typer.Option("--llm", help="A backend factory 'module:callable' instead of the configured model."),
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", "-m", help="Model name, GGUF path or served model.")
        ] = None,
        threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for the embedded engine.")] = None,
        budget: Annotated[
            int | None, typer.Option("--budget", help="Generated-token budget of a run that names none.")
        ] = None,
    ) -> None:
        """Serve the agent over the Model Context Protocol: tools solve, runs_list and run_show. Runs are stored
        in the configured database (LONGTHINK_DB_URL)."""
        if transport not in ("stdio", "http"):
            raise typer.BadParameter(f"must be stdio or http, not {transport!r}", param_hint="--transport")
        if not 0 < port < 65536:
            raise typer.BadParameter(f"must be in 1..65535, not {port}", param_hint="--port")
        if budget is not None and budget < 1:
            raise typer.BadParameter(f"must be >= 1, not {budget}", param_hint="--budget")
        try:
            from longthink.service.mcp_server import LongthinkTools, serve
        except ImportError as exc:  # said in plain text: the extra's name has brackets, which rich would eat
            typer.echo(
                f"error: longthink mcp needs the server extra (pip install 'longthink[server]'): {exc}", err=True
            )
            raise typer.Exit(2) from None
        from longthink.config import load_settings
        from longthink.llm.registry import build_judge_llm, build_llm, llm_from_factory
        from longthink.store import open_store

        settings = load_settings(model=model, n_threads=threads)
        backend = llm_from_factory(llm) if llm else build_llm(settings)
        judge = build_judge_llm(settings)  # as an Agent would build it: none unless a judge model is set
        store = open_store(settings.resolved_db_url)
        tools = LongthinkTools(llm=backend, store=store, settings=settings, judge_llm=judge, budget_tokens=budget)
        try:
            serve(tools, transport="http" if transport == "http" else "stdio", host=host, port=port)
        finally:
            if judge is not None:
                judge.close()
            backend.close()
            store.close()
