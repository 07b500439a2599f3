"""``longthink mcp``: the agent as a Model Context Protocol server (the MCP SDK's ``MCPServer``).

Three tools, over stdio or streamable HTTP:

- ``solve(request, domain=None, strategy=None, budget_tokens=None)``: one whole agent run; its id, status, answer,
  justification, spend and domain.
- ``runs_list(limit=20, status=None)``: the most recent stored runs, newest first.
- ``run_show(run_id)``: one stored run with its plan, its steps and how many candidates and scores it has.

Like the CLI, the server only parses, calls the core API (:class:`longthink.api.Agent`, the store) and renders.
One backend and one store are shared by every call; each ``solve`` builds its own Agent, so its options are its
own. A caller's mistake (an empty request, an unknown strategy, domain or run) is a tool error whose message
names it, never a crash of the server.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal, get_args

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from longthink.agents.options import AgentOptions
from longthink.api import Agent
from longthink.config import Settings
from longthink.errors import LongthinkError
from longthink.llm.base import LLM
from longthink.outcome import Status
from longthink.store import RunDetail, RunQuery, RunRecord, Store

Transport = Literal["stdio", "http"]
MAX_RUNS = 500
STATUSES: tuple[str, ...] = get_args(Status)


@dataclass
class LongthinkTools:
    """What the tools do, apart from any transport (so it is testable in-process): a shared backend (and judge)
    and store; ``budget_tokens`` is the default budget of a ``solve`` that names none."""

    llm: LLM
    store: Store
    settings: Settings
    judge_llm: LLM | None = None
    budget_tokens: int | None = None

    async def solve(
        self,
        request: str,
        domain: str | None = None,
        strategy: str | None = None,
        budget_tokens: int | None = None,
    ) -> dict[str, Any]:
        if not request.strip():
            raise ToolError("request must be a non-empty string: what should the agent solve?")
        budget = budget_tokens if budget_tokens is not None else self.budget_tokens
        try:
            options = AgentOptions(
                strategy=strategy or "auto",
                budget_tokens=budget if budget is not None else AgentOptions().budget_tokens,
                domain=domain,
            )
            agent = Agent(
                llm=self.llm, judge_llm=self.judge_llm, options=options, settings=self.settings, store=self.store
            )
            result = await agent.asolve(request)
        except LongthinkError as exc:  # the caller's or the backend's fault, said in words
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc
        return result.summary()

    def runs_list(self, limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
        if not 1 <= limit <= MAX_RUNS:
            raise ToolError(f"limit must be between 1 and {MAX_RUNS}, not {limit}")
        if status is not None and status not in STATUSES:
            raise ToolError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        return [_run_row(r) for r in self.store.list_runs(RunQuery(status=status, limit=limit))]

    def run_show(self, run_id: str) -> dict[str, Any]:
        if not run_id.strip():
            raise ToolError("run_id must be a non-empty run id (runs_list lists them)")
        detail = self.store.get_run(run_id.strip())
        if detail is None:
            raise ToolError(f"no run {run_id!r} in the store (runs_list lists the stored runs)")
        return _run_detail(detail)


def _run_row(r: RunRecord) -> dict[str, Any]:
    return {"run_id": r.id, "status": r.status, "request": r.request, "answer": r.answer, "created_at": r.created_at}


def _run_detail(d: RunDetail) -> dict[str, Any]:
    chosen = [p for p in d.plans if p.selected] or list(d.plans[-1:])
    return {
        **_run_row(d.run),
        "error": d.run.error,
        "finished_at": d.run.finished_at,
        "spend": dict(d.run.spend or {}),
        "plan": dict(chosen[-1].plan or {}) if chosen else None,
        "steps": [{"id": s.id, "goal": s.goal, "status": s.status, "answer": s.answer} for s in d.steps],
        "counts": {
            "plans": len(d.plans),
            "candidates": len(d.candidates),
            "scores": len(d.scores),
            "tool_calls": len(d.tool_calls),
        },
    }


def build_server(tools: LongthinkTools) -> MCPServer:
    """The MCP server with the three tools (their input schemas come from the signatures below)."""
    server: MCPServer = MCPServer(
        "longthink",
        instructions="A deliberate agent: `solve` plans, searches every step under one budget, verifies and "
        "answers; `runs_list` and `run_show` read the stored runs.",
        log_level="WARNING",
    )

    @server.tool()
    async def solve(
        request: str, domain: str | None = None, strategy: str | None = None, budget_tokens: int | None = None
    ) -> dict[str, Any]:
        """Solve a request with the deliberate agent (plan, search per step, verify, answer). `domain`: a domain
        pack (routing, debugging, business_plan, general; default: detected); `strategy`: a search strategy for
        every step (default: chosen per step); `budget_tokens`: the run's generated-token budget."""
        return await tools.solve(request, domain, strategy, budget_tokens)

    @server.tool()
    def runs_list(limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
        """The most recent stored runs, newest first (run_id, status, request, answer, created_at); `status`
        keeps only runs in that state (done, unverified, partial, failed, running, ...)."""
        return tools.runs_list(limit, status)

    @server.tool()
    def run_show(run_id: str) -> dict[str, Any]:
        """One stored run: its request, status and answer, the selected plan, every step (id, goal, status,
        answer) and how many plans, candidates, scores and tool calls it recorded."""
        return tools.run_show(run_id)

    return server


def serve(tools: LongthinkTools, *, transport: Transport = "stdio", host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve until stopped (end of stdin for stdio, a signal for HTTP: ``http://host:port/mcp``)."""
    server = build_server(tools)
    if transport == "stdio":
        server.run("stdio")
        return
    sys.stderr.write(f"longthink MCP server on http://{host}:{port}/mcp\n")
    server.run("streamable-http", host=host, port=port)
