"""Shared fixtures. Real-model fixtures load once per session and use one thread (see ENVIRONMENT.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from longthink.models import SMOLLM2_135M, ModelStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The verified SmolLM2-135M-Instruct GGUF (the fast test model)."""
    return ModelStore().ensure(SMOLLM2_135M)


@pytest.fixture(scope="session")
def smollm2(smollm2_path: Path) -> Iterator[object]:
    """The embedded engine on SmolLM2, shared by the session."""
    from longthink.llm.llama_cpp import LlamaCppLLM

    llm = LlamaCppLLM(str(smollm2_path), n_threads=1, n_ctx=4096, max_sequences=8)
    yield llm
    llm.close()
