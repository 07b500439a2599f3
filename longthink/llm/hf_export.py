"""Embedded GGUF models written as Hugging Face folders, for engines that do not load that GGUF (vLLM)."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from longthink.errors import ConfigError
from longthink.llm.transformers import _resolve, dtype_keyword, import_torch_transformers


def export_hf_model(model: str | os.PathLike[str], directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` (a known model's name or a GGUF path) as a Hugging Face folder that vLLM can load.

    vLLM does not load GGUF files of every architecture, so a served model is converted once: transformers
    dequantises the GGUF to float32 and ``save_pretrained`` writes weights, config and tokenizer. The folder
    is written next to its final place and renamed in one step, with a ``longthink-source.txt`` naming the
    GGUF it came from (name, size); an existing folder made from the same source is reused as is.
    """
    torch, transformers = import_torch_transformers("export_hf_model")
    directory = Path(directory).expanduser()
    path, gguf_file, source = _resolve(model)
    if gguf_file is None:
        raise ConfigError(f"{source} is already a model folder; nothing to convert", field="model")
    stamp = f"{source}\n{gguf_file} {(path / gguf_file).stat().st_size}\nformat 2\n"
    marker = directory / "longthink-source.txt"
    if marker.is_file() and marker.read_text() == stamp:
        return directory
    staging = directory.with_name(f".{directory.name}.{secrets.token_hex(4)}.part")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, local_files_only=True)
        lm = transformers.AutoModelForCausalLM.from_pretrained(
            path, gguf_file=gguf_file, local_files_only=True, **{dtype_keyword(transformers): torch.float32}
        )
        lm.hf_quantizer = None  # dequantised on load: nothing quantised is left to save
        if hasattr(lm.config, "quantization_config"):  # else config.json says "gguf" and vLLM refuses it
            del lm.config.quantization_config
        lm.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "longthink-source.txt").write_text(stamp)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return directory
