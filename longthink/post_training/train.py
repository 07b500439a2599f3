"""LoRA fine-tuning of the policy model on exported data (``longthink train``), with TRL and PEFT.

The base model is a known model's name, a GGUF file or a Hugging Face folder. A GGUF is dequantised to float32 by
transformers' GGUF loader (the transformers backend's); the adapter trains on those weights. SFT data trains with
TRL's ``SFTTrainer`` (loss on the completion only), DPO pairs with ``DPOTrainer`` (the reference model is the base
with the adapter switched off). Checkpoints go to ``OUT/checkpoints`` every ``save_steps`` optimiser steps; the same
command run again resumes from the last one, and refuses when the data or the settings changed (``--no-resume``
starts over).

What ``OUT`` holds afterwards:

- ``adapter/``: the PEFT adapter folder (``adapter_config.json``, ``adapter_model.safetensors``) that vLLM serves
  with ``--enable-lora --lora-modules NAME=OUT/adapter`` next to the base model's Hugging Face folder;
- ``<base>-<format>-<hash>.gguf``: the base GGUF with the adapter merged in
  (:func:`~longthink.post_training.gguf_merge.merge_lora_into_gguf`), for the embedded engine; made when the base
  is a GGUF;
- ``longthink-model.json``: what makes ``OUT`` a model argument (``longthink generate --model OUT``) — the GGUF's
  file name, the base model and the adapter;
- ``training.json``: the report: settings, the data manifest's provenance, steps, losses, seconds per step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from longthink.errors import ConfigError
from longthink.models import DEFAULT_MODEL, TRAINED_MARKER
from longthink.post_training.manifest import DataManifest, read_split

INSTALL_HINT = "pip install 'longthink[train]'"
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
RUN_FILE = "longthink-run.json"
REPORT = "training.json"

Log = Callable[[str], None]


class TrainOptions(BaseModel):
    """Everything ``longthink train`` takes; validated before any model loads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path
    out: Path
    model: str = DEFAULT_MODEL
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="optimiser steps at most (default: the epochs)")
    learning_rate: float = Field(2e-4, gt=0, lt=1)
    rank: int = Field(16, ge=1, le=512)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = TARGET_MODULES
    max_length: int = Field(1024, ge=16)
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(4, ge=1)
    save_steps: int = Field(10, ge=1)
    limit: int | None = Field(None, ge=1, description="training examples at most")
    eval_examples: int = Field(0, ge=0, description="held-out examples whose loss is measured at the end")
    beta: float = Field(0.1, gt=0, description="DPO's beta")
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    resume: bool = True
    gguf: bool = True

    @staticmethod
    def of(**values: Any) -> TrainOptions:
        """Options from keyword arguments (None means the default); problems become a ``ConfigError``."""
        try:
            return TrainOptions(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(p) for p in err["loc"]) or "options"
            raise ConfigError(f"invalid training option {name}: {err['msg']}", field=name) from None

    def fingerprint(self, manifest: DataManifest) -> str:
        """What a resumed run must share with the checkpoints: the data and every setting that shapes training."""
        keep = self.model_dump(
            mode="json", exclude={"out", "data", "threads", "resume", "gguf", "eval_examples", "max_steps", "device"}
        )
        train_sha = manifest.files["train.jsonl"].sha256
        return hashlib.sha256(json.dumps([keep, train_sha], sort_keys=True).encode()).hexdigest()[:16]


def import_training() -> tuple[Any, Any, Any, Any]:
    """torch, transformers, trl and peft, or a ConfigError with the extra to install."""
    try:
        import peft
        import torch
        import transformers
        import trl
    except ImportError as exc:  # the optional dependency is missing
        raise ConfigError(f"longthink train needs {exc.name or exc}: {INSTALL_HINT}", field="train") from exc
    return torch, transformers, trl, peft


def use_bf16(torch: Any, cuda: bool, precision: str) -> bool:
    """bfloat16 weights and autocast when asked, or (``auto``) where the hardware computes in it: a GPU that supports
    it, or a CPU with AVX-512 BF16 / AMX (oneDNN), about twice fp32's matrix throughput on this project's CPU."""
    if precision != "auto":
        return precision == "bf16"
    if cuda:
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _columns(records: Sequence[Mapping[str, Any]], fmt: str) -> list[dict[str, Any]]:
    names = ("prompt", "completion") if fmt == "sft" else ("prompt", "chosen", "rejected")
    return [{k: r[k] for k in names} for r in records]


def _checkpoints(out: Path, fingerprint: str, resume: bool, log: Log) -> tuple[Path, str | None]:
    """The checkpoint folder, and the checkpoint to resume from (None: start afresh)."""
    directory = out / "checkpoints"
    run_file = directory / RUN_FILE
    if directory.exists() and not resume:
        shutil.rmtree(directory)
    if directory.exists():
        try:
            recorded = json.loads(run_file.read_text()).get("fingerprint")
        except (OSError, ValueError):
            recorded = None
        if recorded != fingerprint:
            raise ConfigError(
                f"{directory} holds checkpoints of other data or settings; pass --no-resume to start over",
                field="resume",
            )
    directory.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps({"fingerprint": fingerprint}))
    found = sorted(
        (p for p in directory.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    if found:
        log(f"resuming from {found[-1].name}")
    return directory, str(found[-1]) if found else None


def _progress_callback(transformers: Any, steps: list[dict[str, float]], log: Log) -> Any:
    class Record(transformers.TrainerCallback):  # type: ignore[misc]
        """Keeps each optimiser step's loss and wall time for the report."""

        def __init__(self) -> None:
            self._start = time.perf_counter()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._start = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                steps.append(
                    {
                        "step": state.global_step,
                        "loss": float(logs["loss"]),
                        "seconds": round(time.perf_counter() - self._start, 3),
                    }
                )

    return Record()


def train(options: TrainOptions, *, log: Log = lambda message: None) -> dict[str, Any]:
    """Fine-tune ``options.model`` on ``options.data`` into ``options.out``; returns the report (``training.json``)."""
    from longthink.llm.transformers import _resolve, dtype_keyword

    manifest = DataManifest.load(options.data)
    if manifest.format not in ("sft", "dpo"):
        raise ConfigError(f"training on {manifest.format} data is not supported (sft and dpo are)", field="data")
    records = read_split(options.data, "train")[: options.limit]
    if not records:
        raise ConfigError(f"{options.data} has no training examples", field="data")
    heldout = read_split(options.data, "heldout")[: options.eval_examples]
    path, gguf_file, base_name = _resolve(options.model)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoints, resume_from = _checkpoints(out, options.fingerprint(manifest), options.resume, log)
    torch, transformers, trl, peft = import_training()
    if options.threads:
        torch.set_num_threads(options.threads)
    cuda = options.device == "cuda" or (options.device == "auto" and torch.cuda.is_available())
    bf16 = use_bf16(torch, cuda, options.precision)

    import datasets

    started = time.perf_counter()
    log(f"loading {base_name}" + (" (dequantising the GGUF)" if gguf_file else ""))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path,
        gguf_file=gguf_file,
        local_files_only=True,
        **{dtype_keyword(transformers): torch.bfloat16 if bf16 else torch.float32},
    )
    if getattr(model, "hf_quantizer", None) is not None:  # a GGUF is dequantised on load: nothing quantised is left
        model.hf_quantizer.remove_quantization_config(model)
    load_s = time.perf_counter() - started
    lora = peft.LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=list(options.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    steps: list[dict[str, float]] = []
    train_set = datasets.Dataset.from_list(_columns(records, manifest.format))
    eval_set = datasets.Dataset.from_list(_columns(heldout, manifest.format)) if heldout else None
    kinds: dict[str, tuple[Any, Any, dict[str, Any]]] = {
        "sft": (trl.SFTConfig, trl.SFTTrainer, {"completion_only_loss": True, "packing": False}),
        "dpo": (trl.DPOConfig, trl.DPOTrainer, {"beta": options.beta}),
    }
    config_cls, trainer_cls, extra = kinds[manifest.format]
    trainer = trainer_cls(
        model=model,
        args=config_cls(**_trainer_settings(options, checkpoints, cuda, bf16), **extra),
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[_progress_callback(transformers, steps, log)],
    )
    train_started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    train_s = time.perf_counter() - train_started
    evaluation = trainer.evaluate() if eval_set is not None else None

    marker, merged = _save(trainer.model, out, base_name, manifest.format, path / gguf_file if gguf_file else None,
                           merge=options.gguf, log=log)  # fmt: skip
    timed = [s["seconds"] for s in steps]
    report = {
        "base_model": base_name,
        "format": manifest.format,
        "examples": len(records),
        "heldout_examples": len(heldout),
        "settings": options.model_dump(mode="json", exclude={"out", "data"}),
        "data": {
            "runs": manifest.runs,
            "models": manifest.models,
            "label_scorers": manifest.label_scorers,
            "files": {k: v.model_dump() for k, v in manifest.files.items()},
            "store": manifest.store,
        },
        "resumed_from": Path(resume_from).name if resume_from else None,
        "global_steps": int(result.global_step),
        "train_loss": float(result.training_loss),
        "eval_loss": evaluation.get("eval_loss") if evaluation else None,
        "steps": steps,
        "seconds_per_step": round(sum(timed) / len(timed), 3) if timed else None,
        "examples_per_step": options.batch_size * options.grad_accum,
        "load_s": round(load_s, 1),
        "train_s": round(train_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "device": "cuda" if cuda else "cpu",
        "precision": "bf16" if bf16 else "fp32",
        "threads": torch.get_num_threads(),
        "merged": merged,
        "outputs": marker,
        "versions": {
            name: getattr(mod, "__version__", "?")
            for name, mod in (("torch", torch), ("transformers", transformers), ("trl", trl), ("peft", peft))
        },
    }
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _trainer_settings(options: TrainOptions, checkpoints: Path, cuda: bool, bf16: bool) -> dict[str, Any]:
    """The TrainingArguments shared by SFT and DPO."""
    return {
        "output_dir": str(checkpoints),
        "per_device_train_batch_size": options.batch_size,
        "per_device_eval_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.grad_accum,
        "num_train_epochs": options.epochs,
        "max_steps": options.max_steps or -1,
        "learning_rate": options.learning_rate,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": options.save_steps,
        "save_total_limit": 2,
        "report_to": "none",
        "seed": options.seed,
        "data_seed": options.seed,
        "use_cpu": not cuda,
        "bf16": bf16,
        "fp16": False,
        "activation_checkpointing": False,
        "dataloader_num_workers": 0,
        "max_length": options.max_length,
        "disable_tqdm": False,
    }


def _save(
    model: Any, out: Path, base_name: str, fmt: str, base_gguf: Path | None, *, merge: bool, log: Log
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Write the adapter folder, the merged GGUF (when the base is one) and the marker; returns the marker and the
    merge report."""
    from longthink.post_training.gguf_merge import merge_lora_into_gguf

    adapter = out / "adapter"
    model.save_pretrained(str(adapter))
    (adapter / "README.md").unlink(missing_ok=True)  # PEFT's model card names the local folder the base came from
    _name_base(adapter, base_name)
    adapter_sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    merged: dict[str, Any] | None = None
    gguf_name: str | None = None
    if base_gguf is not None and merge:
        gguf_name = f"{base_name}-{fmt}-{adapter_sha[:8]}.gguf"
        log(f"merging the adapter into {gguf_name}")
        for old in out.glob(f"{base_name}-*.gguf"):
            old.unlink()
        merged = merge_lora_into_gguf(base_gguf, adapter, out / gguf_name)
    marker = {
        "format_version": 1,
        "base_model": base_name,
        "gguf": gguf_name,
        "adapter": adapter.name,
        "adapter_sha256": adapter_sha,
        "data_format": fmt,
    }
    (out / TRAINED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return marker, merged


def _name_base(adapter: Path, base_name: str) -> None:
    """Record the base model by name in the adapter's config (not the folder it was loaded from)."""
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
