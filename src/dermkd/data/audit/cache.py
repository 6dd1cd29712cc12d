"""The audit's hash cache: one JSON file keyed by the sha256 of each file's content.

An entry holds what decoding gave ({width, height, format, mode, phash, error}), so a
second audit of the same bytes only reads and hashes them. Entries from every audited
folder share one file (default `~/.cache/dermkd/audit-cache.json`, or
`$DERMKD_CACHE_DIR/audit-cache.json`); it is rewritten atomically, and a missing,
corrupt or other-version cache is simply started afresh.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dermkd.io import cache_dir, write_text

log = logging.getLogger(__name__)

CACHE_NAME = "audit-cache.json"
# Bump when the hash definition changes: old entries must not be compared with new ones.
CACHE_VERSION = "dermkd-audit-v1 phash-dct64 crops=0,2.5,5,7.5,10% flips=4"


def default_cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def load_cache(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable audit cache %s (%s)", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        log.info("audit cache %s is from another version; starting afresh", path)
        return {}
    return data["entries"]


def save_cache(path: Path, entries: dict[str, dict]) -> None:
    """Write all entries (old and new); a cache that cannot be written is only a warning."""
    try:
        write_text(path, json.dumps({"version": CACHE_VERSION, "entries": entries}, separators=(",", ":")))
    except OSError as exc:
        log.warning("could not write the audit cache %s (%s); the next audit will decode again", path, exc)
