"""A tiny name -> factory registry, shared by models, optimizers, strategies and losses.

Registries replace if/elif chains: a new optimizer or strategy is one decorated function,
and an unknown name is a `DermkdError` that lists the known ones.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from typing import Generic, TypeVar

from dermkd.errors import DermkdError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                warnings.warn(f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=2)
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise DermkdError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    @contextlib.contextmanager
    def scoped(self, name: str, obj: T) -> Iterator[T]:
        """`obj` registered as `name` inside the block only (a plug-in tried out, a test)."""
        before = self._items.get(name)
        self._items[name] = obj
        try:
            yield obj
        finally:
            if before is None:
                del self._items[name]
            else:
                self._items[name] = before

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def declared_kwargs(fn: Callable[..., Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that `fn` declares as keyword parameters: a factory takes
    plain keyword arguments and says by its signature which settings it reads."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in values.items() if k in params}
