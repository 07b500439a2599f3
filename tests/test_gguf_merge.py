"""Merging a LoRA adapter into a GGUF, on a tiny GGUF written here (no model): names, head order, types, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from longthink.errors import ConfigError  # noqa: E402
from longthink.post_training.gguf_merge import LoraWeights, interleave_heads, merge_lora_into_gguf  # noqa: E402

EMBD, HEADS, KV_HEADS, FFN, RANK, ALPHA = 32, 2, 1, 64, 4, 8.0
HEAD_DIM = EMBD // HEADS


def _write_base(path: Path, arch: str = "llama") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    tensors = {
        "token_embd.weight": rng.normal(size=(50, EMBD)).astype(np.float32),
        "blk.0.attn_q.weight": rng.normal(size=(EMBD, EMBD)).astype(np.float32),
        "blk.0.attn_k.weight": rng.normal(size=(KV_HEADS * HEAD_DIM, EMBD)).astype(np.float32),
        "blk.0.ffn_down.weight": rng.normal(size=(EMBD, FFN)).astype(np.float16),
    }
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(50)])
    writer.add_float32(f"{arch}.rope.freq_base", 10000.0)
    for name, value in tensors.items():
        if name == "blk.0.attn_k.weight":  # a quantised tensor, as real models have
            writer.add_tensor(
                name,
                gguf.quants.quantize(value, gguf.GGMLQuantizationType.Q8_0),
                raw_dtype=gguf.GGMLQuantizationType.Q8_0,
            )
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


def _write_adapter(directory: Path, **config: object) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    shapes = {
        "model.layers.0.self_attn.q_proj": (EMBD, EMBD),
        "model.layers.0.self_attn.k_proj": (HEAD_DIM, EMBD),
        "model.layers.0.mlp.down_proj": (EMBD, FFN),
    }
    pairs, tensors = {}, {}
    for module, (out_dim, in_dim) in shapes.items():
        a = rng.normal(size=(RANK, in_dim)).astype(np.float32)
        b = rng.normal(size=(out_dim, RANK)).astype(np.float32) * 0.1
        pairs[module] = (a, b)
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
    directory.mkdir(parents=True, exist_ok=True)
    safetensors_numpy.save_file(tensors, str(directory / "adapter_model.safetensors"))
    cfg = {"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "use_rslora": False, **config}
    (directory / "adapter_config.json").write_text(json.dumps(cfg))
    return pairs


def _hf_to_llama_gguf_rows(delta: np.ndarray, heads: int) -> np.ndarray:
    """The llama GGUF row order written out row by row: HF row h*d + half*(d/2) + i -> GGUF row h*d + 2*i + half."""
    d = delta.shape[0] // heads
    out = np.empty_like(delta)
    for h in range(heads):
        for half in range(2):
            for i in range(d // 2):
                out[h * d + 2 * i + half] = delta[h * d + half * (d // 2) + i]
    return out


def _read(path: Path) -> tuple[object, dict[str, np.ndarray], dict[str, str]]:
    reader = gguf.GGUFReader(str(path))
    values = {}
    types = {}
    for t in reader.tensors:
        qtype = gguf.GGMLQuantizationType(int(t.tensor_type))
        values[t.name] = gguf.quants.dequantize(t.data, qtype).astype(np.float32)
        types[t.name] = qtype.name
    return reader, values, types


def test_merged_tensors_are_base_plus_the_scaled_update_in_gguf_order(tmp_path: Path) -> None:
    base = _write_base(tmp_path / "base.gguf")
    pairs = _write_adapter(tmp_path / "adapter")
    report = merge_lora_into_gguf(
        tmp_path / "base.gguf", tmp_path / "adapter", tmp_path / "out" / "merged.gguf", quantized_as="F32"
    )
    assert report["architecture"] == "llama" and report["merged_tensors"] == 3 and report["scale"] == ALPHA / RANK
    reader, got, types = _read(tmp_path / "out" / "merged.gguf")
    _, before, _ = _read(tmp_path / "base.gguf")
    scale = ALPHA / RANK

    def delta(module: str) -> np.ndarray:
        a, b = pairs[module]
        return (b @ a) * scale

    q = before["blk.0.attn_q.weight"] + _hf_to_llama_gguf_rows(delta("model.layers.0.self_attn.q_proj"), HEADS)
    k = before["blk.0.attn_k.weight"] + _hf_to_llama_gguf_rows(delta("model.layers.0.self_attn.k_proj"), KV_HEADS)
    down = before["blk.0.ffn_down.weight"] + delta("model.layers.0.mlp.down_proj")  # not reordered
    np.testing.assert_allclose(got["blk.0.attn_q.weight"], q, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["blk.0.attn_k.weight"], k, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["blk.0.ffn_down.weight"], down, rtol=0, atol=1e-2)  # stored as F16, like its base
    assert np.array_equal(got["token_embd.weight"], base["token_embd.weight"])  # untouched: copied as is
    assert types == {
        "token_embd.weight": "F32",
        "blk.0.attn_q.weight": "F32",
        "blk.0.attn_k.weight": "F32",
        "blk.0.ffn_down.weight": "F16",
    }
    fields = reader.fields  # type: ignore[attr-defined]
    assert fields["general.architecture"].contents() == "llama"
    assert fields["tokenizer.ggml.tokens"].contents() == [f"t{i}" for i in range(50)]
    assert fields["llama.attention.head_count_kv"].contents() == KV_HEADS
    assert fields["llama.rope.freq_base"].contents() == pytest.approx(10000.0)
    assert not list((tmp_path / "out").glob(".*part"))  # written to a staging file, renamed when complete


def test_quantised_bases_are_merged_as_q8_0_by_default(tmp_path: Path) -> None:
    _write_base(tmp_path / "base.gguf")
    pairs = _write_adapter(tmp_path / "adapter")
    merge_lora_into_gguf(tmp_path / "base.gguf", tmp_path / "adapter", tmp_path / "merged.gguf")
    _, got, types = _read(tmp_path / "merged.gguf")
    _, before, _ = _read(tmp_path / "base.gguf")
    assert types["blk.0.attn_k.weight"] == "Q8_0" and types["blk.0.attn_q.weight"] == "F32"
    a, b = pairs["model.layers.0.self_attn.k_proj"]
    want = before["blk.0.attn_k.weight"] + _hf_to_llama_gguf_rows(b @ a * (ALPHA / RANK), KV_HEADS)
    step = np.abs(want).max() / 127  # Q8_0: one scale per 32 values
    assert np.abs(got["blk.0.attn_k.weight"] - want).max() <= step


def test_qwen2_keeps_the_hugging_face_row_order(tmp_path: Path) -> None:
    _write_base(tmp_path / "base.gguf", arch="qwen2")
    pairs = _write_adapter(tmp_path / "adapter")
    merge_lora_into_gguf(tmp_path / "base.gguf", tmp_path / "adapter", tmp_path / "m.gguf", quantized_as="F32")
    _, got, _ = _read(tmp_path / "m.gguf")
    _, before, _ = _read(tmp_path / "base.gguf")
    a, b = pairs["model.layers.0.self_attn.q_proj"]
    np.testing.assert_allclose(
        got["blk.0.attn_q.weight"], before["blk.0.attn_q.weight"] + b @ a * (ALPHA / RANK), atol=1e-5
    )


def test_rslora_scale_and_refusals(tmp_path: Path) -> None:
    _write_base(tmp_path / "base.gguf")
    _write_adapter(tmp_path / "rs", use_rslora=True)
    assert LoraWeights.load(tmp_path / "rs").scale == pytest.approx(ALPHA / np.sqrt(RANK))
    _write_adapter(tmp_path / "dora", use_dora=True)
    with pytest.raises(ConfigError, match="plain LoRA"):
        merge_lora_into_gguf(tmp_path / "base.gguf", tmp_path / "dora", tmp_path / "x.gguf")
    _write_adapter(tmp_path / "pattern", rank_pattern={"q_proj": 8})
    with pytest.raises(ConfigError, match="per-module"):
        LoraWeights.load(tmp_path / "pattern")
    with pytest.raises(ConfigError, match="not a PEFT adapter"):
        LoraWeights.load(tmp_path)
    _write_base(tmp_path / "gpt2.gguf", arch="gpt2")
    with pytest.raises(ConfigError, match="not supported"):
        merge_lora_into_gguf(tmp_path / "gpt2.gguf", tmp_path / "rs", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_an_adapter_of_another_model_is_refused(tmp_path: Path) -> None:
    _write_base(tmp_path / "base.gguf")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    a = np.ones((RANK, EMBD), np.float32)
    safetensors_numpy.save_file(
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": a,
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.ones((EMBD + 32, RANK), np.float32),
        },
        str(adapter / "adapter_model.safetensors"),
    )
    (adapter / "adapter_config.json").write_text(json.dumps({"r": RANK, "lora_alpha": ALPHA}))
    with pytest.raises(ConfigError, match="trained on another model"):
        merge_lora_into_gguf(tmp_path / "base.gguf", adapter, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists() and not list(tmp_path.glob(".x.gguf*"))


def test_interleave_heads_is_a_permutation_within_each_head() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(12, 1)
    out = interleave_heads(rows, 2)[:, 0]
    assert out.tolist() == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]
    with pytest.raises(ConfigError, match="heads"):
        interleave_heads(rows, 5)


def test_vllm_serves_the_adapter_folder_with_a_rank_it_accepts(tmp_path: Path) -> None:
    from longthink.vllm_cpu import lora_args

    _write_adapter(tmp_path / "adapter", r=24)
    args = lora_args([f"trained={tmp_path / 'adapter'}"])
    assert args[:3] == ["--enable-lora", "--max-lora-rank", "32"]  # the next rank vLLM accepts
    assert args[3:] == ["--lora-modules", f"trained={(tmp_path / 'adapter').resolve()}"]
    assert lora_args([]) == []
    with pytest.raises(ConfigError, match="NAME=ADAPTER_FOLDER"):
        lora_args([str(tmp_path / "adapter")])
    with pytest.raises(ConfigError, match="NAME=ADAPTER_FOLDER"):
        lora_args([f"trained={tmp_path}"])
