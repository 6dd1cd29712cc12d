"""The service's page after an upload, as a person sees it: `dermkd serve RUN` on
127.0.0.1, Debian's chromium driven by playwright, one image uploaded, a full-page PNG.

    .venv/bin/python benchmarks/page_screenshot.py RUN IMAGE docs/page-after-upload.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("image", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    with log.open("w") as sink:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("dermkd")), "serve", str(args.run), "--port",
                                 str(port)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.goto(base + "/")
            page.set_input_files("#file", str(args.image))
            page.wait_for_selector("#overlay:not([hidden])", timeout=120_000)
            page.wait_for_function("document.getElementById('overlay').naturalWidth > 0")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
