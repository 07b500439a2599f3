"""The capacity benchmark's projection: which central part saturates first follows from the measured costs."""

from __future__ import annotations

import pytest
from bench_modules import load_benchmark

C = load_benchmark("capacity")


def measured(*, wal_bytes: float = 2000.0, ray_tasks_s: float = 1000.0) -> dict:
    return {
        "agent": {"cpu_s_per_run_fixed": 0.01, "cpu_us_per_candidate": 50.0, "events_per_candidate": 3.0},
        "postgresql": {
            "client_cpu_us_per_candidate": 40.0,
            "server_cpu_us_per_candidate": 60.0,
            "wal_bytes_per_candidate": wal_bytes,
        },
        "service": {"service_cpu_s_per_run_beyond_api": 0.02},
        "ray": {"tasks_per_s": ray_tasks_s},
    }


def test_rates_follow_from_the_fleet() -> None:
    cfg = C.Config(gpus=1000, tokens_per_candidate=250.0, candidates_per_request=32.0, db_cores=64, wal_mb_s=1000.0)
    p = C.project(cfg, measured(ray_tasks_s=1e6), 20000.0)
    assert p["candidates_s"] == pytest.approx(1000 * 20000 / 250)  # 80,000 candidates/s
    assert p["requests_s"] == pytest.approx(80000 / 32)
    assert p["events_s"] == pytest.approx(240000)
    # the workers' orchestration: 2,500 runs/s x 10 ms + 80,000 candidates/s x 50 us = 29 cores
    assert p["parts"]["workers (agent orchestration)"]["cores"] == pytest.approx(29.0)
    assert p["parts"]["PostgreSQL primary (WAL)"]["load"] == pytest.approx(0.16)  # 160 MB/s of 1,000
    assert p["parts"]["PostgreSQL primary (CPU)"]["load"] == pytest.approx(4.8 / 64, abs=1e-3)
    assert p["saturates_first"] == "PostgreSQL primary (WAL)"


def test_a_slow_scheduler_saturates_before_the_database() -> None:
    p = C.project(C.Config(), measured(ray_tasks_s=1000.0), 20000.0)
    assert p["saturates_first"] == "Ray scheduler (one task per request)"
    assert p["saturates_first_load"] == pytest.approx(2.5)


def test_without_measurements_of_the_central_parts_nothing_is_named() -> None:
    m = measured()
    m["postgresql"] = m["ray"] = "skipped: no server"
    p = C.project(C.Config(), m, 1000.0)
    assert p["saturates_first"] is None
    assert "workers (agent orchestration)" in p["parts"]
