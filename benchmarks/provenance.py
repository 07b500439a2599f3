"""The provenance block of every results file in ``benchmarks/results/``: which code wrote it, with what settings,
when, on how many CPUs.

    {"commit": "<git HEAD>", "dirty": false, "settings": {...}, "date": "YYYY-MM-DD", "cpu_count": 2, ...}

``dirty`` is true when the code that ran differs from ``commit``: a tracked file changed or an untracked file present
anywhere outside ``benchmarks/results/`` (results being rewritten do not count), or the imported ``longthink`` is
not this checkout's. Results that count come from a clean tree: commit the code first, then run the benchmark.
Settings are made JSON-friendly: paths inside the repository become repository-relative (no machine paths),
others their file name; tuples become lists. Extra keys (``reused_pools``, ``finalized``, ...) record how a file
was merged from earlier runs, which is only ever done by code. ``artifacts`` maps a file that cannot carry a block
of its own (the learned verifier, whose loader accepts no extra keys) to its SHA-256.

Files written before every key was recorded are brought to this form by code, their results untouched::

    .venv/bin/python benchmarks/provenance.py upgrade benchmarks/results/scaling_gsm8k.json \
        --writer benchmarks/scaling.py

``dirty`` is then read from the commit's ``+dirty`` suffix where the writer at that commit appended one, and what
was never recorded (the CPU count; ``dirty`` where the writer did not check) stays ``null``, named under
``unrecorded``.

An artifact written with such a record and named there by SHA-256 (the learned verifier, before its loader took a
``provenance`` key) gets the record's block by ``provenance.py attach ARTIFACT --record RECORD``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = "benchmarks/results"
KEYS = ("commit", "dirty", "settings", "date", "cpu_count")
"""The keys every provenance block has."""


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd)
    return done.stdout.strip()


def relative(path: Path | str) -> str:
    """A path as a results file shows it: relative to the repository when inside it, else its name."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name


def jsonable(value: Any) -> Any:
    """Settings (a dataclass, a mapping, an argparse namespace) as plain JSON values, without machine paths."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "__dict__") and not isinstance(value, Mapping | Path | str | int | float | bool):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return relative(value)
    return value


def tree_state(root: Path = ROOT) -> tuple[str, bool]:
    """``(HEAD, changed)`` of the checkout at ``root``: changed when a tracked file differs from HEAD or an untracked
    (not ignored) file is present, outside ``benchmarks/results/``; ``("unknown", True)`` without git."""
    try:
        head = _git("rev-parse", "HEAD", cwd=root)
        changed = _git("status", "--porcelain", "--", ":/", f":(top,exclude){RESULTS_DIR}", cwd=root)
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return head, bool(changed)


def code_state() -> tuple[str, bool]:
    """``(commit, dirty)`` of the code running now: this checkout's state, and dirty too when the imported
    ``longthink`` is another checkout's."""
    import longthink

    head, changed = tree_state()
    return head, changed or not Path(longthink.__file__).resolve().is_relative_to(ROOT)


def provenance(settings: Any, **extra: Any) -> dict[str, Any]:
    """The provenance block for results written now by the running code with ``settings``."""
    commit, dirty = code_state()
    block = {
        "commit": commit,
        "dirty": dirty,
        "settings": jsonable(settings),
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
    }
    return {**block, **jsonable(extra)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upgrade(path: Path, writer: str, artifacts: Sequence[Path] = ()) -> bool:
    """Rewrite the provenance block of an earlier results file with every key of :data:`KEYS` (see the module
    docstring); the rest of the file is written back as it was. ``artifacts``: files committed together with
    ``path`` and unchanged since, recorded by SHA-256. Returns False when the block was complete already."""
    text = path.read_text()
    data = json.loads(text)
    old = data["provenance"]
    if set(KEYS) <= old.keys():
        return False
    commit = str(old["commit"]).removesuffix("+dirty")
    recorded_dirty = '"+dirty"' in _git("show", f"{commit}:{writer}")
    unrecorded = ["cpu_count"] if recorded_dirty else ["dirty", "cpu_count"]
    block: dict[str, Any] = {
        "commit": commit,
        "dirty": str(old["commit"]).endswith("+dirty") if recorded_dirty else None,
        "settings": old["settings"],
        "date": old["date"],
        "cpu_count": None,
        "unrecorded": unrecorded,
    }
    block.update({k: v for k, v in old.items() if k not in block})
    for artifact in artifacts:
        name = relative(artifact)
        if _git("log", "-1", "--format=%H", "--", name) != _git("log", "-1", "--format=%H", "--", relative(path)):
            raise SystemExit(f"{name} was not last committed together with {relative(path)}")
        if _git("status", "--porcelain", "--", name):
            raise SystemExit(f"{name} differs from its committed version")
        block.setdefault("artifacts", {})[name] = sha256(artifact)
    block["upgraded"] = {
        "by": "benchmarks/provenance.py upgrade",
        "commit": code_state()[0],
        "date": time.strftime("%Y-%m-%d"),
    }
    data["provenance"] = block
    path.write_text(json.dumps(data, indent=1) + ("\n" if text.endswith("\n") else ""))
    return True


def attach(artifact: Path, record: Path) -> bool:
    """Give ``artifact`` (a results file written together with ``record``, named there by SHA-256) the provenance
    block of ``record``, and name its new bytes in ``record``; the artifact's other keys are written back as they
    were. Returns False when it has a block already."""
    data = json.loads(artifact.read_text())
    if "provenance" in data:
        return False
    rec_text = record.read_text()
    rec = json.loads(rec_text)
    name = relative(artifact)
    if rec["provenance"].get("artifacts", {}).get(name) != sha256(artifact):
        raise SystemExit(f"{name} is not the file {relative(record)} names (its SHA-256 differs)")
    block = {k: v for k, v in rec["provenance"].items() if k != "artifacts"}
    block["attached"] = {"from": relative(record), "commit": code_state()[0], "date": time.strftime("%Y-%m-%d")}
    artifact.write_text(json.dumps({**data, "provenance": block}, indent=1) + "\n")
    rec["provenance"]["artifacts"][name] = sha256(artifact)
    record.write_text(json.dumps(rec, indent=1) + ("\n" if rec_text.endswith("\n") else ""))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="complete the provenance block of an earlier results file")
    up.add_argument("path", type=Path)
    up.add_argument("--writer", required=True, help="the script that wrote it (repository-relative)")
    up.add_argument("--artifact", type=Path, action="append", default=[], help="a file it describes (by SHA-256)")
    at = sub.add_parser("attach", help="copy a results file's provenance into the artifact it names by SHA-256")
    at.add_argument("path", type=Path)
    at.add_argument("--record", type=Path, required=True, help="the results file that names the artifact")
    a = ap.parse_args(argv)
    if a.command == "attach":
        done = attach(a.path, a.record)
        print(f"{relative(a.path)}: {'provenance attached' if done else 'has one already'}")
        return 0
    changed = upgrade(a.path, a.writer, a.artifact)
    print(f"{relative(a.path)}: {'upgraded' if changed else 'complete already'}")
    return 0


__all__ = [
    "KEYS",
    "ROOT",
    "attach",
    "code_state",
    "jsonable",
    "provenance",
    "relative",
    "sha256",
    "tree_state",
    "upgrade",
]


if __name__ == "__main__":
    raise SystemExit(main())
