"""Debugging benchmark on real libraries: seeded bugs in small pure-Python libraries, caught by their own pytest
suites, fixed by the debugging pack's project pipeline (localise across files, then sampled patches rewarded by the
library's tests in the sandbox).

Data: the libraries' source distributions (``LIBRARIES``: toolz 1.2.0, funcy 2.1, cachetools 8.0.0), which ship
their pytest suites. They are read from ``benchmarks/cache/sdists/`` (``--sdists``), where ``.ci/run`` puts them
with ``pip download --no-deps --no-binary :all:``; nothing is downloaded at run time. From each sdist the Python
files and the test configuration are kept (not ``docs/``, ``setup.py`` or byte code); the library's whole suite runs
once on the original code and a test file with a failing or uncollectable test (one that needs a package the
sdist does not ship, or an installed distribution) is left out, so every kept test passes on the original.

Mutants: the library's top-level functions (not its tests) in a seeded order; each gets one mutation with the
operators of :mod:`longthink.domains.debugging.mutate` (kinds in rotation: operator swap, off-by-one, wrong
comparison, removed statement; the site drawn with a fixed seed), spliced into the original file (only the
function is rewritten), and is kept when the suite catches it. At most ``--per-library`` mutants per library.

For every mutant: the test files that hold a failing test are the tests that run (``select``); their report is the
failure shown to the model (as in the pack's reproduce step); the pack's static localisation
(:func:`~longthink.domains.debugging.localise.ranked`; no model votes) ranks the suspects, from the coverage
spectrum of a traced run of the whole suite in which only those tests' failures count
(:func:`~longthink.domains.debugging.localise.trace`; ``--no-spectrum`` leaves it out) and the failure's stack
frames and names; the pack's project patch prompt shows the strong ones
(:func:`~longthink.domains.debugging.localise.strong`), at most two; ``n_max`` samples are drawn ONCE in one
batched, seeded call (cached under ``benchmarks/cache/debugging_projects/``: reruns resume) and each is applied and
run in the sandbox. Reported:

- ``repair_rate_n<k>`` (k = 1, 2, 4, 8, 16): best-of-k selected by the test reward (the pack's reward: a mutant is
  repaired when one of the k passes every selected test), the unbiased estimate over all k-subsets of the n_max
  samples, with 95% bootstrap intervals over mutants;
- ``right_file_share`` / ``right_function_share``: of the usable patches (those that parse and fit the code), the
  share that change the mutated file / function; ``localised_top1``: the share of mutants whose first suspect is
  the mutated function, ``localised_shown`` whose shown suspects hold it; both also without the spectrum
  (``localised_top1_frames``, ``localised_shown_frames``: the ranking's own ablation, from the same run);
- tokens per sample, failed candidates, by library and by mutation kind.

``--quick`` takes 2 mutants of each library and 4 samples; ``--localise-only`` measures localisation alone (no
model: ``debugging_projects_localise.json``). Results go to ``benchmarks/results/debugging_projects.json``
(``debugging_projects_quick.json`` for ``--quick``), with their provenance.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import io
import json
import os
import random
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debugging import bootstrap, ks_for, pass_at_k, rate, seed_for
from provenance import jsonable, provenance

from longthink.domains.debugging.localise import ranked, strong, suspicion, trace
from longthink.domains.debugging.mutate import KINDS, MutationKind, mutate, pick
from longthink.domains.debugging.repair import PatchReader, RepairSettings, TestScorer, patch_prompt, prompt_suspects
from longthink.domains.debugging.source import DebugInput, function_source
from longthink.errors import BackendError, ConfigError
from longthink.llm.base import LLM
from longthink.llm.cache import CachedLLM
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Problem
from longthink.tools.sandbox import Sandbox, SandboxLimits, TestReport, run_project

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"
CONFIG = ("setup.cfg", "tox.ini", "pyproject.toml", "pytest.ini", "conftest.py")
SKIP_DIRS = ("docs", "doc", "bench", "benchmarks", "examples", "__pycache__")


@dataclass(frozen=True)
class Library:
    """A library whose sdist ships its tests: its name and version (the sdist is ``{name}-{version}.tar.gz``)."""

    name: str
    version: str

    @property
    def sdist(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


LIBRARIES = (Library("toolz", "1.2.0"), Library("funcy", "2.1"), Library("cachetools", "8.0.0"))


@dataclass(frozen=True)
class Settings:
    """Everything one run depends on (the one options object)."""

    model: str = "qwen2.5-coder-0.5b-instruct"
    threads: int = 1
    libraries: tuple[Library, ...] = LIBRARIES
    per_library: int = 14
    n_max: int = 16
    max_tokens: int = 320
    temperature: float = 0.8
    seed: int = 0
    boots: int = 2000
    shown: int = 2
    sdists: Path = CACHE / "sdists"
    out: Path = RESULTS
    cache: Path = CACHE
    quick: bool = False
    spectrum: bool = True
    localise_only: bool = False


# -- data -------------------------------------------------------------------------------------------------------
def read_sdist(path: Path) -> dict[str, str]:
    """The Python files and test configuration of an sdist, by their path inside it (its top folder removed).
    Only regular files are read; nothing is extracted to disk."""
    if not path.is_file():
        raise ConfigError(f"missing sdist {path}: run `.venv/bin/pip download --no-deps --no-binary :all: "
                          f"{path.name.removesuffix('.tar.gz').replace('-', '==', 1)} -d {path.parent}` "
                          "(.ci/run does)", field="sdists")  # fmt: skip
    files: dict[str, str] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts[1:]
            if not member.isfile() or not parts or ".." in parts:
                continue
            rel = "/".join(parts)
            keep = rel.endswith(".py") or parts[-1] in CONFIG
            if not keep or rel == "setup.py" or any(p in SKIP_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                files[rel] = io.TextIOWrapper(handle, encoding="utf-8").read()
    return files


def is_test_file(path: str) -> bool:
    parts = path.split("/")
    return parts[-1].startswith("test_") or any(p in ("tests", "test") for p in parts[:-1])


@dataclass
class Project:
    """A library ready for mutants: its files (failing test files left out) and its suite's size."""

    library: Library
    files: dict[str, str]
    tests: int
    dropped: list[str] = field(default_factory=list)
    suite_s: float = 0.0

    @property
    def code_files(self) -> list[str]:
        return [p for p in self.files if p.endswith(".py") and not is_test_file(p) and p.split("/")[-1] not in CONFIG]

    @property
    def test_files(self) -> list[str]:
        return [p for p in self.files if is_test_file(p) and p.split("/")[-1].startswith("test_")]


async def load_project(lib: Library, s: Settings, sandbox: Sandbox, log: Any) -> Project:
    files = read_sdist(s.sdists / lib.sdist)
    start = time.perf_counter()
    report = await run_project(sandbox, files)
    bad = {w.split("::")[0] for w, _ in report.collect_errors} | {o.name.split("::")[0] for o in report.failures()}
    kept = {p: t for p, t in files.items() if p not in bad}
    if bad:
        report = await run_project(sandbox, kept)
    if not report.all_passed:
        raise ConfigError(f"{lib.name}: its suite does not pass on the original code: {report.summary(400)}")
    log(f"{lib.name} {lib.version}: {report.total} tests pass in {report.run.duration_s:.1f} s; left out: "
        f"{', '.join(sorted(bad)) or 'none'}")  # fmt: skip
    return Project(lib, kept, report.total, sorted(bad), time.perf_counter() - start)


@dataclass(frozen=True)
class Mutant:
    key: str
    library: str
    path: str
    function: str
    kind: str
    what: str
    files: dict[str, str]
    select: tuple[str, ...]
    n_tests: int
    failing: tuple[str, ...]
    failure: str
    passed_before: int


def splice(original: str, function: str, site: Any) -> str | None:
    """``original`` with only ``function`` rewritten by the mutation (the rest of the file keeps its text)."""
    old = function_source(original, function)
    new = function_source(mutate(original, function, site), function)
    if old is None or new is None:
        return None
    indent = old[: len(old) - len(old.lstrip())]
    return original.replace(old, indent + new.rstrip("\n") + "\n", 1)


def functions_of(project: Project) -> list[tuple[str, str]]:
    out = []
    for path in project.code_files:
        tree = ast.parse(project.files[path])
        out += [(path, n.name) for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")]
    return out


async def make_mutants(project: Project, s: Settings, sandbox: Sandbox, log: Any) -> list[Mutant]:
    """One caught mutant per function, functions in a seeded order, kinds in rotation (see the module docstring)."""
    order = functions_of(project)
    random.Random(f"{s.seed}:{project.library.name}").shuffle(order)
    out: list[Mutant] = []
    for path, fn in order:
        if len(out) >= s.per_library:
            break
        want = KINDS[len(out) % len(KINDS)]
        for kind in (want, *[k for k in KINDS if k != want]):
            found = await _first_caught(project, path, fn, kind, s, sandbox)
            if found is not None:
                out.append(found)
                log(f"  mutant {found.key}: {found.kind} ({found.what}); {len(found.failing)} failing")
                break
    return out


async def _first_caught(
    project: Project, path: str, fn: str, kind: MutationKind, s: Settings, sandbox: Sandbox
) -> Mutant | None:
    original = project.files[path]
    key = f"{project.library.name}:{path}:{fn}"
    for site in pick(original, fn, key, seed=s.seed, kind=kind)[:3]:
        text = splice(original, fn, site)
        if text is None or text == original:
            continue
        files = {**project.files, path: text}
        report = await run_project(sandbox, files, expected=project.tests)
        if report.all_passed or report.error_kind in ("collection", "usage"):
            continue  # not caught, or the module no longer imports (no function to localise)
        failing = tuple(o.name for o in report.failures())
        select = tuple(sorted({n.split("::")[0] for n in failing}))
        shown = await run_project(sandbox, files, select=select)
        if shown.all_passed or not shown.total:
            continue
        return Mutant(key, project.library.name, path, fn, site.kind, site.what, files, select, shown.total,
                      tuple(o.name for o in shown.failures()), shown.summary(1500), shown.passed)  # fmt: skip
    return None


def debug_input(m: Mutant) -> DebugInput:
    code = tuple(p for p in m.files if p.endswith(".py") and not is_test_file(p) and p.split("/")[-1] not in CONFIG)
    tests = tuple(p for p in m.files if is_test_file(p) and p.split("/")[-1].startswith("test_"))
    return DebugInput(m.files, code, tests, select=m.select)


# -- the model --------------------------------------------------------------------------------------------------
def build_llm(s: Settings) -> LLM:
    from longthink.llm.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=max(s.n_max, 8))


@dataclass
class Pool:
    mutant: Mutant
    suspects: list[str] = field(default_factory=list)
    frames_only: list[str] = field(default_factory=list)
    traced: bool = False
    shown: int = 0
    shown_hit: bool = False
    shown_hit_frames: bool = False
    passed: list[bool] = field(default_factory=list)
    usable: list[bool] = field(default_factory=list)
    right_file: list[bool] = field(default_factory=list)
    right_function: list[bool] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    cached: bool = False
    wall_s: float = 0.0
    error: str | None = None


async def draw_pool(m: Mutant, llm: LLM | None, s: Settings, sandbox: Sandbox) -> Pool:
    """Localise (as the pack does: a traced run of the selected tests, then the ranking; the ranking without the
    spectrum alongside), then ``n_max`` patch samples in one seeded, cached call; each applied and tested."""
    inp = debug_input(m)
    traced = (await trace(sandbox, inp)).spectrum if s.spectrum else None
    scores = suspicion(inp, traced) if traced is not None else None
    ranking, frames = ranked(inp, m.failure, m.failing, scores), ranked(inp, m.failure, m.failing)
    shown = [f"{p}::{n}" for p, n in strong(ranking)][: s.shown]
    target = f"{m.path}::{m.function}"
    pool = Pool(m, suspects=[f"{p}::{n}" for (p, n), _ in ranking[:5]], shown=len(shown), traced=traced is not None,
                frames_only=[f"{p}::{n}" for (p, n), _ in frames[:5]], shown_hit=target in shown,
                shown_hit_frames=target in [f"{p}::{n}" for p, n in strong(frames)][: s.shown])  # fmt: skip
    if s.localise_only or llm is None:
        return pool
    prefer = tuple(dict.fromkeys(r.split("::")[0] for r in shown))
    problem = Problem(m.key, patch_prompt(inp, shown, m.failure), "code", max_tokens=s.max_tokens,
                      parser=PatchReader(inp, prefer, tuple(n for _, n in prompt_suspects(inp, shown))))  # fmt: skip
    ctx = SearchContext(llm=llm, seed=seed_for(s.seed, m.key), temperature=s.temperature, logprobs=False)
    hits = llm.hits if isinstance(llm, CachedLLM) else 0
    start = time.perf_counter()
    try:
        pack = RepairSettings()
        [cands] = await ctx.sample(problem, s.n_max, branches=[Branch(pack.prefix)], stop=pack.stop, strategy="pool")
    except BackendError as exc:
        pool.error = f"generation failed: {exc}"
        return pool
    pool.wall_s = time.perf_counter() - start
    pool.cached = isinstance(llm, CachedLLM) and llm.hits > hits
    scorer = TestScorer(inp, sandbox, expected=m.n_tests)
    scored = await ctx.score(problem, cands, scorer)
    original = m.files[m.path]
    for c in scored:
        report: TestReport | None = scorer.reports.get(c.id)
        changed = scorer.patched.get(c.id, {})
        pool.passed.append(bool(report and report.all_passed))
        pool.usable.append(c.id in scorer.patched)
        pool.right_file.append(m.path in changed)
        after = changed.get(m.path)
        pool.right_function.append(after is not None and function_source(after, m.function) != function_source(
            original, m.function))  # fmt: skip
        pool.tokens.append(c.completion_tokens)
        pool.prompt_tokens = max(pool.prompt_tokens, c.prompt_tokens)
    return pool


# -- statistics and the run -------------------------------------------------------------------------------------
def _share(flags: Sequence[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def localisation(pools: Sequence[Pool]) -> dict[str, Any]:
    """How often the mutated function is the first suspect, and among those shown to the model, with the pack's
    ranking and with the ranking without the coverage spectrum (stack frames and names only), side by side."""

    def target(p: Pool) -> str:
        return f"{p.mutant.path}::{p.mutant.function}"

    return {
        "localised_top1": _share([p.suspects[:1] == [target(p)] for p in pools]),
        "localised_top1_frames": _share([p.frames_only[:1] == [target(p)] for p in pools]),
        "localised_shown": _share([p.shown_hit for p in pools]),
        "localised_shown_frames": _share([p.shown_hit_frames for p in pools]),
        "traced_share": _share([p.traced for p in pools]),
    }


def summarise(pools: Sequence[Pool], s: Settings) -> dict[str, Any]:
    if s.localise_only:
        return {"summary": {"mutants": len(pools), "libraries": sorted({p.mutant.library for p in pools}),
                            **localisation(pools)}}  # fmt: skip
    ok = [p for p in pools if p.error is None and p.passed]
    n_max = min((len(p.passed) for p in ok), default=s.n_max)
    curve = []
    for k in ks_for(n_max):
        lo, hi = bootstrap(ok, k, s.boots, s.seed)
        curve.append({"n": k, "repair_rate": round(rate(ok, k), 4), "ci95": [round(lo, 4), round(hi, 4)]})
    by = {row["n"]: row["repair_rate"] for row in curve}
    usable = [(f, g) for p in ok for u, f, g in zip(p.usable, p.right_file, p.right_function, strict=True) if u]
    samples = [u for p in ok for u in p.usable]
    summary: dict[str, Any] = {
        "mutants": len(ok),
        "libraries": sorted({p.mutant.library for p in ok}),
        "samples_per_mutant": n_max,
        "repair_rate_n1": by.get(1, 0.0),
        f"repair_rate_n{n_max}": by.get(n_max, 0.0),
        "ratio": round(by.get(n_max, 0.0) / by[1], 2) if by.get(1) else None,
        "right_file_share": _share([f for f, _ in usable]),
        "right_function_share": _share([g for _, g in usable]),
        **localisation(ok),
        "failed_candidate_share": round(1 - sum(samples) / len(samples), 4) if samples else 0.0,
        "mean_completion_tokens": round(sum(t for p in ok for t in p.tokens) / max(1, len(samples)), 1),
        "mean_prompt_tokens": round(sum(p.prompt_tokens for p in ok) / max(1, len(ok)), 1),
    }
    for k in (4, 16):
        if k in by:
            summary[f"repair_rate_n{k}"] = by[k]
    groups: dict[str, dict[str, Any]] = {}
    for label, key in (("library", lambda p: p.mutant.library), ("kind", lambda p: p.mutant.kind)):
        for name in sorted({key(p) for p in ok}):
            group = [p for p in ok if key(p) == name]
            groups.setdefault(label, {})[name] = {"mutants": len(group), "n1": round(rate(group, 1), 4),
                                                  f"n{n_max}": round(rate(group, n_max), 4)}  # fmt: skip
    return {"summary": summary, "curve": curve, "by": groups}


def pool_json(p: Pool) -> dict[str, Any]:
    m = p.mutant
    return {
        "mutant": m.key, "library": m.library, "file": m.path, "function": m.function, "kind": m.kind,
        "mutation": m.what, "selected_tests": m.n_tests, "passed_before": m.passed_before,
        "suspects": p.suspects, "suspects_without_spectrum": p.frames_only, "traced": p.traced,
        "shown": p.shown, "shown_hit": p.shown_hit, "samples": len(p.passed), "repaired_samples": sum(p.passed),
        "usable_patches": sum(p.usable), "right_file": sum(p.right_file), "right_function": sum(p.right_function),
        "pass_at_1": round(pass_at_k(len(p.passed), sum(p.passed), 1), 4) if p.passed else 0.0,
        "mean_tokens": round(sum(p.tokens) / len(p.tokens), 1) if p.tokens else 0.0,
        "prompt_tokens": p.prompt_tokens, "cached": p.cached, "wall_s": round(p.wall_s, 1), "error": p.error,
    }  # fmt: skip


async def run(s: Settings, llm: LLM | None = None) -> dict[str, Any]:
    """The benchmark (see the module docstring); ``llm`` replaces the embedded model (tests pass a double)."""

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sandbox = Sandbox(SandboxLimits(wall_s=60.0, cpu_s=30, memory_mb=1024), concurrency=2)
    started = time.perf_counter()
    projects = [await load_project(lib, s, sandbox, log) for lib in s.libraries]
    mutants: list[Mutant] = []
    for project in projects:
        mutants += await make_mutants(project, s, sandbox, log)
    log(f"{len(mutants)} caught mutants in {time.perf_counter() - started:.0f} s (sandbox: {sandbox.kind})")
    model = llm if llm is not None or s.localise_only else CachedLLM(build_llm(s), s.cache / "debugging_projects")
    name = "debugging_projects" + ("_quick" if s.quick else "") + ("_localise" if s.localise_only else "")
    s.out.mkdir(parents=True, exist_ok=True)
    pools: list[Pool] = []

    def write(final: bool) -> dict[str, Any]:
        result = {"curve": [], "by": {}, **summarise(pools, s)}
        settings = jsonable({k: v for k, v in vars(s).items() if k not in ("out", "cache", "sdists")})
        settings["model"] = s.model if llm is None else type(llm).__name__
        result["settings"] = {**settings, "sandboxed_by": sandbox.kind}
        result["provenance"] = provenance(result["settings"])
        result["libraries"] = [{"name": p.library.name, "version": p.library.version, "tests": p.tests,
                                "left_out": p.dropped, "suite_s": round(p.suite_s, 1)} for p in projects]  # fmt: skip
        result["mutants"] = [pool_json(p) for p in pools]
        result["complete"] = final
        result["elapsed_s"] = round(time.perf_counter() - started, 1)
        (s.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        return result

    for i, m in enumerate(mutants):
        pool = await draw_pool(m, model, s, sandbox)
        pools.append(pool)
        top = pool.suspects[0] if pool.suspects else "none"
        log(
            f"[{i + 1}/{len(mutants)}] {m.key} {m.kind} ({m.what}): {sum(pool.passed)}/{len(pool.passed)} "
            f"repaired, suspect {top}{' (cached)' if pool.cached else ''} {pool.wall_s:.0f} s {pool.error or ''}"
        )
        write(False)
    return write(True)


def print_table(result: dict[str, Any]) -> None:
    s = result["summary"]
    local = (f"localised top-1 {s['localised_top1']:.3f} (without the spectrum {s['localised_top1_frames']:.3f}), "
             f"among those shown {s['localised_shown']:.3f} ({s['localised_shown_frames']:.3f})")  # fmt: skip
    if "right_file_share" not in s:
        print(f"\nLocalisation on real libraries: {s['mutants']} mutants ({', '.join(s['libraries'])}): {local}")
        return
    print(f"\nDebugging real libraries: {s['mutants']} mutants ({', '.join(s['libraries'])}) x "
          f"{s['samples_per_mutant']} samples")  # fmt: skip
    print(f"{'N':>4} {'repair rate':>12} {'95% CI':>18}")
    for row in result["curve"]:
        lo, hi = row["ci95"]
        print(f"{row['n']:>4} {row['repair_rate']:>12.3f} {f'[{lo:.3f}, {hi:.3f}]':>18}")
    print(f"right file {s['right_file_share']:.3f}, right function {s['right_function_share']:.3f}; {local}; "
          f"failed candidates {s['failed_candidate_share']:.1%}; tokens per sample "
          f"{s['mean_completion_tokens']} (prompt {s['mean_prompt_tokens']})")  # fmt: skip
    for label, groups in result["by"].items():
        for name, row in groups.items():
            print(f"  {label} {name:<12} {row}")


def parse(argv: Sequence[str] | None = None) -> Settings:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="2 mutants of each library x 4 samples")
    ap.add_argument("--model", default=Settings.model)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("LONGTHINK_N_THREADS", "1")))
    ap.add_argument("--libraries", default=",".join(lib.name for lib in LIBRARIES), help="comma-separated names")
    ap.add_argument("--per-library", type=int, default=Settings.per_library)
    ap.add_argument("--n-max", type=int, default=Settings.n_max)
    ap.add_argument("--max-tokens", type=int, default=Settings.max_tokens)
    ap.add_argument("--temperature", type=float, default=Settings.temperature)
    ap.add_argument("--seed", type=int, default=Settings.seed)
    ap.add_argument("--sdists", type=Path, default=Settings.sdists)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--no-spectrum", action="store_true", help="localise without the traced run's coverage spectrum")
    ap.add_argument("--localise-only", action="store_true", help="measure localisation only: no model, no samples")
    a = ap.parse_args(argv)
    known = {lib.name: lib for lib in LIBRARIES}
    names = [n.strip() for n in a.libraries.split(",") if n.strip()]
    if unknown := [n for n in names if n not in known]:
        raise ConfigError(f"unknown libraries {unknown}: choose from {sorted(known)}", field="libraries")
    if a.quick:
        a.per_library, a.n_max = min(a.per_library, 2), min(a.n_max, 4)
    return Settings(a.model, a.threads, tuple(known[n] for n in names), a.per_library, a.n_max, a.max_tokens,
                    a.temperature, a.seed, sdists=a.sdists, out=a.out, cache=a.cache, quick=a.quick,
                    spectrum=not a.no_spectrum, localise_only=a.localise_only)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    result = asyncio.run(run(parse(argv)))
    print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
