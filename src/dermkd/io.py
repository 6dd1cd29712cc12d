"""Atomic file writes: a run killed midway never leaves a half-written file.

Every writer goes to a temporary file in the destination folder, flushes it to disk and
renames it over the target (`os.replace` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from dermkd.errors import DermkdError


def _file_mode() -> int:
    """0o666 minus the umask: what a plain open() would give (mkstemp gives 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def temp_beside(path: Path) -> tuple[int, str]:
    """A new temp file in `path`'s folder (same file system, so rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside `path`; on success rename it onto `path`, else delete it."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_yaml(path: str | Path, obj: Any) -> None:
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping (a config or study file); a missing, malformed or non-mapping file
    is a one-line `DermkdError`."""
    path = Path(path)
    if not path.is_file():
        raise DermkdError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DermkdError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise DermkdError(f"config file {path} must hold a mapping")
    return loaded


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays and Paths appear in metrics; make them plain JSON."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def cache_dir() -> Path:
    """Where reusable, content-keyed caches live (audit hashes, teacher logits):
    `$DERMKD_CACHE_DIR`, else `~/.cache/dermkd`."""
    env = os.environ.get("DERMKD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dermkd"
