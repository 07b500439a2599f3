"""The chat CLI driven in a pseudo-terminal (pexpect) through a full exchange on the embedded model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

BIN = Path(sys.executable).parent / "longthink"
pytestmark = pytest.mark.real_model


def test_chat_session_full_exchange(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LONGTHINK_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}",
        "LONGTHINK_CONFIG": str(tmp_path / "none.toml"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "120",
        "NO_COLOR": "1",
    }
    child = pexpect.spawn(
        str(BIN), ["chat", "--model", "smollm2", "--threads", "1", "--budget", "1500"],
        env=env, encoding="utf-8", timeout=120, dimensions=(40, 120),
    )  # fmt: skip
    try:
        child.expect("you> ")
        child.sendline("/help")
        child.expect("/strategy NAME")
        child.expect("you> ")
        child.sendline("/strategy cot")
        child.expect("strategy: cot")
        child.expect("you> ")
        child.sendline("What is 2 + 3?")
        child.expect("plan")  # the plan tree is streamed
        child.expect("step")
        child.expect("budget: \\[")
        child.expect("answer")
        child.expect("tokens")
        child.expect("you> ")
        child.sendline("/approve on")
        child.expect("plan approval on")
        child.expect("you> ")
        child.sendline("Name a fruit.")
        child.expect("proposed plan")
        child.expect("waiting> ")
        child.sendline("/approve")
        child.expect("answer")
        child.expect("you> ")
        child.sendline("/history")
        child.expect("1\\. What is 2 \\+ 3\\?")
        child.expect("2\\. Name a fruit\\.")
        child.expect("you> ")
        child.sendline("/quit")
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert (tmp_path / "data" / "longthink" / "chat_history").exists()  # history kept between sessions
