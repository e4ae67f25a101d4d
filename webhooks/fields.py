"""Typed access to fields of provider payloads: a wrong or missing field is a PayloadError.

Messages name the field, never its value: they end up in logs and 400 answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from webhooks.errors import PayloadError

T = TypeVar("T")


def optional(obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T | None:
    """`obj[key]` if present and not null, checked against `kind` (bool never passes for int)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PayloadError(f"{where}.{key} has the wrong type")
    return value


def require(obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    value = optional(obj, key, kind, where)
    if value is None or value == "":
        raise PayloadError(f"{where}.{key} is missing")
    return value


def as_dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where} is not an object")
    return value
