"""The store benchmark's workloads run against the current event API and record every candidate they claim."""

from __future__ import annotations

import asyncio

import pytest
from bench_modules import load_benchmark

from longthink.store import MemoryStore

S = load_benchmark("store")


@pytest.mark.parametrize("workload", sorted(S.WORKLOADS))
def test_each_workload_records_its_candidates_in_a_store(workload: str) -> None:
    store = MemoryStore()
    figures = asyncio.run(S.run_once(workload, store, 3, 4, 64))
    assert figures["candidates"] == 12
    [run] = store.list_runs()
    kinds = [e.kind for e in store.events(run.id)]
    assert kinds.count("candidate_generated") == 12
