"""``longthink serve`` (the HTTP service) and ``longthink keys`` (its API keys): parse, then hand over."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Annotated, Any

import typer

from longthink.cli.dialogue import console
from longthink.errors import ConfigError

keys_app = typer.Typer(help="API keys of the HTTP service: create, list, revoke.", no_args_is_help=True)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class JsonLogs(logging.Formatter):
    """One JSON object per log line, with the run id and the other ``extra`` fields a record carries."""

    _plain = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        line.update({k: v for k, v in record.__dict__.items() if k not in self._plain})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _log_setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogs())
    for name in ("longthink", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def _jobs() -> Any:
    from longthink.config import load_settings
    from longthink.service.jobs import JobStore

    return JobStore(str(load_settings().resolved_db_url))


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", "-p")] = 8000,
        workers: Annotated[int, typer.Option("--workers", "-w", help="Runs executed at once.", min=1)] = 4,
        llm: Annotated[
            str | None, typer.Option("--llm", help="A backend factory 'module:callable' instead of the model.")
        ] = None,
        model: Annotated[str | None, typer.Option("--model", "-m")] = None,
        endpoint: Annotated[list[str] | None, typer.Option("--endpoint", "-e")] = None,
        threads: Annotated[int | None, typer.Option("--threads")] = None,
        require_auth: Annotated[
            bool | None,
            typer.Option("--require-auth/--no-auth", help="Default: keys are required once any key exists."),
        ] = None,
        cors_origin: Annotated[list[str] | None, typer.Option("--cors-origin", help="Allow this origin.")] = None,
        max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", min=1024)] = 1 << 20,
        max_request_chars: Annotated[
            int, typer.Option("--max-request-chars", min=1, help="Longest request (with its files) a run may take.")
        ] = 100_000,
        webhook_secret: Annotated[
            str | None,
            typer.Option("--webhook-secret", envvar="LONGTHINK_WEBHOOK_SECRET", help="Signs webhook bodies."),
        ] = None,
        artifacts_dir: Annotated[
            str | None,
            typer.Option("--artifacts-dir", envvar="LONGTHINK_ARTIFACTS_DIR", help="Where runs write their files."),
        ] = None,
        max_queue: Annotated[int, typer.Option("--max-queue", min=1, help="Runs waiting at most.")] = 1000,
        log_level: Annotated[str, typer.Option("--log-level")] = "info",
    ) -> None:
        """Serve longthink over HTTP: runs with streamed events, an OpenAI-compatible endpoint, /metrics."""
        try:
            import uvicorn

            from longthink.service.app import ServiceConfig, create_app
        except ImportError as exc:
            raise ConfigError(f"the service needs the server extra: pip install 'longthink[server]' ({exc})") from None
        from longthink.config import load_settings

        settings = load_settings(model=model, endpoints=endpoint or None, n_threads=threads)
        config = ServiceConfig(
            workers=workers, require_auth=require_auth, cors_origins=tuple(cors_origin or ()),
            max_body_bytes=max_body_bytes, max_request_chars=max_request_chars, webhook_secret=webhook_secret,
            artifacts_dir=artifacts_dir, max_queue=max_queue,
        )  # fmt: skip
        jobs = _jobs()
        try:
            open_access = require_auth is False or (require_auth is None and not jobs.has_keys())
        finally:
            jobs.close()
        if open_access and host not in LOOPBACK:
            raise ConfigError(
                f"refusing to listen on {host} without API keys: create one with `longthink keys create TENANT` "
                "(or listen on 127.0.0.1)",
                field="host",
            )
        backend = None
        if llm is not None:
            from longthink.llm.registry import llm_from_factory

            backend = llm_from_factory(llm)
        _log_setup(log_level)
        app = create_app(settings, config=config, llm=backend)
        uvicorn.run(app, host=host, port=port, log_config=None, log_level=log_level, timeout_graceful_shutdown=5)

    app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Argument(help="The tenant the key acts for.")],
    token_cap: Annotated[
        int | None, typer.Option("--token-cap", help="Tokens the tenant may spend in all (budgets count).", min=1)
    ] = None,
    label: Annotated[str | None, typer.Option("--label")] = None,
) -> None:
    """Create an API key (printed once; only its hash is stored)."""
    if not tenant.strip():
        raise ConfigError("the tenant must be a non-empty name", field="tenant")
    jobs = _jobs()
    try:
        key = jobs.create_key(tenant.strip(), token_cap=token_cap, label=label)
    finally:
        jobs.close()
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """The keys (tenant, label, cap, id = the first 8 hex digits of the key's hash; never the key)."""
    jobs = _jobs()
    try:
        rows = jobs.keys()
    finally:
        jobs.close()
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        state = "revoked" if r["revoked"] else "active"
        cap = r["token_cap"] if r["token_cap"] is not None else "no cap"
        console.print(f"{r['id']}  {r['tenant']}  {r['label'] or ''}  cap={cap}  {state}  {when}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id from `longthink keys list`.")]) -> None:
    """Revoke a key by its id."""
    jobs = _jobs()
    try:
        n = jobs.revoke(key_id)
    finally:
        jobs.close()
    if n == 0:
        raise ConfigError(f"no key with id {key_id!r} (ids have 8 hex digits: see `longthink keys list`)", field="id")
    console.print(f"revoked {n} key(s)")
