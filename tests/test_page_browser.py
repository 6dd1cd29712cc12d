"""The service's page driven in a real headless Chromium (Debian's `chromium`, launched by
playwright on the system browser; no browser download): upload an image, see one bar per
class with widths that follow the probabilities, the Grad-CAM overlay and the disclaimer,
and a screenshot saved as a test artifact (DERMKD_TEST_ARTIFACTS, default test-artifacts/).

`make test` installs chromium where it can (root, Debian); under CI a missing browser is a
failure, not a skip."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import ISIC_TRAIN

ARTIFACTS = Path(os.environ.get("DERMKD_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def _browser() -> str:
    """The system Chromium, or a skip (a failure under CI) saying what is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        chromium = None
    if chromium is None:
        reason = "needs playwright (pip, the dev extra) and Debian's chromium (make test installs both)"
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: it {reason}")
        pytest.skip(reason)
    return chromium


def _upload(tmp_path: Path) -> Path:
    """A real isic9 image where the data set is here (else a patterned one), small enough for
    the test server's 0.05 MB upload limit."""
    images = sorted(ISIC_TRAIN.glob("melanoma/*.jpg"))[:1]
    img = Image.open(images[0]).convert("RGB") if images else Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    img.thumbnail((160, 160))
    path = tmp_path / "lesion.jpg"
    img.save(path, quality=90)
    assert path.stat().st_size < 50_000
    return path


def test_page_uploads_an_image_and_draws_bars_and_the_overlay(server, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = _browser()
    base, _ = server
    image = _upload(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1100})
            page.goto(base + "/")
            assert "Research use only" in page.inner_text(".warn")
            page.set_input_files("#file", str(image))
            page.wait_for_selector("#result .row", timeout=30_000)
            page.wait_for_selector("#overlay:not([hidden])", timeout=60_000)
            page.wait_for_function("document.getElementById('overlay').naturalWidth > 0", timeout=30_000)
            rows = page.query_selector_all("#result .row")
            names = [r.query_selector("span").inner_text() for r in rows]
            values = [float(r.query_selector_all("span")[1].inner_text()) for r in rows]
            widths = [r.query_selector(".bar").evaluate("e => e.getBoundingClientRect().width") for r in rows]
            track = rows[0].query_selector(".bar").evaluate("e => e.parentElement.getBoundingClientRect().width")
            status = page.inner_text("#status")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "page-after-upload.png"), full_page=True)
        finally:
            browser.close()
    assert len(names) == 9 and len(set(names)) == 9 and "melanoma" in names
    assert values == sorted(values, reverse=True) and sum(values) == pytest.approx(1.0, abs=0.01)
    # each bar is drawn with a width proportional to its probability (3 decimals shown)
    assert widths == pytest.approx([track * v for v in values], abs=0.01 * track + 1)
    assert status.startswith("malignant probability ")
    assert (ARTIFACTS / "page-after-upload.png").stat().st_size > 10_000
