"""The web view at ``/ui``: a runs list, two runs side by side (``/ui/compare?run=A&run=B``) and a run page (its
plan as a DAG, each step's search tree or pool with scores and votes, the chosen path, tool calls, the budget over
time, artifacts), live over the SSE stream.

The pages are static HTML, CSS and a small script (``ui/``, no framework, nothing fetched from a CDN): everything
they show comes from the service's JSON and SSE endpoints, with the API key the user types kept in the browser. The
shells hold no data, so they need no key.
"""

from __future__ import annotations

import re
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from longthink.service.http import ApiError

_ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _asset(name: str) -> str:
    return resources.files("longthink.service").joinpath("ui", name).read_text(encoding="utf-8")


def add_ui_routes(app: FastAPI) -> None:
    pages = {name: _asset(name) for name in ("runs.html", "run.html", "compare.html")}
    assets = {name: _asset(name) for name in _ASSETS}

    @app.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    async def runs_page() -> HTMLResponse:
        return HTMLResponse(pages["runs.html"])

    @app.get("/ui/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    async def run_page(run_id: str) -> HTMLResponse:
        if not _RUN_ID.fullmatch(run_id):
            raise ApiError(404, "no such run page", code="run_not_found")
        return HTMLResponse(pages["run.html"].replace("{{RUN_ID}}", run_id))

    @app.get("/ui/compare", response_class=HTMLResponse, include_in_schema=False)
    async def compare_page() -> HTMLResponse:
        return HTMLResponse(pages["compare.html"])

    @app.get("/ui/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in assets:
            raise ApiError(404, f"no asset {name!r}", code="not_found")
        return Response(assets[name], media_type=_ASSETS[name], headers={"Cache-Control": "no-cache"})


__all__ = ["add_ui_routes"]
