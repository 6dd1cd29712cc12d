"""Command-line flags generated from the config's fields (`dermkd.config.knobs`).

`config_options(...)` decorates a command: it adds one option per selected config field,
with the field's type, help, choices and panel, and its default shown as the command's
profile resolves it. The command receives the given flags as one nested `overrides`
dict (only the flags on the command line: an omitted flag leaves the profile's or the
config file's value). Registry choices are listed in the help lazily (`LazyChoice`), so
parsing a command line imports no torch; names are checked by `dermkd.build.resolve`.
Which flags were given is read from typer's parameter source, so a flag set to its
default value still wins over a config file.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Optional

import typer
from rich.markup import escape

from dermkd.config import RunConfig
from dermkd.errors import DermkdError
from dermkd.knobs import Knob, get_path, knobs, set_path
from dermkd.profiles import help_config


def _registry_label(kind: str, ctx: Any = None) -> str:
    from dermkd.build import registry

    return "<" + "|".join(registry(kind).names()) + ">"


def lazy_choices(command: Any) -> Any:
    """Make every generated option with registry choices (in typer's `command` and its
    subcommands) list the registry's names in the help, looked up only when the help is
    drawn; returns `command`. Values pass through unchecked here: the build boundary
    (`dermkd.build.resolve`) checks them, with the list of known names."""
    kinds = {_param_name(k): k.choices for k in knobs() if k.choices}
    for param in command.params:
        if param.name in kinds:
            param.display_type_rich = functools.partial(_registry_label, kinds[param.name])
    for sub in getattr(command, "commands", {}).values():
        lazy_choices(sub)
    return command


def parse_stages(value: str) -> int | str:
    """'all' or an integer >= 0 (trailing stages to fine-tune)."""
    if value == "all":
        return value
    try:
        n = int(value)
    except ValueError:
        raise DermkdError(f"trainable stages must be 'all' or an integer >= 0, not {value!r}") from None
    if n < 0:
        raise DermkdError(f"trainable stages must be 'all' or an integer >= 0, not {n}")
    return n


PARSERS: dict[str, Callable[[Any], Any]] = {"stages": parse_stages}


def _option_type(k: Knob) -> tuple[Any, dict[str, Any]]:
    """(annotation, extra typer.Option arguments) for a knob's field type."""
    hint = k.type
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if k.parse is not None:
        return Optional[str], {}
    if k.choices is not None:  # a registry: `lazy_choices` gives the option its LazyChoice type
        return Optional[str], {}
    if typing.get_origin(hint) is Literal:
        return Optional[hint], {}
    if typing.get_origin(hint) is tuple:
        return Optional[tuple[float, float]], {}
    if typing.get_origin(hint) is list or any(typing.get_origin(a) is list for a in args):
        return Optional[list[float]], {}
    base = hint if not args else args[0]
    if k.path.endswith(("root", "file", "metadata", "out_dir")):
        return Optional[Path], {}
    return Optional[base], {}


def _parameter(k: Knob, defaults: RunConfig) -> inspect.Parameter:
    annotation, extra = _option_type(k)
    default = get_path(defaults, k.path)
    if k.parse is not None and default is not None:
        default = str(default)
    option = typer.Option(default, *k.flags, help=escape(k.help), show_default=default is not None,
                          rich_help_panel=k.panel, **extra)
    return inspect.Parameter(_param_name(k), inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _param_name(k: Knob) -> str:
    return "cfg__" + k.path.replace(".", "__")


CTX = "cfg_ctx"  # the generated command's typer.Context parameter
PANEL_ORDER = ("Data", "Model", "Distillation", "Optimisation", "Run")


def _panel_rank(p: inspect.Parameter) -> int:
    panel = getattr(p.default, "rich_help_panel", None)
    if panel is None:  # Annotated[..., typer.Option(...)]
        panel = next((getattr(m, "rich_help_panel", None) for m in getattr(p.annotation, "__metadata__", ())), None)
    return PANEL_ORDER.index(panel) if panel in PANEL_ORDER else -1


def select(sections: Iterable[str], *, only: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Knob]:
    """The knobs of `sections` ("" = the top-level name/out_dir) plus the paths in `only`,
    less the paths in `exclude`."""
    sections, only, exclude = set(sections), set(only), set(exclude)
    return [k for k in knobs() if (k.section in sections or k.path in only) and k.path not in exclude]


def config_options(selected: list[Knob], profile: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command taking `overrides: dict` with the flags of `selected`, their
    defaults shown as `profile` resolves them."""
    defaults = help_config(profile)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "overrides"]
        generated = [_parameter(k, defaults) for k in selected]
        context = inspect.Parameter(CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            ctx = kwargs.pop(CTX)
            overrides: dict[str, Any] = {}
            for k in selected:
                value = kwargs.pop(_param_name(k))
                source = ctx.get_parameter_source(_param_name(k))
                if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
                    continue
                if k.parse is not None:
                    value = PARSERS[k.parse](value)
                if isinstance(value, Path):
                    value = str(value)
                if isinstance(value, tuple):
                    value = list(value)
                set_path(overrides, k.path, value)
            return fn(**kwargs, overrides=overrides)

        params = sorted(own + generated, key=_panel_rank)  # help panels in PANEL_ORDER
        command.__signature__ = inspect.Signature([context, *params])  # type: ignore[attr-defined]
        command.__annotations__ = {}  # typer must read the generated signature only, not fn's
        del command.__wrapped__
        return command

    return decorate
