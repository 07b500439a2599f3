"""The newcomer's install gives what the README then shows: the quickstart's extras cover every extra a domain pack's
install hint names, and none that pulls a CUDA build."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
EXTRAS: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def expand(names: set[str]) -> set[str]:
    """The extras ``names`` install, following ``longthink[...]`` references to our own extras."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in EXTRAS[name]:
            own = re.fullmatch(r"longthink\[([\w,\s-]+)\]", req.strip())
            if own:
                todo += [x.strip() for x in own.group(1).split(",")]
    return seen


def quickstart_extras() -> set[str]:
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", README, flags=re.S)
    assert block is not None
    [install] = re.findall(r'pip install [^&]*-e "\.\[([\w,]+)\]"', block.group(1))
    return set(install.split(","))


def test_the_quickstart_installs_every_pack_the_readme_shows() -> None:
    installed = expand(quickstart_extras())
    hinted = set()
    for path in (ROOT / "domains").rglob("*.py"):
        hinted |= set(re.findall(r"longthink\[(\w+)\]", path.read_text()))
    assert "routing" in hinted  # the routing pack's solver, readers and maps say where they come from
    assert hinted <= installed, f"a pack needs {sorted(hinted - installed)}, which the quickstart does not install"
    assert {"embedded", "judge", "routing"} <= installed
    assert "--domain routing" in README  # ...and the README shows the routing pack


def test_the_all_extra_pulls_no_cuda_build() -> None:
    packages = {re.split(r"[<>=\[;\s]", req, maxsplit=1)[0].lower() for name in expand({"all"}) for req in EXTRAS[name]}
    assert not packages & {"torch", "vllm", "transformers", "ray"}


def test_ci_installs_the_all_extra_and_the_test_extras() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    [extras] = re.findall(r'pip install [^\n]*-e "\.\[([\w,]+)\]"', ci)
    assert expand(quickstart_extras()) <= expand(set(extras.split(",")))
    assert {"dev", "transformers"} <= set(extras.split(","))
