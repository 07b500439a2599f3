"""Domain packs and their registry: an explicit dict by name, with detection of a request's domain.

A :class:`DomainPack` bundles what a domain adds to the engine: a detector (how much a request looks like
this domain, in [0, 1]), hints for the planner, tools, scorers and the kind of answer it produces. The
engine never imports a domain: callers look packs up here. The built-in packs are modules named in
``BUILTIN_PACKS``, imported on the first lookup (each registers itself); they import their heavy
dependencies (solvers, plotting) only when used, so detection works without them.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from longthink.answers import AnswerKind
from longthink.domains.pipeline import DomainPipeline
from longthink.errors import ConfigError
from longthink.rewards.base import Scorer
from longthink.tools.base import Tool

GENERAL = "general"
"""What :meth:`DomainRegistry.detect` answers when no pack is confident enough."""

BUILTIN_PACKS: tuple[str, ...] = (
    "longthink.domains.routing.pack",
    "longthink.domains.debugging.pack",
    "longthink.domains.business_plan.pack",
)


@dataclass(frozen=True, slots=True)
class DomainPack:
    """What a domain plugs into the engine. ``detect(request)`` is a confidence in [0, 1].

    With a ``pipeline`` the agent runs the domain's own typed plan and steps (see
    :mod:`longthink.domains.pipeline`); without one, the pack's ``planner_hints`` and ``tools`` guide the
    general planner."""

    name: str
    description: str
    detect: Callable[[str], float]
    planner_hints: str
    tools: tuple[Tool, ...] = ()
    scorers: tuple[Scorer, ...] = ()
    answer_kind: AnswerKind = "text"
    pipeline: DomainPipeline | None = None


class DomainRegistry:
    """Packs by name. ``modules`` are imported on the first lookup; importing one registers its pack."""

    def __init__(self, packs: Iterable[DomainPack] = (), *, modules: Iterable[str] = ()) -> None:
        self._packs: dict[str, DomainPack] = {}
        self._modules = tuple(modules)
        self._loaded = not self._modules
        for pack in packs:
            self.register(pack)

    def register(self, pack: DomainPack, *, replace: bool = False) -> DomainPack:
        if pack.name == GENERAL or not pack.name.isidentifier():
            raise ConfigError(f"invalid domain pack name {pack.name!r}", field="domain")
        if pack.name in self._packs and not replace:
            raise ConfigError(f"a domain pack named {pack.name!r} is already registered", field="domain")
        self._packs[pack.name] = pack
        return pack

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules call register() on this registry
        for module in self._modules:
            importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return list(self._packs)

    def get(self, name: str) -> DomainPack:
        self._load()
        key = name.strip().lower().replace("-", "_")
        pack = self._packs.get(key)
        if pack is None:
            near = difflib.get_close_matches(key, self._packs, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            known = ", ".join(self._packs) or "none"
            raise ConfigError(f"unknown domain {name!r}{hint} (known: {known})", field="domain")
        return pack

    def scores(self, request: str) -> dict[str, float]:
        """Each pack's confidence that ``request`` is in its domain."""
        self._load()
        return {name: min(1.0, max(0.0, float(pack.detect(request)))) for name, pack in self._packs.items()}

    def resolve(self, domain: str | None, request: str) -> str:
        """The domain a run uses: ``None`` or ``"auto"`` detects it from the request, ``"general"`` is no pack,
        any other value must name a registered pack (a clear error otherwise)."""
        if domain is None or domain.strip().lower() == "auto":
            return self.detect(request)
        if domain.strip().lower() == GENERAL:
            return GENERAL
        return self.get(domain).name

    def detect(self, request: str, *, threshold: float = 0.5) -> str:
        """The name of the most confident pack, or ``"general"`` when none reaches ``threshold``
        (ties go to the pack registered first)."""
        best, best_score = GENERAL, threshold
        for name, score in self.scores(request).items():
            if score >= best_score and (best == GENERAL or score > best_score):
                best, best_score = name, score
        return best


REGISTRY = DomainRegistry(modules=BUILTIN_PACKS)
"""The default registry with the built-in packs."""


def register(pack: DomainPack, *, replace: bool = False) -> DomainPack:
    return REGISTRY.register(pack, replace=replace)


def get(name: str) -> DomainPack:
    return REGISTRY.get(name)


def detect(request: str, *, threshold: float = 0.5) -> str:
    return REGISTRY.detect(request, threshold=threshold)


def names() -> list[str]:
    return REGISTRY.names()
