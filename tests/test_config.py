"""Settings: sources, priorities, validation messages that name the culprit, no side effects."""

from __future__ import annotations

from pathlib import Path

import pytest

from longthink.config import load_settings
from longthink.errors import ConfigError
from longthink.llm.registry import build_llm


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("LONGTHINK_MODEL", "LONGTHINK_ENDPOINTS", "LONGTHINK_BACKEND", "LONGTHINK_N_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LONGTHINK_CONFIG", str(tmp_path / "config.toml"))


def test_defaults_pick_the_embedded_engine() -> None:
    s = load_settings()
    assert s.model == "qwen2.5-coder-0.5b-instruct"
    assert s.resolved_backend == "llama_cpp"


def test_env_then_file_then_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('model = "smollm2"\nn_threads = 3\nendpoints = ["http://a:1/v1"]\n')
    s = load_settings()
    assert (s.model, s.n_threads, s.endpoints) == ("smollm2", 3, ["http://a:1/v1"])
    assert s.resolved_backend == "openai_compat"
    monkeypatch.setenv("LONGTHINK_N_THREADS", "2")
    monkeypatch.setenv("LONGTHINK_ENDPOINTS", "http://x:1/v1, http://y:2/v1")
    s = load_settings()
    assert s.n_threads == 2 and s.endpoints == ["http://x:1/v1", "http://y:2/v1"]
    assert load_settings(n_threads=5).n_threads == 5  # explicit arguments win


def test_bad_values_name_the_field_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTHINK_N_THREADS", "zero")
    with pytest.raises(ConfigError, match=r"n_threads \(env LONGTHINK_N_THREADS\)") as info:
        load_settings()
    assert info.value.field == "n_threads"
    monkeypatch.delenv("LONGTHINK_N_THREADS")
    with pytest.raises(ConfigError, match="endpoints.*not an http"):
        load_settings(endpoints=["ftp://nope"])
    with pytest.raises(ConfigError, match="backend"):
        load_settings(backend="tensorrt")
    with pytest.raises(ConfigError, match="bogus"):
        load_settings(bogus=1)


def test_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("model = [unclosed\n")
    with pytest.raises(ConfigError, match="config.toml"):
        load_settings()


def test_validation_has_no_side_effects(tmp_path: Path) -> None:
    cache = tmp_path / "not-created"
    s = load_settings(cache_dir=cache, model="smollm2")
    assert s.cache_dir == cache and not cache.exists()


def test_openai_backend_without_endpoint_is_refused() -> None:
    with pytest.raises(ConfigError, match="LONGTHINK_ENDPOINTS"):
        build_llm(load_settings(backend="openai_compat"))


def test_unknown_model_is_refused_before_loading() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        build_llm(load_settings(model="does-not-exist"))
