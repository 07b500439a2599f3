"""The longthink agent as one node of a user's own LangGraph graph (``longthink.agents.agent_node``)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from longthink import Agent, AgentOptions
from longthink.agents import agent_node
from longthink.errors import ConfigError
from longthink.testing import arithmetic_llm

ROOT = Path(__file__).resolve().parent.parent


class Ticket(TypedDict, total=False):
    """The user's own state: nothing in it is longthink's."""

    customer: str
    question: str
    answer: str | None
    run: dict[str, Any]
    report: str


def prepare(state: Ticket) -> dict[str, Any]:
    return {"question": f"What is {state['customer'].count('7') * 17} + 25?"}


def report(state: Ticket) -> dict[str, Any]:
    return {"report": f"{state['customer']}: {state['answer']} (run {state['run']['run_id']})"}


def _graph(agent: Agent, *, checkpointer: Any = None) -> Any:
    g = StateGraph(Ticket)
    g.add_node("prepare", prepare)
    g.add_node("longthink", agent_node(agent, request_key="question", answer_key="answer", result_key="run"))
    g.add_node("report", report)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "longthink")
    g.add_edge("longthink", "report")
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer)


def _agent() -> Agent:
    return Agent(llm=arithmetic_llm(), store=None, checkpoints=None)


async def test_agent_node_answers_inside_a_user_graph() -> None:
    final = await _graph(_agent()).ainvoke({"customer": "ACME 7"})
    assert final["question"] == "What is 17 + 25?"
    assert final["answer"] == "42"
    run = final["run"]
    assert run["status"] == "done" and run["answer"] == "42" and run["spend"]["completion_tokens"] > 0
    assert final["report"] == f"ACME 7: 42 (run {run['run_id']})"


async def test_agent_node_under_a_checkpointed_user_graph() -> None:
    """The user's graph has its own checkpointer and thread: the agent's run keeps its own (it is not nested in
    the user's checkpoint namespace), and two threads of the user's graph get two runs."""
    graph = _graph(_agent(), checkpointer=InMemorySaver())
    first = await graph.ainvoke({"customer": "ACME 7"}, {"configurable": {"thread_id": "t1"}})
    second = await graph.ainvoke({"customer": "ACME 7"}, {"configurable": {"thread_id": "t2"}})
    assert first["answer"] == second["answer"] == "42"
    assert first["run"]["run_id"] != second["run"]["run_id"]
    saved = await graph.aget_state({"configurable": {"thread_id": "t1"}})
    assert saved.values["answer"] == "42" and not saved.next


async def test_a_run_waiting_for_plan_approval_is_resumed_by_its_id() -> None:
    agent = Agent(llm=arithmetic_llm(), options=AgentOptions(approve_plan=True), store=None, checkpoints=None)
    final = await _graph(agent).ainvoke({"customer": "ACME 7"})
    assert final["answer"] is None and final["run"]["status"] == "awaiting_approval"
    resumed = await agent.aresume(final["run"]["run_id"], {"action": "approve"})
    assert resumed.status == "done" and resumed.answer == "42"


async def test_default_keys_write_the_answer_only() -> None:
    class Plain(TypedDict, total=False):
        request: str
        answer: str | None

    plain = StateGraph(Plain)
    plain.add_node("longthink", agent_node(_agent()))
    plain.add_edge(START, "longthink")
    plain.add_edge("longthink", END)
    final = await plain.compile().ainvoke({"request": "What is 17 + 25?"})
    assert final == {"request": "What is 17 + 25?", "answer": "42"}


@pytest.mark.parametrize("state", [{}, {"question": ""}, {"question": "   "}, {"question": None}, {"question": 42}])
async def test_missing_or_empty_request_is_a_config_error(state: dict[str, Any]) -> None:
    node = agent_node(_agent(), request_key="question")
    with pytest.raises(ConfigError, match=r"state\['question'\]") as info:
        await node(state)
    assert info.value.field == "question"


async def test_missing_request_fails_the_user_graph_clearly() -> None:
    g = StateGraph(Ticket)
    g.add_node("longthink", agent_node(_agent(), request_key="question"))
    g.add_edge(START, "longthink")
    g.add_edge("longthink", END)
    with pytest.raises(ConfigError, match=r"state\['question'\], which is missing"):
        await g.compile().ainvoke({"customer": "ACME"})


@pytest.mark.parametrize("kwargs", [{"request_key": ""}, {"answer_key": ""}, {"result_key": ""}])
def test_bad_keys_fail_when_the_node_is_built(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="must be a non-empty string"):
        agent_node(_agent(), **kwargs)


def test_readme_subgraph_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example runs as shown. Its block is fenced ```py, not ```python: tests/test_readme.py
    picks its blocks by what they contain ("Agent(" selects the slow agent example) and would take this one too."""
    blocks = re.findall(r"```py\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    [code] = [b for b in blocks if "agent_node" in b]
    module = types.ModuleType("readme_subgraph")  # a real module: LangGraph resolves the state's annotations in it
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, "README.md", "exec"), module.__dict__)
    summary, answer = capsys.readouterr().out.strip().splitlines()
    assert answer == "42"
    assert re.fullmatch(r"What is 17 \+ 25\? 42 \(done, run [0-9a-f]{16}\)", summary), summary
