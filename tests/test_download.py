"""ISIC Archive download via isic-cli (never run here: offline) and arranging into class folders."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from helpers import write_image

from dermkd.data import download
from dermkd.data.download import (
    arrange_class_folders,
    build_download_command,
    run_download,
)
from dermkd.data.scan import scan_folders
from dermkd.errors import DermkdError


# --------------------------------------------------------------------------- command line
@pytest.mark.parametrize(("kwargs", "options"), [
    ({}, []),
    ({"collection": 66}, ["--collections", "66"]),
    ({"collection": [66, 212]}, ["--collections", "66,212"]),
    ({"search": 'diagnosis_3:"Melanoma Invasive"'}, ["--search", 'diagnosis_3:"Melanoma Invasive"']),
    ({"limit": 10}, ["--limit", "10"]),
    ({"limit": 0}, ["--limit", "0"]),
    ({"search": "age_approx:50", "collection": 7, "limit": 5},
     ["--search", "age_approx:50", "--collections", "7", "--limit", "5"]),
])
def test_build_download_command(tmp_path, kwargs, options):
    out = tmp_path / "isic dl"
    assert build_download_command(out, **kwargs) == ["isic", "image", "download", *options, str(out)]


@pytest.mark.parametrize("kwargs", [{"limit": -1}, {"limit": 2.5}, {"collection": -3}, {"collection": []},
                                    {"collection": ["66"]}])
def test_build_download_command_rejects_bad_options(tmp_path, kwargs):
    with pytest.raises(DermkdError):
        build_download_command(tmp_path, **kwargs)


def test_run_download_without_isic_cli(tmp_path, monkeypatch):
    monkeypatch.setattr(download.shutil, "which", lambda name: None)
    with pytest.raises(DermkdError, match=r"^isic-cli is not installed: pip install isic-cli$"):
        run_download(tmp_path / "out", limit=3)


def test_run_download_runs_the_command_without_a_shell(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        Path(cmd[-1]).mkdir(parents=True, exist_ok=True)
        (Path(cmd[-1]) / "metadata.csv").write_text("isic_id,diagnosis\n")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(download.shutil, "which", lambda name: "/usr/bin/isic")
    monkeypatch.setattr(download.subprocess, "run", fake_run)
    out = tmp_path / "out"
    assert run_download(out, collection=66, limit=3) == out / "metadata.csv"
    (cmd, kwargs), = calls
    assert cmd == ["isic", "image", "download", "--collections", "66", "--limit", "3", str(out)]
    assert not kwargs.get("shell")

    monkeypatch.setattr(download.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 2))
    with pytest.raises(DermkdError, match="isic-cli failed \\(exit status 2\\)"):
        run_download(tmp_path / "other")


# --------------------------------------------------------------------------- arranging
METADATA = """isic_id,attribution,copyright_license,age_approx,benign_malignant,diagnosis,sex
ISIC_0000001,Anonymous,CC-0,40,benign,nevus,male
ISIC_0000002,Anonymous,CC-0,55,malignant,melanoma,female
ISIC_0000003,Anonymous,CC-BY,70,benign,seborrheic keratosis,male
ISIC_0000004,Anonymous,CC-BY,35,benign,Nevus,female
ISIC_0000005,Anonymous,CC-BY,60,benign,solar lentigo,male
ISIC_0000006,Anonymous,CC-BY,45,benign,unknown,male
ISIC_0000007,Anonymous,CC-BY,45,benign,cafe-au-lait macule,female
ISIC_0000008,Anonymous,CC-BY,45,,,female
ISIC_0000009,Anonymous,CC-BY,45,benign,verruca,female
"""


def download_fixture(tmp_path: Path, metadata: str = METADATA) -> Path:
    dl = tmp_path / "download"
    dl.mkdir(parents=True)
    (dl / "metadata.csv").write_text(metadata, encoding="utf-8")
    (dl / "attribution.txt").write_text("Anonymous\n")
    for i in range(1, 10):
        write_image(dl / f"ISIC_000000{i}.{'JPG' if i == 4 else 'jpg'}", i)
    return dl


def test_arrange_class_folders_copies_into_the_scan_layout(tmp_path, caplog):
    dl = download_fixture(tmp_path)
    before = sorted(p.name for p in dl.iterdir())
    out = tmp_path / "isic"
    with caplog.at_level(logging.WARNING):
        counts = arrange_class_folders(dl, out)
    assert counts == {"melanoma": 1, "nevus": 2, "pigmented benign keratosis": 1, "seborrheic keratosis": 1}
    assert "skipped 4 images" in caplog.text
    for label in ("unknown: 1", "cafe-au-lait macule: 1", "<empty>: 1", "verruca: 1"):
        assert label in caplog.text
    assert sorted(p.name for p in dl.iterdir()) == before  # copied, not moved
    assert (out / "nevus" / "ISIC_0000004.JPG").read_bytes() == (dl / "ISIC_0000004.JPG").read_bytes()
    assert not list(out.rglob(".*.tmp"))
    samples, classes = scan_folders(out)
    assert classes == list(counts)
    assert len(samples) == sum(counts.values())
    # a re-run is idempotent
    assert arrange_class_folders(dl, out) == counts
    assert len(list(out.rglob("*.*"))) == 5


def test_arrange_binary_column_gives_benign_and_malignant(tmp_path):
    dl = download_fixture(tmp_path)
    counts = arrange_class_folders(dl, tmp_path / "bin", label_column="benign_malignant")
    assert counts == {"benign": 7, "malignant": 1}
    _, classes = scan_folders(tmp_path / "bin", allow_new_classes=True)
    assert classes == ["benign", "malignant"]


def test_arrange_errors(tmp_path):
    with pytest.raises(DermkdError, match="metadata not found"):
        arrange_class_folders(tmp_path, tmp_path / "out")
    dl = download_fixture(tmp_path)
    with pytest.raises(DermkdError, match=r"lacks column\(s\) diagnosis_3; found: isic_id, attribution"):
        arrange_class_folders(dl, tmp_path / "out", label_column="diagnosis_3")
    with pytest.raises(DermkdError, match="unknown label scheme 'nope'"):
        arrange_class_folders(dl, tmp_path / "out", scheme="nope")
    (dl / "ISIC_0000002.jpg").unlink()
    with pytest.raises(DermkdError, match=r"1 of 9 images listed in .* are missing .*ISIC_0000002"):
        arrange_class_folders(dl, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    only_unknown = download_fixture(tmp_path / "u", "isic_id,diagnosis\nISIC_0000001,unknown\n")
    with pytest.raises(DermkdError, match="no image in .* has a diagnosis label mappable"):
        arrange_class_folders(only_unknown, tmp_path / "out")
