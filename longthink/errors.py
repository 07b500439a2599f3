"""Errors by whose fault they are (see STYLE.md, practice 10).

- ``ConfigError``: the caller asked for something invalid (bad setting, unknown name, bad parameter).
- ``BackendError``: a model backend failed; ``retryable`` says whether trying again may help.
- ``ModelNotReady``: a known model's files are missing or fail their checksum.
- ``BudgetExceeded`` / ``SearchFailed``: raised by the search layer.

A model output that fails to parse is *data*, never an exception.
"""

from __future__ import annotations


class LongthinkError(Exception):
    """Base class of every error longthink raises on purpose."""


class ConfigError(LongthinkError, ValueError):
    """The caller's configuration or arguments are invalid. The message names the culprit."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BackendError(LongthinkError):
    """A model backend failed to produce completions.

    ``endpoint`` names what failed (a URL, a model path, an engine) and ``retryable`` tells whether the
    same request may succeed later (overload, timeout, connection lost) or not (bad request, auth).
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        retryable: bool,
        status: int | None = None,
    ) -> None:
        kind = "retryable" if retryable else "not retryable"
        super().__init__(f"{endpoint}: {message} ({kind})")
        self.endpoint = endpoint
        self.retryable = retryable
        self.status = status


class ModelNotReady(LongthinkError):
    """A model cannot be loaded: its files are missing, incomplete or fail their checksum."""


class BudgetExceeded(LongthinkError):
    """A compute budget would be exceeded by the next request."""


class SearchFailed(LongthinkError):
    """A search strategy could not produce any usable candidate."""
