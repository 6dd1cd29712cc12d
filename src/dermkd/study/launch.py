"""The study backend by name: imports the modules that register them (`study.backends`),
so that the registry itself imports neither (no import cycle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dermkd.study.ray_backend  # noqa: F401  (registers "ray"; Ray itself is imported when it runs)
import dermkd.study.runner  # noqa: F401  (registers "local")
from dermkd.study.backends import BACKENDS


def backend(name: str) -> Callable[..., list[dict[str, Any]]]:
    return BACKENDS.get(name)
