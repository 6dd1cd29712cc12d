"""Values read from YAML or JSON checked against the config's type hints.

A YAML file can say `epochs: "three"`, `epochs: 1.7` or `epochs: true`; each must be a
one-line error naming the key, the expected type and the value, not a traceback later (or,
for `true`, one silent epoch). `bool` is not an `int` here, an `int` is a `float`, and a
list stands for a tuple.
"""

from __future__ import annotations

import dataclasses
import typing
from types import NoneType, UnionType
from typing import Any, Literal

from dermkd.errors import DermkdError


def matches(value: Any, hint: Any) -> bool:
    """Whether `value` is of type `hint` (the config's hints: scalars, Optional/unions,
    Literal, list[T], tuple[T, ...])."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis and len(value) != len(args):
            return False
        items = args[:1] * len(value) if origin is list or (args and args[-1] is Ellipsis) else args
        return all(matches(v, a) for v, a in zip(value, items))
    if hint is NoneType:
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def describe(hint: Any) -> str:
    """A hint as a user reads it: "int", "int or 'all'", "float or none"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {describe(args[0])}" if args else "a list"
    return "none" if hint is NoneType else getattr(hint, "__name__", str(hint))


def check_fields(obj: Any, prefix: str = "") -> None:
    """Every field of dataclass `obj` (nested ones too) against its type hint."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, path = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_fields(value, path + ".")
        elif not matches(value, hints[f.name]):
            raise DermkdError(f"bad config value: {path} must be {describe(hints[f.name])}, not "
                              f"{type(value).__name__} {value!r}")
