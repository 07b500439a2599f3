"""Every results file in ``benchmarks/results/`` comes from committed code and says so: a provenance block with the
commit, whether the tree differed from it, the settings, the date and the machine's CPU count
(``benchmarks/provenance.py`` writes it for every benchmark)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
KEYS = ("commit", "dirty", "settings", "date", "cpu_count")
FILES = sorted(RESULTS.glob("*.json"))

_saved = list(sys.path)
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance as P  # noqa: E402

sys.path[:] = _saved


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd)


def _full_history() -> bool:
    done = _git("rev-parse", "--is-shallow-repository")
    return done.returncode == 0 and done.stdout.strip() == "false"


def _blocks() -> dict[str, dict[str, Any]]:
    out = {}
    for path in FILES:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("provenance"), dict):
            out[path.name] = data["provenance"]
    return out


def check_block(block: dict[str, Any]) -> None:
    """The keys, with values that say what they should; a value never recorded (files written before the key
    existed) is null and named under ``unrecorded``."""
    assert [k for k in KEYS if k not in block] == []
    assert re.fullmatch(r"[0-9a-f]{40}", block["commit"]), block["commit"]
    assert re.match(r"\d{4}-\d{2}-\d{2}", block["date"]), block["date"]
    assert isinstance(block["settings"], dict) and block["settings"]
    unrecorded = set(block.get("unrecorded", ()))
    assert unrecorded <= {"dirty", "cpu_count"}
    for key, kind in (("dirty", bool), ("cpu_count", int)):
        assert block[key] is None if key in unrecorded else isinstance(block[key], kind), (key, block[key])
    assert block["dirty"] is not True, "results from a tree that differed from its commit: commit, then rerun"
    assert block["cpu_count"] is None or block["cpu_count"] >= 1
    shown = json.dumps(block["settings"])
    assert not re.search(r'"(/|~/|[A-Za-z]:\\\\)', shown), f"a machine path in the settings: {shown[:300]}"


def test_the_results_folder_has_results() -> None:
    assert len(FILES) >= 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_results_file_has_provenance(path: Path) -> None:
    data = json.loads(path.read_text())
    block = data.get("provenance") if isinstance(data, dict) else None
    if block is None:  # an artifact whose loader takes no extra keys: a results file names it by SHA-256
        name = str(path.relative_to(ROOT))
        owners = {f: b["artifacts"][name] for f, b in _blocks().items() if name in b.get("artifacts", {})}
        assert owners, f"{path.name} has no provenance block, and no results file names it as its artifact"
        assert set(owners.values()) == {hashlib.sha256(path.read_bytes()).hexdigest()}, "artifact changed since"
        return
    check_block(block)
    if _full_history():
        assert _git("cat-file", "-e", f"{block['commit']}^{{commit}}").returncode == 0, "commit not in the history"


def test_the_learned_verifier_artifact_stays_loadable() -> None:
    from longthink.rewards.learned import VerifierArtifact

    art = VerifierArtifact.load(RESULTS / "verifier.json")
    assert art.feature_names and len(art.weights) == len(art.feature_names)


def test_no_ratio_is_reported_against_more_samples_than_were_drawn() -> None:
    for path in RESULTS.glob("scaling_*.json"):
        summary = json.loads(path.read_text())["summary"]
        keys = [k for k in summary if re.search(r"_sc(\d+)$", k)]
        assert all(int(re.search(r"_sc(\d+)$", k).group(1)) <= summary["n_max"] for k in keys), (path.name, keys)


# -- the helper -----------------------------------------------------------------------------------------------------
def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "bench.py").write_text("print(1)\n")
    (repo / "benchmarks" / "results" / "r.json").write_text("{}\n")
    for args in (("init", "-q"), ("add", "."), ("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")):
        assert _git(*args, cwd=repo).returncode == 0
    return repo


def test_tree_state_sees_changed_code_but_not_rewritten_results(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    head, changed = P.tree_state(repo)
    assert re.fullmatch(r"[0-9a-f]{40}", head) and changed is False
    (repo / "benchmarks" / "results" / "r.json").write_text('{"new": 1}\n')
    assert P.tree_state(repo) == (head, False)  # results being rewritten do not count
    (repo / "helper.py").write_text("x = 1\n")
    assert P.tree_state(repo) == (head, True)  # an untracked module the run may import
    (repo / "helper.py").unlink()
    (repo / "bench.py").write_text("print(2)\n")
    assert P.tree_state(repo) == (head, True)
    assert P.tree_state(tmp_path / "nowhere")[1] is True


def test_provenance_block_has_every_key_and_no_machine_paths(tmp_path: Path) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Settings:
        n: int = 4
        modes: tuple[str, ...] = ("cot",)
        out: Path = RESULTS / "x.json"
        cache: Path = tmp_path / "cache"

    block = P.provenance(Settings(), reused_pools="abc:benchmarks/results/x.json")
    assert [k for k in KEYS if k not in block] == []
    assert block["settings"] == {"n": 4, "modes": ["cot"], "out": "benchmarks/results/x.json", "cache": "cache"}
    assert block["reused_pools"] == "abc:benchmarks/results/x.json"
    assert isinstance(block["dirty"], bool) and block["cpu_count"] >= 1


@pytest.mark.skipif(not _full_history(), reason="needs the repository's history")
def test_upgrade_completes_an_earlier_block_and_keeps_the_results(tmp_path: Path) -> None:
    # commit 69e4008 wrote scaling results with a "+dirty" suffix check; c7f41a9's verifier_data.py had none
    old = {"summary": {"x": 0.125}, "provenance": {"commit": "69e4008c8c8ab11c68ecbbaf2dcdba6a8cd22e5d",
                                                   "date": "2026-12-02", "settings": {"n": 1}, "reused_pools": "a"}}  # fmt: skip
    path = tmp_path / "scaling_x.json"
    path.write_text(json.dumps(old, indent=1))
    assert P.upgrade(path, "benchmarks/scaling.py") is True
    new = json.loads(path.read_text())
    assert new["summary"] == old["summary"]
    block = new["provenance"]
    check_block(block)
    assert block["dirty"] is False and block["cpu_count"] is None and block["unrecorded"] == ["cpu_count"]
    assert block["reused_pools"] == "a" and block["upgraded"]["by"] == "benchmarks/provenance.py upgrade"
    assert P.upgrade(path, "benchmarks/scaling.py") is False  # complete already: untouched

    old["provenance"]["commit"] = "c7f41a974c3c888ab5fe31d92e165e3c7f882a96"
    path.write_text(json.dumps(old, indent=1))
    P.upgrade(path, "benchmarks/verifier_data.py")
    block = json.loads(path.read_text())["provenance"]
    assert block["dirty"] is None and block["unrecorded"] == ["dirty", "cpu_count"]

    old["provenance"]["commit"] = "69e4008c8c8ab11c68ecbbaf2dcdba6a8cd22e5d+dirty"
    path.write_text(json.dumps(old, indent=1))
    P.upgrade(path, "benchmarks/scaling.py")
    with pytest.raises(AssertionError, match="differed"):
        check_block(json.loads(path.read_text())["provenance"])


def test_attach_gives_an_artifact_its_record_block_and_renames_its_bytes(tmp_path: Path) -> None:
    artifact, record = tmp_path / "verifier.json", tmp_path / "verifier_training.json"
    artifact.write_text(json.dumps({"format": "x", "weights": [0.1, -2.5]}))
    name = P.relative(artifact)
    block = {"commit": "abc", "dirty": False, "settings": {}, "date": "2026-12-02", "cpu_count": 2}
    record.write_text(json.dumps({"provenance": {**block, "artifacts": {name: P.sha256(artifact)}}, "auroc": 0.9}))
    assert P.attach(artifact, record) is True
    data, rec = json.loads(artifact.read_text()), json.loads(record.read_text())
    assert data["weights"] == [0.1, -2.5] and data["provenance"]["commit"] == "abc"  # the rest as it was
    assert "artifacts" not in data["provenance"] and data["provenance"]["attached"]["from"] == P.relative(record)
    assert rec["provenance"]["artifacts"][name] == P.sha256(artifact) and rec["auroc"] == 0.9
    assert P.attach(artifact, record) is False  # has one already
    other = tmp_path / "other.json"
    other.write_text("{}")
    record.write_text(json.dumps({"provenance": {**block, "artifacts": {P.relative(other): "0" * 64}}}))
    with pytest.raises(SystemExit, match="SHA-256 differs"):
        P.attach(other, record)
