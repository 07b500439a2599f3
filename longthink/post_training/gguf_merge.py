"""A LoRA adapter (a PEFT folder) merged into the GGUF it was trained from, for the embedded engine.

The adapter was trained on the GGUF's weights dequantised by transformers, so each adapted weight ``W`` of the GGUF
becomes ``W + scale * B @ A`` (``scale = lora_alpha / r``, or ``/ sqrt(r)`` with rsLoRA). Everything else is copied
byte for byte: every metadata key (tokenizer, chat template, hyper-parameters) and every tensor the adapter does not
touch, in its own quantisation. A merged tensor is written as float32 or float16 when the base tensor was, else as
Q8_0 (8-bit blocks: the small update survives, which re-quantising to the base's 4-bit type may not preserve).

Tensor names go from Hugging Face to GGUF through the ``gguf`` package's name map for the model's architecture.
Where the GGUF converter reorders the rows of the query and key projections (llama-style rotary embeddings), the
update is reordered the same way: within each head, the rows of the first and second half of the head dimension
are interleaved (row ``j`` of half ``h`` goes to row ``2 * j + h``).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from longthink.errors import ConfigError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Architectures whose GGUF converter interleaves the query / key rows of each head (llama-style rotary).
INTERLEAVED_QK = frozenset({"llama"})
#: Architectures whose projections are stored as in Hugging Face (checked against transformers' own loader).
PLAIN_QK = frozenset({"qwen2", "qwen3", "gemma3"})
_PREFIX = "base_model.model."

Array = npt.NDArray[np.float32]


def import_gguf(who: str = "merge_lora_into_gguf") -> Any:
    try:
        import gguf
    except ImportError as exc:  # the optional dependency is missing
        raise ConfigError(f"{who} needs the gguf package: pip install 'longthink[train]'", field="gguf") from exc
    return gguf


@dataclass(frozen=True, slots=True)
class LoraWeights:
    """The low-rank updates of one adapter: HF module name -> (A: r x in, B: out x r), and the scale."""

    updates: dict[str, tuple[Array, Array]]
    scale: float
    rank: int

    @staticmethod
    def load(adapter_dir: str | Path) -> LoraWeights:
        directory = Path(adapter_dir)
        try:
            config = json.loads((directory / ADAPTER_CONFIG).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{directory} is not a PEFT adapter folder ({ADAPTER_CONFIG}: {exc})", field="adapter"
            ) from None
        if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
            raise ConfigError(f"{directory}: only plain LoRA adapters can be merged", field="adapter")
        if config.get("rank_pattern") or config.get("alpha_pattern"):
            raise ConfigError(f"{directory}: per-module ranks or alphas are not supported", field="adapter")
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
        scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
        from safetensors.numpy import load_file

        tensors = load_file(str(directory / ADAPTER_WEIGHTS))
        pairs: dict[str, dict[str, Array]] = {}
        for key, value in tensors.items():
            for part in ("lora_A", "lora_B"):
                marker = f".{part}."
                if marker in key:
                    module = key.split(marker)[0].removeprefix(_PREFIX)
                    pairs.setdefault(module, {})[part] = np.asarray(value, dtype=np.float32)
        updates = {}
        for module, ab in pairs.items():
            if set(ab) != {"lora_A", "lora_B"}:
                raise ConfigError(f"{directory}: {module} lacks lora_A or lora_B", field="adapter")
            updates[module] = (ab["lora_A"], ab["lora_B"])
        if not updates:
            raise ConfigError(f"{directory}: no LoRA weights in {ADAPTER_WEIGHTS}", field="adapter")
        return LoraWeights(updates, scale, rank)

    def delta(self, module: str) -> Array:
        a, b = self.updates[module]
        return (b @ a * self.scale).astype(np.float32)


def interleave_heads(rows: Array, heads: int) -> Array:
    """The rows of a query or key projection in the llama GGUF order (see the module docstring)."""
    out_dim = rows.shape[0]
    if heads < 1 or out_dim % (2 * heads):
        raise ConfigError(f"{out_dim} rows cannot be split into {heads} heads of two halves", field="adapter")
    half = out_dim // heads // 2
    return rows.reshape(heads, 2, half, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def merge_lora_into_gguf(
    base: str | Path, adapter_dir: str | Path, out: str | Path, *, quantized_as: Literal["Q8_0", "F16", "F32"] = "Q8_0"
) -> dict[str, Any]:
    """Write ``out``: the GGUF ``base`` with the adapter merged in (see the module docstring); a merged tensor whose
    base was quantised is written as ``quantized_as``. Returns a report (architecture, how many tensors were merged,
    their types). The file is written next to ``out`` and renamed when complete."""
    gguf = import_gguf()
    lora = LoraWeights.load(adapter_dir)
    reader = gguf.GGUFReader(str(base))
    arch = _field(reader, "general.architecture")
    if arch not in INTERLEAVED_QK | PLAIN_QK:
        raise ConfigError(
            f"merging into a GGUF of architecture {arch!r} is not supported (known: "
            f"{', '.join(sorted(INTERLEAVED_QK | PLAIN_QK))}); serve the adapter folder with vLLM instead",
            field="model",
        )
    blocks = int(_field(reader, f"{arch}.block_count"))
    heads = int(_field(reader, f"{arch}.attention.head_count"))
    kv_heads = int(_field(reader, f"{arch}.attention.head_count_kv") or heads)
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    names = gguf.get_tensor_name_map(by_name[arch], blocks)
    deltas: dict[str, Array] = {}
    for module in sorted(lora.updates):
        name = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if name is None:
            raise ConfigError(f"no GGUF tensor for the adapted module {module!r} ({arch})", field="adapter")
        delta = lora.delta(module)
        if arch in INTERLEAVED_QK and name.endswith(("attn_q.weight", "attn_k.weight")):
            delta = interleave_heads(delta, heads if "attn_q" in name else kv_heads)
        deltas[name] = delta

    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    writer = gguf.GGUFWriter(str(staging), arch)
    merged: dict[str, str] = {}
    try:
        for key, f in reader.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue
            if key == "general.alignment":
                writer.add_custom_alignment(int(f.contents()))
                continue
            sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
        missing = set(deltas)
        for t in reader.tensors:
            qtype = gguf.GGMLQuantizationType(int(t.tensor_type))
            if t.name not in deltas:
                raw = None if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) else qtype
                writer.add_tensor(t.name, t.data, raw_dtype=raw)
                continue
            missing.discard(t.name)
            weight = gguf.quants.dequantize(t.data, qtype).astype(np.float32)
            delta = deltas[t.name]
            if weight.shape != delta.shape:
                raise ConfigError(
                    f"{t.name}: the adapter's update is {delta.shape}, the GGUF tensor {weight.shape}: the adapter was "
                    "trained on another model",
                    field="adapter",
                )
            weight = weight + delta
            if qtype == gguf.GGMLQuantizationType.F32:
                writer.add_tensor(t.name, weight)
                merged[t.name] = "F32"
            elif qtype == gguf.GGMLQuantizationType.F16:
                writer.add_tensor(t.name, weight.astype(np.float16))
                merged[t.name] = "F16"
            elif quantized_as == "Q8_0":
                q8 = gguf.GGMLQuantizationType.Q8_0
                writer.add_tensor(t.name, gguf.quants.quantize(weight, q8), raw_dtype=q8)
                merged[t.name] = "Q8_0"
            else:
                writer.add_tensor(t.name, weight.astype(np.float16 if quantized_as == "F16" else np.float32))
                merged[t.name] = quantized_as
        if missing:
            raise ConfigError(
                f"the GGUF has no tensors {sorted(missing)[:3]} that the adapter updates", field="adapter"
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staging, target)
    finally:
        if staging.exists():
            staging.unlink()
    return {
        "architecture": arch,
        "merged_tensors": len(merged),
        "merged_types": sorted(set(merged.values())),
        "scale": lora.scale,
        "rank": lora.rank,
    }
