"""Configs as plain data: the one ``to_dict``/``from_dict`` every config dataclass of the book shares.

Why its own module: it is generic — ``ModelConfig`` (the model's shape),
``TrainConfig`` (how to train) and any later config use it — and a checkpoint stores
configs as plain dicts, so they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

__all__ = ["PlainConfig"]

_C = TypeVar("_C", bound="PlainConfig")


class PlainConfig:
    """``to_dict``/``from_dict`` for a config dataclass (``ModelConfig``, ``TrainConfig``).

    Plain types only, so a checkpoint loads with ``torch.load(weights_only=True)``;
    an unknown field is an error that lists the known ones, never silently dropped.
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict needs a mapping of field names, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        return cls(**data)
