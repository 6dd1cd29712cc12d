"""Shared fixtures (the helpers they use are in tests/helpers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import build_tree


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    """Three known classes with 6 distinct PNGs each (enough for every split)."""
    return build_tree(tmp_path / "data", {"nevus": 6, "melanoma": 6, "Basal_Cell carcinoma": 6})


@pytest.fixture(autouse=True, scope="session")
def _audit_cache_in_tmp(tmp_path_factory):
    """Keep the audit's hash cache (used by splits) out of the user's home during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DERMKD_CACHE_DIR", str(tmp_path_factory.mktemp("dermkd-cache")))
    yield
    mp.undo()


@pytest.fixture
def run_cli(monkeypatch, capsys, tmp_path):
    """`dermkd ARGV` in-process with cwd=tmp_path/cwd: (exit code, stdout, stderr, cwd)."""
    from dermkd.cli.app import main

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*argv):
        monkeypatch.setattr(sys, "argv", ["dermkd", *map(str, argv)])
        with pytest.raises(SystemExit) as exc:
            main()
        cap = capsys.readouterr()
        return exc.value.code, cap.out, cap.err, cwd

    return run
