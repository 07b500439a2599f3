"""The real-library debugging benchmark (benchmarks/debugging_projects.py) in its ``--quick`` mode with a test double
for the model: a synthetic library packed as an sdist (always), and the real toolz sdist that ``.ci/run`` downloads
into the benchmark cache. The double answers with the original function for every sample but the first, so best-of-4
repairs what best-of-1 misses when the localisation shows the right function."""

from __future__ import annotations

import asyncio
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from bench_modules import load_benchmark

from longthink.domains.debugging.source import function_source
from longthink.llm.types import SamplingParams
from longthink.testing import FunctionLLM

B = load_benchmark("debugging_projects")
EXAMPLE = Path(__file__).resolve().parent.parent / "domains" / "debugging" / "examples" / "shop"


def restorer(originals: dict[str, str]) -> FunctionLLM:
    """A double that writes back the originals of the functions the prompt names (nothing useful for sample 0)."""

    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        named = re.findall(r"`(\w+)` \(in `([^`]+)`\)", prompt.rsplit("The bug is probably in", 1)[-1])
        if not named or index == 0:
            return "def nothing_useful():\n    pass\n"
        return "\n\n".join(function_source(originals.get(path, ""), name) or "" for name, path in named)

    return FunctionLLM(reply)


def shop_sdist(folder: Path) -> dict[str, str]:
    """The README's example project, its bug fixed, packed as ``shop-0.1.0.tar.gz`` in ``folder``."""
    files = {p.relative_to(EXAMPLE).as_posix(): p.read_text() for p in sorted(EXAMPLE.rglob("*")) if p.is_file()}
    files["shop/prices.py"] = files["shop/prices.py"].replace('rstrip("$")', 'lstrip("$")')
    files["docs/conf.py"] = "x = 1\n"  # left out by the reader
    with tarfile.open(folder / "shop-0.1.0.tar.gz", "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"shop-0.1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {k: v for k, v in files.items() if not k.startswith("docs/")}


def test_quick_mode_on_a_packed_library(tmp_path: Path) -> None:
    originals = shop_sdist(tmp_path)
    assert B.read_sdist(tmp_path / "shop-0.1.0.tar.gz") == originals
    s = B.Settings(libraries=(B.Library("shop", "0.1.0"),), per_library=2, n_max=4, sdists=tmp_path,
                   out=tmp_path / "out", quick=True)  # fmt: skip
    result = asyncio.run(B.run(s, restorer(originals)))
    written = json.loads((tmp_path / "out" / "debugging_projects_quick.json").read_text())
    summary = written["summary"]
    assert written["complete"] and summary["mutants"] == len(written["mutants"]) >= 1
    assert {"repair_rate_n1", "repair_rate_n4", "right_file_share", "right_function_share"} <= set(summary)
    assert summary["repair_rate_n4"] >= summary["repair_rate_n1"] and summary["right_file_share"] > 0
    assert [row["n"] for row in written["curve"]] == [1, 2, 4]
    assert set(written["provenance"]) >= {"commit", "dirty", "settings", "date", "cpu_count"}
    assert written["settings"]["model"] == "FunctionLLM" and written["libraries"][0]["tests"] == 7
    for m in written["mutants"]:
        assert m["samples"] == 4 and m["file"].startswith("shop/") and m["selected_tests"] >= 1
    assert result["summary"] == summary


def test_the_sdist_reader_says_how_to_get_a_missing_sdist(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"pip download --no-deps --no-binary :all: toolz==1.2.0"):
        B.read_sdist(tmp_path / "toolz-1.2.0.tar.gz")


def test_quick_mode_on_the_real_toolz_sdist(tmp_path: Path) -> None:
    lib = B.LIBRARIES[0]
    path = B.Settings().sdists / lib.sdist
    if not path.is_file():
        pytest.skip(f"{path.name} is not in the benchmark cache (.ci/run downloads it)")
    originals = B.read_sdist(path)
    s = B.Settings(libraries=(lib,), per_library=2, n_max=4, out=tmp_path, quick=True)
    result = asyncio.run(B.run(s, restorer(originals)))
    summary = result["summary"]
    assert summary["mutants"] == 2 and summary["libraries"] == ["toolz"]
    assert result["libraries"][0]["tests"] > 150  # the library's own suite, less the files that fail as shipped
    assert summary["repair_rate_n4"] > summary["repair_rate_n1"] > 0


def test_localise_only_ranks_with_and_without_the_spectrum_and_calls_no_model(tmp_path: Path) -> None:
    shop_sdist(tmp_path)
    s = B.Settings(libraries=(B.Library("shop", "0.1.0"),), per_library=2, sdists=tmp_path, out=tmp_path / "out",
                   localise_only=True)  # fmt: skip
    result = asyncio.run(B.run(s))
    written = json.loads((tmp_path / "out" / "debugging_projects_localise.json").read_text())
    summary = written["summary"]
    assert summary == result["summary"] and summary["mutants"] == len(written["mutants"]) >= 1
    assert summary["traced_share"] == 1.0
    rows = written["mutants"]
    for key, field in (("localised_top1", "suspects"), ("localised_top1_frames", "suspects_without_spectrum")):
        first = [m[field][:1] == [f"{m['file']}::{m['function']}"] for m in rows]
        assert summary[key] == round(sum(first) / len(rows), 4)  # the summary is the rows' share
    assert summary["localised_shown"] == round(sum(m["shown_hit"] for m in rows) / len(rows), 4)
    for m in rows:
        assert m["samples"] == 0 and m["traced"] and m["suspects"] and m["suspects_without_spectrum"]
