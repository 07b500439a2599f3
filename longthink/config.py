"""One settings object, read from (highest priority first) keyword arguments, ``LONGTHINK_*`` environment
variables, a TOML file, and defaults.

The TOML file is ``$LONGTHINK_CONFIG`` if set, else ``config.toml`` in the user config directory
(``~/.config/longthink/config.toml`` on Linux). Validation has no side effects: it creates no directory and
loads no model. Errors name the bad field and the environment variable that sets it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from longthink.errors import ConfigError
from longthink.models import DEFAULT_MODEL

BackendName = Literal["auto", "llama_cpp", "openai_compat", "vllm_engine", "transformers"]

ENV_PREFIX = "LONGTHINK_"


def config_file() -> Path:
    """Where the TOML settings file is looked for."""
    env = os.environ.get("LONGTHINK_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("longthink")) / "config.toml"


def default_db_url() -> str:
    """The default run store: a SQLite file in the user data directory (computed, nothing created)."""
    import platformdirs

    return f"sqlite:///{Path(platformdirs.user_data_dir('longthink')) / 'runs.db'}"


class Settings(BaseSettings):
    """Everything longthink can be configured with. Field ``x`` is set by ``LONGTHINK_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    backend: BackendName = Field(
        "auto",
        description="Which backend serves the model; 'auto' = openai_compat when endpoints are set, "
        "else the embedded llama_cpp engine.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="A known model name (see `longthink models`), a GGUF path, a Hugging Face directory, a folder "
        "written by `longthink train`, or the served model name on an endpoint.",
    )
    judge_model: str | None = Field(
        None,
        description="A known model name, a GGUF path or a served model that judges candidates and plans (the "
        "reward model), served by the same backend with the same settings; None = the policy model judges.",
    )
    endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Base URLs of OpenAI-compatible servers (replicas), comma-separated in the environment.",
    )
    api_key: SecretStr | None = Field(None, description="API key for the endpoints (else OPENAI_API_KEY).")
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads for the embedded engine.")
    n_ctx: int = Field(8192, ge=256, description="Context window (KV cells) of the embedded engine.")
    max_sequences: int = Field(16, ge=1, le=256, description="Sequences decoded together by local engines.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout for endpoints.")
    max_retries: int = Field(3, ge=0, le=20, description="Retries of a failed request to an endpoint.")
    max_concurrency: int = Field(32, ge=1, description="In-flight requests to endpoints at most.")
    device: str = Field("cpu", description="Device for the transformers / vLLM engines.")
    cache_dir: Path | None = Field(None, description="Where assembled models are cached.")
    db_url: str | None = Field(
        None,
        description="Where runs are stored: a SQLAlchemy URL (sqlite:///path.db, "
        "postgresql+psycopg://user@host/db); default: runs.db in the user data directory.",
    )

    @field_validator("endpoints", mode="before")
    @classmethod
    def _split_endpoints(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @field_validator("db_url")
    @classmethod
    def _check_db_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if scheme not in ("sqlite", "postgresql", "memory"):
            raise ValueError(f"needs a sqlite://, postgresql:// or memory:// URL, not {scheme or value[:20]!r}://...")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("judge_model")
    @classmethod
    def _check_judge_model(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, env_settings, toml

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or default_db_url()

    @property
    def resolved_backend(self) -> BackendName:
        if self.backend != "auto":
            return self.backend
        return "openai_compat" if self.endpoints else "llama_cpp"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings; any problem becomes a ``ConfigError`` naming field and variable."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        first: str | None = None
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            first = first or name
            where = f"{name} (env {ENV_PREFIX}{name.upper()})"
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems), field=first) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML file
        raise ConfigError(f"cannot read the settings file {config_file()}: {exc}", field="config") from exc
