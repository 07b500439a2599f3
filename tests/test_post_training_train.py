"""``longthink export`` -> ``longthink train`` -> ``longthink generate --model OUT``, for real on SmolLM2 (tiny settings).

The README's post-training commands are run as written, in a temporary folder holding a store of labelled searches,
with flags appended that shrink them (SmolLM2, two optimiser steps, short examples); later flags win."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from test_post_training_data import _best_of_n

from longthink.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
TINY = {
    "train": [
        "--model",
        "smollm2-135m-instruct",
        "--max-steps",
        "2",
        "--max-length",
        "96",
        "--grad-accum",
        "1",
        "--save-steps",
        "1",
        "--lr",
        "5e-3",
        "--threads",
        "1",
    ],
    "generate": ["--max-tokens", "48", "-n", "1", "--seed", "0"],
}

pytestmark = pytest.mark.real_model


def readme_commands() -> list[list[str]]:
    """The ``$ .venv/bin/longthink ...`` lines of the README's post-training section."""
    section = README.split("## Post-training", 1)[1].split("\n## ", 1)[0]
    lines = [line[2:] for line in section.splitlines() if line.startswith("$ .venv/bin/longthink ")]
    return [shlex.split(line.split("  #", 1)[0]) for line in lines]


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "longthink"), *argv[1:]] if argv[0].endswith("longthink") else argv
    env = {**os.environ, "LONGTHINK_N_THREADS": "1", "LONGTHINK_CONFIG": str(cwd / "none.toml")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def _seed_store(cwd: Path, db_arg: str) -> None:
    """The store the README's export reads (a relative sqlite URL), with two runs of labelled searches."""
    path = cwd / db_arg.removeprefix("sqlite:///")
    path.parent.mkdir(parents=True, exist_ok=True)
    store = SqlStore(f"sqlite:///{path}")
    try:
        asyncio.run(_best_of_n(store, "run-self", "policy"))
        asyncio.run(_best_of_n(store, "run-teacher", "teacher"))
    finally:
        store.close()


def test_the_readme_sequence_exports_trains_and_serves_the_result(tmp_path: Path) -> None:
    commands = readme_commands()
    assert [c[1] for c in commands] == ["export", "train", "generate"]
    export, train, generate = commands
    _seed_store(tmp_path, export[export.index("--db") + 1])

    done = _run(export, tmp_path)
    assert done.returncode == 0, done.stderr
    data = tmp_path / export[export.index("--out") + 1]
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["format"] == "sft" and manifest["files"]["train.jsonl"]["examples"] > 0

    assert train[2] == data.name
    done = _run([*train, *TINY["train"], "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # the trainer's progress and logs went to stderr
    out = tmp_path / train[train.index("--out") + 1]
    assert report["global_steps"] == 2 and report["format"] == "sft" and len(report["steps"]) == 2
    assert report["base_model"] == "smollm2-135m-instruct" and report["seconds_per_step"] > 0
    assert report["merged"]["architecture"] == "llama" and report["merged"]["merged_tensors"] > 0
    assert report["data"]["files"]["train.jsonl"]["sha256"] == manifest["files"]["train.jsonl"]["sha256"]
    assert "%|" in done.stderr  # a progress bar
    adapter = out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m-instruct"  # a name, not a local folder
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "README.md").exists()
    marker = json.loads((out / "longthink-model.json").read_text())
    assert marker["gguf"] == report["outputs"]["gguf"] and (out / marker["gguf"]).is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]

    assert generate[generate.index("--model") + 1] == out.name
    done = _run([*generate, *TINY["generate"]], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tok/s" in done.stdout and Path(marker["gguf"]).stem in done.stdout  # served by the embedded engine

    # other settings on the same checkpoints are refused (before any model loads)
    done = _run([*train, *TINY["train"], "--lr", "1e-3"], tmp_path)
    assert done.returncode == 2 and "--no-resume" in done.stderr


@pytest.mark.slow
def test_training_resumes_merges_exactly_and_trains_dpo(tmp_path: Path) -> None:
    """Resume from the last checkpoint; the GGUF merge equals PEFT's own merge; DPO pairs train too."""
    _seed_store(tmp_path, "sqlite:///runs.db")
    for fmt in ("sft", "dpo"):
        done = _run(
            ["longthink", "export", "-f", fmt, "--db", "sqlite:///runs.db", "--out", fmt, "--heldout", "0.3"], tmp_path
        )
        assert done.returncode == 0, done.stderr
    base = ["longthink", "train", "sft", "--out", "trained", *TINY["train"]]
    done = _run([*base, "--max-steps", "1"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run([*base, "--max-steps", "3", "--eval-examples", "2", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["resumed_from"] == "checkpoint-1" and report["global_steps"] == 3
    heldout = json.loads((tmp_path / "sft" / "manifest.json").read_text())["files"]["heldout.jsonl"]["examples"]
    assert (report["eval_loss"] is not None) == (heldout > 0) and report["heldout_examples"] == min(heldout, 2)
    assert [s["step"] for s in report["steps"]] == [2, 3]

    code = """
import torch, transformers, peft
from longthink.post_training.gguf_merge import merge_lora_into_gguf
from longthink.llm.transformers import _resolve
path, name, _ = _resolve("smollm2-135m-instruct")
merge_lora_into_gguf(path / name, "trained/adapter", "f32/model.gguf", quantized_as="F32")
def load(p, g):
    m = transformers.AutoModelForCausalLM.from_pretrained(p, gguf_file=g, local_files_only=True, dtype=torch.float32)
    m.hf_quantizer.remove_quantization_config(m)
    return m
want = peft.PeftModel.from_pretrained(load(path, name), "trained/adapter").merge_and_unload().state_dict()
got = load("f32", "model.gguf").state_dict()
base = load(path, name).state_dict()
worst = max((got[k] - want[k]).abs().max().item() for k in want)
moved = max((want[k] - base[k]).abs().max().item() for k in want if "q_proj" in k)
print(worst, moved)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    worst, moved = map(float, done.stdout.split())
    assert moved > 1e-4 and worst < 1e-6  # training moved the weights; the GGUF holds exactly PEFT's merge

    done = _run(
        ["longthink", "train", "dpo", "--out", "dpo-trained", *TINY["train"], "--max-steps", "1", "--json"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dpo = json.loads(done.stdout)
    assert (
        dpo["format"] == "dpo" and dpo["global_steps"] == 1 and re.search(r"-dpo-\w{8}\.gguf$", dpo["outputs"]["gguf"])
    )
