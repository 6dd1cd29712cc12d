"""Options shared by the run commands that are not config fields, and the one way a
command turns its flags into a `RunConfig`: defaults <- profile <- --config <- flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.console import Console

from dermkd.config import RunConfig
from dermkd.io import load_yaml
from dermkd.profiles import PROFILES, build_config

Profile = Annotated[str, typer.Option(help=f"Settings profile: {', '.join(PROFILES)} (flags override it; the "
                                           "defaults shown are this command's default profile's).",
                                      rich_help_panel="Run")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="YAML of config overrides (e.g. a run's "
                                                                     "config.yaml).", rich_help_panel="Run")]
Fresh = Annotated[bool, typer.Option("--fresh", help="Retrain even if a finished or partial run exists.",
                                     rich_help_panel="Run")]
Extend = Annotated[bool, typer.Option("--extend", help="A finished run given more --epochs (and nothing else "
                                                       "changed) trains on from its last checkpoint.",
                                      rich_help_panel="Run")]
PrintConfig = Annotated[bool, typer.Option("--print-config", help="Print the fully resolved config (YAML) and "
                                                                  "exit.", rich_help_panel="Run")]


def merge(*trees: dict[str, Any]) -> dict[str, Any]:
    """Nested override dicts merged left to right (later ones win, key by key)."""
    out: dict[str, Any] = {}
    for tree in trees:
        for key, value in tree.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def build_run_config(profile: str, config_file: Path | None, *overrides: dict[str, Any]) -> RunConfig:
    """Defaults <- profile <- --config YAML <- each of `overrides` in turn (flags last)."""
    loaded: dict[str, Any] = load_yaml(config_file) if config_file else {}
    loaded.pop("profile", None)
    return build_config(profile, merge(loaded, *overrides))


def print_config(cfg: RunConfig) -> None:
    Console().print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="", markup=False, highlight=False)
