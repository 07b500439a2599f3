"""The one JSON codec of the store: every backend writes JSON fields (event data, plans, spend, tool
arguments) through :func:`dumps`, so they read back the same everywhere.

Values JSON cannot hold are converted, never rejected: non-finite floats become ``null``, NUL characters
become U+FFFD (PostgreSQL rejects both), dataclasses and pydantic models become objects, tuples and sets
become arrays, and anything else its ``str()``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if isinstance(obj, Mapping):
        return dict(obj)
    return str(obj)


_STRICT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_default, separators=(",", ":"))


def _sanitize(obj: Any) -> Any:
    if isinstance(obj, str):
        return obj.replace("\x00", "\ufffd")
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {_sanitize(str(k)): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_sanitize(v) for v in obj]
    if (dataclasses.is_dataclass(obj) and not isinstance(obj, type)) or callable(getattr(obj, "model_dump", None)):
        return _sanitize(_default(obj))
    return obj


def dumps(obj: Any) -> str:
    try:
        text = _STRICT.encode(obj)
    except ValueError:  # a NaN or an infinity somewhere
        return _STRICT.encode(_sanitize(obj))
    # A NUL character (escaped as \u0000; a cheap check that may also hit an escaped backslash before "u0000").
    return _STRICT.encode(_sanitize(obj)) if "\\u0000" in text else text


def event_data(event: Any) -> str:
    """:func:`dumps` of a typed event's ``data`` (its own fields), serialised by pydantic in one pass: the same
    JSON values, at a fraction of the cost (the store's hot path). pydantic writes non-finite floats as ``null``
    already; a NUL character or a lone surrogate (which pydantic refuses) takes the general path."""
    try:
        text: str = event.model_dump_json(exclude=_EVENT_ENVELOPE)
    except ValueError:  # pydantic's serialisation error (a lone surrogate)
        return dumps(event.data)
    return dumps(event.data) if "\\u0000" in text else text


_EVENT_ENVELOPE = {"kind", "run_id", "seq", "ts", "step_id"}


def loads(text: str | bytes) -> Any:
    return json.loads(text)


def roundtrip(obj: Any) -> Any:
    """What ``obj`` reads back as after being stored as JSON (the memory store keeps this)."""
    return None if obj is None else loads(dumps(obj))
