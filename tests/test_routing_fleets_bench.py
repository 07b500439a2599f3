"""The multi-depot and mixed-fleet benchmark (``benchmarks/routing_fleets.py``): the best-known table holds only
instances VRPSolverEasy ships, the summary's keys and medians, the flag for a solution cheaper than the table, and a
quick real run (two instances at 0.5 s, one scenario instance)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from longthink.domains.routing.io import FLEETS_TABLE, best_known

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("bench_routing_fleets", BENCH / "routing_fleets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    saved = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


fleets = _load()
HAVE_DATA = importlib.util.find_spec("VRPSolverEasy") is not None


def row(instance: str, kind: str, gap: float | None, below: bool = False) -> dict[str, Any]:
    return {"instance": instance, "set": kind, "variant": fleets.variant(instance), "gap_10s": gap,
            "feasible_10s": gap is not None, "below_best_known_10s": below}  # fmt: skip


def test_variants_and_the_summary_keys() -> None:
    assert [fleets.variant(n) for n in ("p01", "c50_13fsmfd", "c100_20hd", "c50_13fsmf")] == [
        "mdvrp", "fsmfd", "hd", "fsmf"]  # fmt: skip
    rows = [row("p01", "MDVRP", 0.0), row("p02", "MDVRP", 1.0), row("p03", "MDVRP", None),
            row("c50_13hd", "HFVRP", 2.0), row("c50_14hd", "HFVRP", -0.5, below=True)]  # fmt: skip
    summary = fleets.summarise([10.0], rows)
    assert summary["md_median_gap_10s"] == 0.5 and summary["md_feasible_share_10s"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["hf_median_gap_10s"] == 0.75 and summary["below_best_known_10s"] == 1
    assert summary["hf_median_gap_by_variant_10s"] == {"hd": 0.75}
    assert (summary["md_instances"], summary["hf_instances"]) == (3, 2)


@pytest.mark.skipif(not HAVE_DATA, reason="VRPSolverEasy (data only) is not installed")
def test_every_tabled_instance_is_shipped_and_a_quick_run_verifies_both_kinds() -> None:
    names = {
        ln.split(",")[0] for ln in FLEETS_TABLE.read_text().splitlines() if ln and not ln.startswith(("#", "name"))
    }
    shipped = {p.stem for kind in ("MDVRP", "HFVRP") for p in fleets.data_folder(kind).iterdir()}
    assert names and names <= shipped and all(best_known(n) for n in names)
    result = fleets.run(fleets.Settings(limits=(0.5,), quick=True, scenario_instances=1, scenario_limit_s=0.2,
                                        scenario_samples=5, scenario_fresh=10))  # fmt: skip
    rows = result["rows"]
    assert [r["set"] for r in rows] == ["MDVRP", "HFVRP"] and all(r["feasible_0.5s"] for r in rows)
    assert rows[0]["depots"] == 4 and rows[1]["vehicle_types"] == 6
    assert result["summary"]["below_best_known_0.5s"] == 0 and result["provenance"]["settings"]["quick"] is True
    [scenario] = result["scenario_rows"]
    assert scenario["instance"] == "A-n32-k5" and scenario["candidates"] == 5
    assert scenario["robust_worst"] is not None and scenario["mean_worst"] is not None
    assert result["summary"]["scenario_median_worst_ratio"] == round(
        scenario["robust_worst"] / scenario["mean_worst"], 4
    )
    [breakdown] = result["breakdown_rows"]
    assert breakdown["instance"] == "A-n32-k5" and breakdown["vehicles"] == 6 and breakdown["candidates"] == 2
    assert breakdown["as_planned"] >= breakdown["cheapest_as_planned"]
    assert result["summary"]["breakdown_median_cost_ratio"] == breakdown["cost_ratio"]
