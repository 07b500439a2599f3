"""A run of the agent with the scripted backend, for the kill-and-resume test (run as a child process).

python agent_job.py DB_URL CHECKPOINTS RUN_ID [--slow-step s2]
"""

from __future__ import annotations

import json
import sys
import time

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.llm.types import SamplingParams
from longthink.store import open_store
from longthink.testing import FunctionLLM

PLAN = {
    "steps": [
        {"id": "s1", "goal": "Count the loaves sold per day", "answer_kind": "number"},
        {"id": "s2", "goal": "Find the price of one loaf", "answer_kind": "number", "depends_on": ["s1"]},
        {"id": "s3", "goal": "Multiply loaves by price", "depends_on": ["s2"], "answer_kind": "number"},
    ]
}
SLOW = sys.argv[4] if len(sys.argv) > 4 else ""


def reply(prompt: str, params: SamplingParams, index: int) -> str:
    if "careful planner" in prompt:
        return json.dumps(PLAN)
    if "combine the results" in prompt:
        return "Answer: 360"
    if "Your step: Count" in prompt:
        return "Answer: 120"
    if "Your step: Find the price" in prompt:
        if SLOW == "s2":
            print("SLOW STEP STARTED", flush=True)
            time.sleep(60)
        return "Answer: 3"
    return "120 * 3 = 360. Answer: 360"


def agent(db_url: str, checkpoints: str) -> Agent:
    return Agent(llm=FunctionLLM(reply), options=AgentOptions(), store=open_store(db_url), checkpoints=checkpoints)


if __name__ == "__main__":
    db, ckpt, run_id = sys.argv[1:4]
    result = agent(db, ckpt).solve("What is the daily revenue of a bakery selling 120 loaves at $3?", run_id=run_id)
    print("DONE", result.status, result.answer, flush=True)
