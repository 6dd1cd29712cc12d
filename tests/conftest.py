"""Shared fixtures (the helpers they use are in tests/helpers)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`dermkd serve` on a tiny trained run through a real uvicorn on 127.0.0.1: (base URL, run).
    Shared by the API tests and the browser test; uploads are limited to 0.05 MB."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from dermkd.pipeline import load_data
    from dermkd.profiles import build_config
    from dermkd.train.stage import run_stage

    out = tmp_path_factory.mktemp("serve")
    cfg = build_config("tiny", {"out_dir": str(out), "name": "m", "kd": {"strategy": "baseline"}})
    run = run_stage(cfg, load_data(cfg), out / "m").run_dir
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = out / "serve.log"  # a file, not a pipe nobody reads (a full pipe would block the server)
    dermkd = Path(sys.executable).with_name("dermkd")
    with log.open("w") as sink:
        proc = subprocess.Popen([str(dermkd), "serve", str(run), "--port", str(port), "--max-upload-mb", "0.05"],
                                stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail(log.read_text())
        time.sleep(0.1)
    yield base, run
    proc.terminate()
    proc.wait(timeout=30)
