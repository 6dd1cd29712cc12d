"""Data audit: planted copies (resized, re-encoded, flipped, cropped, relabelled) are each
found in the right kind and nothing else is; unreadable files, leakage across roots and
split files, the content cache, the threshold, the outputs, errors, and the real isic9."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from helpers import ISIC_TRAIN
from dermkd.data.audit import DEFAULT_THRESHOLD, AuditConfig, audit, print_summary, to_dict, write_audit
from dermkd.data.audit import phash
from dermkd.data.synthetic import render_lesion
from dermkd.data.taxonomy import ISIC9
from dermkd.errors import DermkdError

CLASS_INDEX = {c.name: i for i, c in enumerate(ISIC9)}
CLASSES = ["nevus", "melanoma", "basal cell carcinoma", "dermatofibroma", "vascular lesion"]
SIZE = 96


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG" if path.suffix == ".jpg" else "PNG", **kw)
    return path


def _originals(root: Path, classes: list[str], per_class: int, offset: int = 0) -> dict[tuple[str, int], Path]:
    """Distinct synthetic lesions, even ones PNG, odd ones JPEG (quality 95)."""
    out = {}
    for cls in classes:
        for k in range(per_class):
            img = Image.fromarray(render_lesion(CLASS_INDEX[cls], k + offset, SIZE))
            ext = ".png" if k % 2 == 0 else ".jpg"
            out[cls, k] = _save(img, root / cls / f"o_{k:02d}{ext}", **({"quality": 95} if ext == ".jpg" else {}))
    return out


def _jpeg_copy(src: Path, dst: Path, quality: int, size: int | None = None) -> None:
    img = Image.open(src).convert("RGB")
    if size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    _save(img, dst, quality=quality)


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """25 distinct originals + one planted copy of each kind; returns (root, expectations)."""
    root = tmp_path_factory.mktemp("audit") / "data"
    o = _originals(root, CLASSES, 5)
    rel = lambda p: _rel(root, p)  # noqa: E731
    near, exact = [], []
    # resized to 70 px
    src = o["nevus", 0]
    _save(Image.open(src).resize((70, 70), Image.Resampling.LANCZOS), root / "nevus" / "copy_resized.png")
    near.append({rel(src), "nevus/copy_resized.png"})
    # re-encoded at JPEG quality 60
    src = o["melanoma", 1]
    _jpeg_copy(src, root / "melanoma" / "copy_q60.jpg", 60)
    near.append({rel(src), "melanoma/copy_q60.jpg"})
    # horizontally / vertically flipped
    src = o["basal cell carcinoma", 0]
    _save(Image.open(src).transpose(Image.Transpose.FLIP_LEFT_RIGHT), root / "basal cell carcinoma" / "copy_hflip.png")
    near.append({rel(src), "basal cell carcinoma/copy_hflip.png"})
    src = o["dermatofibroma", 2]
    _save(Image.open(src).transpose(Image.Transpose.FLIP_TOP_BOTTOM), root / "dermatofibroma" / "copy_vflip.png")
    near.append({rel(src), "dermatofibroma/copy_vflip.png"})
    # 6% border crop (6 px of 96 from each side), saved at its new size
    src = o["vascular lesion", 0]
    _save(Image.open(src).crop((6, 6, SIZE - 6, SIZE - 6)), root / "vascular lesion" / "copy_crop6.png")
    near.append({rel(src), "vascular lesion/copy_crop6.png"})
    # byte-identical copy in another class folder: exact group + label conflict
    src = o["nevus", 3]
    (root / "melanoma" / "copy_bytes.jpg").write_bytes(src.read_bytes())
    exact.append({rel(src), "melanoma/copy_bytes.jpg"})
    exact_conflict = exact[-1]
    # byte-identical copy in the same class folder: exact group, no conflict
    src = o["basal cell carcinoma", 4]
    (root / "basal cell carcinoma" / "copy_same.png").write_bytes(src.read_bytes())
    exact.append({rel(src), "basal cell carcinoma/copy_same.png"})
    # resized + re-encoded copy in another class folder: near group + label conflict
    src = o["melanoma", 4]
    _jpeg_copy(src, root / "nevus" / "copy_near_conflict.jpg", 80, size=80)
    near.append({rel(src), "nevus/copy_near_conflict.jpg"})
    near_conflict = near[-1]
    # a truncated JPEG
    buf = io.BytesIO()
    Image.fromarray(render_lesion(CLASS_INDEX["dermatofibroma"], 99, SIZE)).save(buf, format="JPEG", quality=90)
    (root / "dermatofibroma" / "broken.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 5])
    cache = root.parent / "cache.json"
    return root, cache, {"near": near, "exact": exact, "exact_conflict": exact_conflict,
                         "near_conflict": near_conflict, "unreadable": {"dermatofibroma/broken.jpg"}}


def _paths(result, group) -> set[str]:
    return {result.files[i].rel for i in group.members}


def _sets(result, groups) -> list[set[str]]:
    return sorted((_paths(result, g) for g in groups), key=sorted)


def _sorted(groups: list[set[str]]) -> list[set[str]]:
    return sorted(groups, key=sorted)


# --------------------------------------------------------------------------- planted copies
def test_every_planted_copy_is_found_in_its_kind_and_nothing_else(planted):
    root, cache, want = planted
    r = audit([root], cfg=AuditConfig(cache=cache, workers=2))
    assert r.threshold == DEFAULT_THRESHOLD
    assert len(r.files) == 25 + 9
    assert _sets(r, r.exact_groups) == _sorted(want["exact"])
    assert _sets(r, r.near_groups) == _sorted(want["near"])  # no group among the distinct originals
    assert all(g.max_distance <= r.threshold for g in r.near_groups)
    assert {(g.kind, frozenset(_paths(r, g))) for g in r.conflicts} == {
        ("exact", frozenset(want["exact_conflict"])), ("near", frozenset(want["near_conflict"]))}
    assert r.leakage == []  # one root, no split file: no splits
    assert [f.rel for f in r.unreadable] == sorted(want["unreadable"])
    assert "truncated" in r.unreadable[0].error
    counts = r.counts()
    assert counts["total"] == {"melanoma": 7, "nevus": 7, "basal cell carcinoma": 7, "dermatofibroma": 7,
                               "vascular lesion": 6}
    assert r.imbalance_ratio == pytest.approx(7 / 6)
    st = r.stats()
    assert st["readable"] == 33 and st["unreadable"] == 1
    assert st["formats"] == {"PNG": 20, "JPEG": 13}  # 15 + 5 copies, 10 + 3 copies
    assert st["width"] == {"min": 70, "median": 96, "max": 96}


def test_threshold_is_honoured(planted):
    root, cache, want = planted
    zero = audit([root], cfg=AuditConfig(threshold=0, cache=cache, workers=2))
    found = _sets(zero, zero.near_groups)
    # independently: the planted near pairs whose hashes agree exactly for some view
    hashes = {f.rel: f.hashes for f in zero.files}
    exact_hash = [pair for pair in want["near"] if phash.distance(*(hashes[p] for p in sorted(pair))) == 0]
    assert found == _sorted(exact_hash)
    assert {"basal cell carcinoma/o_00.png", "basal cell carcinoma/copy_hflip.png"} in found  # pixel-exact flips
    assert {"dermatofibroma/o_02.png", "dermatofibroma/copy_vflip.png"} in found
    assert len(found) < len(want["near"])  # the resized / re-encoded / cropped copies need a threshold
    assert all(g.max_distance == 0 for g in zero.near_groups)
    assert _sets(zero, zero.exact_groups) == _sorted(want["exact"])  # exact groups do not depend on it
    everything = audit([root], cfg=AuditConfig(threshold=64, cache=cache, workers=2))
    assert len(everything.near_groups) == 1 and len(everything.near_groups[0].members) == 33


def test_second_run_reads_the_cache_and_never_decodes(planted, monkeypatch):
    root, _, _ = planted
    cache = root.parent / "cache-second-run.json"
    first = audit([root], cfg=AuditConfig(cache=cache, workers=2))
    assert first.cached_files == 0
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == 34 - 2  # one entry per distinct content (2 byte copies), the broken file included

    def no_decoding(data):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(phash, "analyse_bytes", no_decoding)
    second = audit([root], cfg=AuditConfig(cache=cache, workers=2))
    assert second.cached_files == len(second.files) == 34
    a, b = to_dict(first), to_dict(second)
    for key in ("exact_groups", "near_groups", "conflicts", "unreadable", "stats", "counts"):
        assert a[key] == b[key]

    # a caller that has just read the files (prepare_data) passes their hashes: nothing is read again
    known = {f.path: f.sha256 for f in first.files if f.sha256}
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read again"))
    third = audit([root], cfg=AuditConfig(cache=cache, workers=2), known_sha256=known)
    c = to_dict(third)
    for key in ("exact_groups", "near_groups", "conflicts", "unreadable", "stats", "counts"):
        assert a[key] == c[key]


def test_default_cache_lives_under_dermkd_cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    _originals(root, ["nevus"], 2)
    monkeypatch.setenv("DERMKD_CACHE_DIR", str(tmp_path / "cachedir"))
    audit([root])
    assert (tmp_path / "cachedir" / "audit-cache.json").is_file()
    assert audit([root]).cached_files == 2


def test_corrupt_cache_is_ignored_and_rewritten(tmp_path):
    root = tmp_path / "data"
    _originals(root, ["nevus"], 2)
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    assert audit([root], cfg=AuditConfig(cache=cache)).cached_files == 0
    assert audit([root], cfg=AuditConfig(cache=cache)).cached_files == 2


# --------------------------------------------------------------------------- leakage
def test_copies_across_two_roots_are_leakage(tmp_path):
    train = _originals(tmp_path / "Train", ["nevus", "melanoma"], 3)
    _originals(tmp_path / "Test", ["nevus", "melanoma"], 3, offset=10)
    (tmp_path / "Test" / "melanoma" / "leak_exact.png").write_bytes(train["melanoma", 0].read_bytes())
    _jpeg_copy(train["nevus", 1], tmp_path / "Test" / "nevus" / "leak_near.jpg", 70)
    r = audit([tmp_path / "Train", tmp_path / "Test"], cfg=AuditConfig(cache=tmp_path / "c.json"))
    assert r.root_names == ["Train", "Test"]
    assert {(g.kind, frozenset(_paths(r, g))) for g in r.leakage} == {
        ("exact", frozenset({"Train/melanoma/o_00.png", "Test/melanoma/leak_exact.png"})),
        ("near", frozenset({"Train/nevus/o_01.jpg", "Test/nevus/leak_near.jpg"})),
    }
    assert all(r.splits(g) == ["Test", "Train"] for g in r.leakage)
    assert r.conflicts == []
    assert r.counts() == {"total": {"melanoma": 7, "nevus": 7}, "Train": {"melanoma": 3, "nevus": 3},
                          "Test": {"melanoma": 4, "nevus": 4}}
    report = to_dict(r)
    assert report["summary"]["leakage"] == {"exact": 1, "near": 1}
    assert {f["split"] for g in report["leakage"] for f in g["files"]} == {"Train", "Test"}


def _write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        w.writerows(rows)
    return path


def test_split_file_defines_the_splits(tmp_path):
    root = tmp_path / "data"
    o = _originals(root, ["nevus", "melanoma"], 3)
    (root / "nevus" / "dup.png").write_bytes(o["nevus", 0].read_bytes())
    base = [("nevus/o_01.jpg", "nevus", "train"), ("nevus/o_02.png", "nevus", "val"),
            ("melanoma/o_00.png", "melanoma", "train"), ("melanoma/o_01.jpg", "melanoma", "test")]
    cfg = AuditConfig(cache=tmp_path / "c.json")
    leaky = _write_csv(tmp_path / "leaky.csv", base + [("nevus/o_00.png", "nevus", "train"),
                                                      ("nevus/dup.png", "nevus", "test")])
    r = audit([root], split_file=leaky, cfg=cfg)
    assert [(g.kind, _paths(r, g), r.splits(g)) for g in r.leakage] == [
        ("exact", {"nevus/o_00.png", "nevus/dup.png"}, ["test", "train"])]
    assert r.unlisted == ["melanoma/o_02.png"]
    assert r.split_source.startswith("split file")
    clean = _write_csv(tmp_path / "clean.csv", base + [("nevus/o_00.png", "nevus", "val"),
                                                      ("nevus/dup.png", "nevus", "val")])
    r = audit([root], split_file=clean, cfg=cfg)
    assert r.leakage == [] and len(r.exact_groups) == 1
    bad = _write_csv(tmp_path / "bad.csv", base + [("nevus/missing.png", "nevus", "val")])
    with pytest.raises(DermkdError, match="not under the data folder"):
        audit([root], split_file=bad, cfg=cfg)


# --------------------------------------------------------------------------- outputs
def test_json_and_self_contained_html_are_written(planted, tmp_path):
    root, cache, want = planted
    r = audit([root], cfg=AuditConfig(cache=cache, workers=2))
    json_path, html_path = write_audit(r, tmp_path / "out")
    assert (json_path.name, html_path.name) == ("audit.json", "audit.html")
    report = json.loads(json_path.read_text())
    for key in ("roots", "n_files", "counts", "stats", "unreadable", "exact_groups", "near_groups", "conflicts",
                "leakage", "imbalance_ratio", "threshold", "timings"):
        assert key in report
    assert report["n_files"] == 34
    assert _sorted([{f["path"] for f in g} for g in report["exact_groups"]]) == _sorted(want["exact"])
    assert _sorted([{f["path"] for f in g["files"]} for g in report["near_groups"]]) == _sorted(want["near"])
    assert all({"min_distance", "max_distance"} <= g.keys() for g in report["near_groups"])
    assert report["unreadable"][0]["path"] == "dermatofibroma/broken.jpg"
    assert set(report["timings"]) >= {"files_per_s", "seconds", "cached_files"}
    html = html_path.read_text()
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(?!data:)', html)
    # every member of every drawn group is a thumbnail (conflicts, exact, near; no leakage here)
    drawn = sum(len(g.members) for g in r.conflicts + r.exact_groups + r.near_groups)
    assert len(srcs) == drawn
    assert html.index("Label conflicts") < html.index("Leakage") < html.index("Exact duplicates") \
        < html.index("Near duplicates")
    thumb = Image.open(io.BytesIO(base64.b64decode(srcs[0].split(",", 1)[1])))
    assert max(thumb.size) <= 96


def test_print_summary_shows_counts_and_findings(planted):
    root, cache, _ = planted
    r = audit([root], cfg=AuditConfig(cache=cache, workers=2))
    console = Console(record=True, width=150)
    print_summary(r, console)
    text = console.export_text()
    assert "Images per class" in text and "dermatofibroma" in text
    assert "imbalance ratio" in text and "1.17" in text
    assert re.search(r"exact duplicates.*\b2\b.*\b4\b", text)
    assert re.search(r"near duplicates.*\b6\b.*\b12\b", text)
    assert "broken.jpg" in text


# --------------------------------------------------------------------------- errors
def test_bad_input_is_a_one_line_error(tmp_path):
    with pytest.raises(DermkdError, match="does not exist"):
        audit([tmp_path / "nope"], cfg=AuditConfig(cache=tmp_path / "c.json"))
    root = tmp_path / "data"
    _originals(root, ["nevus"], 1)
    _save(Image.new("RGB", (8, 8)), root / "tattoo" / "a.png")
    with pytest.raises(DermkdError, match="unknown class folder 'tattoo'"):
        audit([root], cfg=AuditConfig(cache=tmp_path / "c.json"))
    assert audit([root], cfg=AuditConfig(cache=tmp_path / "c.json", allow_new_classes=True)).classes == \
        ["nevus", "tattoo"]
    with pytest.raises(DermkdError, match="split file goes with one data folder"):
        audit([root, tmp_path], split_file=tmp_path / "s.csv")
    with pytest.raises(DermkdError, match="threshold"):
        audit([root], cfg=AuditConfig(threshold=65))
    with pytest.raises(DermkdError, match="given twice"):
        audit([root, root / "."])


# --------------------------------------------------------------------------- hash properties
def test_phash_views_and_distance():
    img = Image.fromarray(render_lesion(3, 0, SIZE))
    h = phash.phash_variants(img)
    assert h.dtype == np.uint64 and h.shape == (phash.N_VARIANTS,)
    assert set(np.bitwise_count(h).tolist()) == {32}  # median split: 32 bits set, distances are even
    flipped = phash.phash_variants(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert flipped[0] == h[1] and phash.distance(h, flipped) == 0
    other = phash.phash_variants(Image.fromarray(render_lesion(4, 0, SIZE)))
    assert phash.distance(h, other) == phash.distance(other, h) > DEFAULT_THRESHOLD
    d = phash.distance_matrix(np.stack([h, flipped, other]))
    assert d[0, 1] == 0 and d[0, 2] == phash.distance(h, other) and (d == d.T).all()
    big = img.resize((2000, 1600), Image.Resampling.BICUBIC)  # the large-image shortcut still matches
    assert phash.distance(phash.phash_variants(big), h) <= DEFAULT_THRESHOLD
    assert phash.from_hex(phash.to_hex(h)).tolist() == h.tolist()


# --------------------------------------------------------------------------- real data
@pytest.mark.isic
@pytest.mark.skipif(not ISIC_TRAIN.is_dir(), reason=f"real data not found at {ISIC_TRAIN}")
def test_isic9_exact_groups_and_conflicts(tmp_path):
    r = audit([ISIC_TRAIN], cfg=AuditConfig(cache=tmp_path / "c.json"))
    assert len(r.files) == 2241 and r.unreadable == []
    # an independent hashlib count gives 141 groups of identical files, 137 across classes (see test_data)
    assert len(r.exact_groups) == 141
    assert sum(g.kind == "exact" for g in r.conflicts) == 137
    # every exact group lies within one audit group: by itself, or inside exactly one near group
    near_of = defaultdict(set)
    for k, g in enumerate(r.near_groups):
        for i in g.members:
            near_of[i].add(k)
    for g in r.exact_groups:
        owners = [near_of[i] for i in g.members]
        assert all(len(o) <= 1 for o in owners) and len({frozenset(o) for o in owners}) == 1
    assert r.imbalance_ratio == pytest.approx(462 / 77)


@pytest.mark.isic
@pytest.mark.skipif(not ISIC_TRAIN.is_dir(), reason=f"real data not found at {ISIC_TRAIN}")
def test_isic9_prepares_with_the_default_split_and_its_tiny_class_only_in_train(caplog):
    """The default cpu-pipeline data path on the real data: conflicting near-duplicate groups
    dropped leave seborrheic keratosis with 2 images, trained on and absent from val/test
    with a warning (not an error: the project's own data must run with its defaults)."""
    import logging

    from dermkd.config import DataConfig
    from dermkd.data.prepare import prepare_data

    with caplog.at_level(logging.WARNING, logger="dermkd"):
        data = prepare_data(DataConfig(root=str(ISIC_TRAIN), image_size=16), ISIC_TRAIN, 0)
    sk = data.classes.index("seborrheic keratosis")
    n = {s: int(data.labels[s].numel()) for s in ("train", "val", "test")}
    assert len(data.classes) == 9 and int((data.labels["train"] == sk).sum()) == 2
    assert int((data.labels["test"] == sk).sum()) == 0 and sum(n.values()) < 2241
    assert "class 'seborrheic keratosis' has 2 usable image(s), none in the val/test split" in caplog.text
