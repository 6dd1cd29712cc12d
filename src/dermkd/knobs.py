"""The config's fields seen from outside: one table of dotted paths, flags, types and
help (`knobs()`), read by the CLI (`dermkd.cli.knobs`) and the study grids, and the
dotted-path helpers both use. Built from the `knob` metadata of `dermkd.config`."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from dermkd.config import SECTIONS, RunConfig

PANELS = {"data": "Data", "model": "Model", "teacher": "Distillation", "kd": "Distillation",
          "optim": "Optimisation", "train": "Run", "augment": "Data", "": "Run"}


@dataclass(frozen=True)
class Knob:
    """One config field seen from outside: its dotted path, flags, type and help."""

    path: str  # "kd.alpha"
    flags: tuple[str, ...]  # ("--alpha",) or ("--refit/--no-refit",)
    type: Any  # the field's resolved type hint
    help: str
    choices: str | None  # registry kind, or None
    parse: str | None
    panel: str

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def names(self) -> tuple[str, ...]:
        """The bare option names ("alpha", "kd_multiplier"), the short names study axes use."""
        return tuple(f.split("/")[0].removeprefix("--").replace("-", "_") for f in self.flags)


def knobs() -> list[Knob]:
    """Every flag-bearing field of `RunConfig`, in declaration order: the one table the CLI
    and the study grids read."""
    hints = typing.get_type_hints(RunConfig)
    out = [_knob("", f, hints[f.name], {}) for f in dataclasses.fields(RunConfig) if "help" in f.metadata]
    for section in dataclasses.fields(RunConfig):
        if section.name in SECTIONS:
            cls = hints[section.name]
            out += [_knob(section.name, f, typing.get_type_hints(cls)[f.name], section.metadata)
                    for f in dataclasses.fields(cls) if "help" in f.metadata]
    _unique_names(out)
    return out


def _unique_names(table: list[Knob]) -> None:
    """Flags and study axes find a field by its bare name, so two fields with one name would
    silently shadow each other (train.strategy once hid kd.strategy): a programming error."""
    seen: dict[str, str] = {}
    for k in table:
        for name in k.names:
            if name in seen:
                raise RuntimeError(f"option name {name!r} is used by both {seen[name]} and {k.path}")
            seen[name] = k.path


def _knob(section: str, f: dataclasses.Field, hint: Any, section_meta: Any) -> Knob:
    meta = f.metadata
    flags = meta["flag"] or f"--{f.name.replace('_', '-')}"
    flags = (flags,) if isinstance(flags, str) else tuple(flags)
    prefix = section_meta.get("prefix", "")
    flags = section_meta.get("flags", {}).get(f.name) or tuple(
        "/".join("--" + prefix + part.removeprefix("--") for part in fl.split("/")) for fl in flags)
    return Knob(f"{section}.{f.name}" if section else f.name, flags, hint, meta["help"], meta["choices"],
                meta["parse"], meta["panel"] or PANELS[section])


def set_path(tree: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set dotted `path` ("kd.alpha") in a nested override dict, in place; returns `tree`."""
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return tree


def flat_paths(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as {"kd.alpha": 0.9, ...}: the dotted path of every leaf."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flat_paths(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def get_path(cfg: Any, path: str) -> Any:
    """The value at dotted `path` of a config object."""
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg
