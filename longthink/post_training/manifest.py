"""An exported dataset on disk: ``train.jsonl``, ``heldout.jsonl`` and ``manifest.json``.

Files (``write_dataset``): ``train.jsonl`` and ``heldout.jsonl`` in the record shape of TRL's conversational
datasets (``prompt`` messages with ``completion`` / ``chosen`` / ``rejected`` assistant messages, or
``completions`` and ``labels`` for step-wise supervision) plus ``id``, ``problem`` and ``source`` (run, candidate,
model, label scorer); ``manifest.json`` (:class:`DataManifest`) with the provenance: runs, models, strategies,
scorers, settings, counts and each file's SHA-256. The manifest is written last.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from longthink.errors import ConfigError
from longthink.post_training.data import Dataset, ExportFormat, ExportOptions

MANIFEST = "manifest.json"
SPLITS = ("train", "heldout")
FORMAT_VERSION = 1


class FileStats(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    examples: int
    problems: int
    sha256: str


class DataManifest(BaseModel):
    """The provenance of an exported dataset (``manifest.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    format: ExportFormat
    created_at: str
    longthink_version: str
    store: str
    runs: list[str]
    models: dict[str, int]
    strategies: dict[str, int]
    label_scorers: dict[str, int]
    scorers: list[str]
    settings: dict[str, Any]
    counts: dict[str, int]
    files: dict[str, FileStats]

    @staticmethod
    def load(directory: str | Path) -> DataManifest:
        path = Path(directory) / MANIFEST
        try:
            manifest = DataManifest.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"{directory} has no {MANIFEST}: export one with `longthink export`", field="data"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not a longthink data manifest: {exc}", field="data") from None
        if manifest.format_version != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: format_version {manifest.format_version}, expected {FORMAT_VERSION}", field="data"
            )
        return manifest


def public_url(url: str) -> str:
    """A store URL as the manifest records it: no password, and a SQLite file by its name only."""
    from sqlalchemy.engine import make_url

    if "://" not in url or url.startswith("memory://"):
        return url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{Path(parsed.database or '').name}" if parsed.database else "sqlite://"
    return parsed.render_as_string(hide_password=True)


def write_dataset(dataset: Dataset, out: str | Path, *, store: str, options: ExportOptions) -> DataManifest:
    """Write ``train.jsonl``, ``heldout.jsonl`` and then ``manifest.json`` into ``out``; returns the manifest."""
    from longthink import __version__

    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, examples in zip(SPLITS, (dataset.train, dataset.heldout), strict=True):
        path = directory / f"{split}.jsonl"
        text = "".join(json.dumps(e.as_json(), ensure_ascii=False) + "\n" for e in examples)
        path.write_text(text, encoding="utf-8")
        files[path.name] = FileStats(
            examples=len(examples),
            problems=len({e.problem for e in examples}),
            sha256=hashlib.sha256(text.encode()).hexdigest(),
        )
    manifest = DataManifest(
        format=dataset.format,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        longthink_version=__version__,
        store=public_url(store),
        runs=list(dataset.runs),
        models=dict(dataset.models),
        strategies=dict(dataset.strategies),
        label_scorers=dict(dataset.label_scorers),
        scorers=list(dataset.scorers),
        settings={
            "heldout": options.heldout,
            "per_problem": options.per_problem,
            "pairs_per_problem": options.pairs_per_problem,
            "label_scorers": list(options.label_scorers),
            "models": list(options.models),
            "step_threshold": options.step_threshold,
            "instructions": list(options.instructions),
            "split": "sha256 of the question",
        },
        counts=dict(dataset.counts),
        files=files,
    )
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest


def read_split(directory: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """The records of ``<directory>/<split>.jsonl`` (checked against the manifest's SHA-256)."""
    manifest = DataManifest.load(directory)
    path = Path(directory) / f"{split}.jsonl"
    stats = manifest.files.get(path.name)
    if stats is None:
        raise ConfigError(f"{directory}: the manifest lists no {path.name}", field="data")
    text = path.read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != stats.sha256:
        raise ConfigError(f"{path} does not match its manifest (SHA-256): export it again", field="data")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
