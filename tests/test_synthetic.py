"""The embedded synthetic data set: deterministic, well-formed, idempotent on disk, and
learnable from colour alone only in part (a colour-histogram classifier is well above
chance but clearly imperfect)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dermkd.data import synthetic
from dermkd.data.synthetic import MARKER_NAME, generate_dataset, render_lesion
from dermkd.data.taxonomy import ISIC9
from dermkd.errors import DermkdError


# --------------------------------------------------------------------------- render
def test_same_arguments_give_identical_pixels_whatever_was_drawn_before():
    first = render_lesion(3, 7, 64, seed=5)
    for i in range(4):  # drawing other images in between must not change it
        render_lesion(3, i, 64, seed=5)
        render_lesion(i, 7, 64, seed=5)
    again = render_lesion(3, 7, 64, seed=5)
    assert first.tobytes() == again.tobytes()


@pytest.mark.parametrize(
    "other",
    [dict(class_index=3, index=8, seed=5), dict(class_index=4, index=7, seed=5), dict(class_index=3, index=7, seed=6)],
)
def test_changing_index_class_or_seed_changes_the_image(other):
    base = render_lesion(3, 7, 64, seed=5)
    img = render_lesion(other["class_index"], other["index"], 64, seed=other["seed"])
    assert np.abs(base.astype(int) - img.astype(int)).mean() > 3.0


@pytest.mark.parametrize("size", [16, 32, 64, 112])
def test_shape_dtype_and_range(size):
    for ci in range(len(ISIC9)):
        a = render_lesion(ci, 0, size)
        assert a.shape == (size, size, 3)
        assert a.dtype == np.uint8
        assert a.std() > 5  # not a flat image


def test_lesion_is_darker_or_redder_than_the_skin_around_it():
    """A lesion sits near the centre: the centre differs from the corners' skin."""
    diffs = []
    for ci in range(len(ISIC9)):
        for i in range(6):
            a = render_lesion(ci, i, 64).astype(float)
            centre = a[24:40, 24:40].mean(axis=(0, 1))
            ring = np.concatenate([a[8:16, 28:36], a[48:56, 28:36], a[28:36, 8:16], a[28:36, 48:56]])
            diffs.append(np.abs(centre - ring.mean(axis=(0, 1))).sum())
    assert np.median(diffs) > 30


@pytest.mark.parametrize(
    "kwargs",
    [dict(class_index=9, index=0, size=32), dict(class_index=-1, index=0, size=32),
     dict(class_index=0, index=-1, size=32), dict(class_index=0, index=0, size=15),
     dict(class_index=0, index=0, size=32, seed=-1), dict(class_index=0, index=0, size=32.0)],
)
def test_render_rejects_bad_arguments(kwargs):
    with pytest.raises(DermkdError):
        render_lesion(**kwargs)


# --------------------------------------------------------------------------- dataset
def _pngs(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*.png"))}


def test_generate_dataset_writes_nine_folders_of_readable_pngs(tmp_path):
    out = generate_dataset(tmp_path / "synth", per_class=3, size=32, seed=1)
    assert out == tmp_path / "synth"
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted(c.name for c in ISIC9)
    for ci, cls in enumerate(ISIC9):
        files = sorted(p.name for p in (out / cls.name).iterdir())
        assert files == ["synth_0000.png", "synth_0001.png", "synth_0002.png"]  # no temp files left
        with Image.open(out / cls.name / "synth_0001.png") as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (32, 32)
            assert np.array_equal(np.asarray(im), render_lesion(ci, 1, 32, seed=1))
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["per_class"] == 3 and marker["size"] == 32 and marker["seed"] == 1
    assert marker["generator_version"] == synthetic.GENERATOR_VERSION


def test_second_call_with_same_parameters_rewrites_nothing(tmp_path, monkeypatch):
    root = tmp_path / "synth"
    generate_dataset(root, per_class=2, size=32, seed=0)
    before = _pngs(root)
    marker_before = (root / MARKER_NAME).stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("render_lesion called on an up-to-date data set")

    monkeypatch.setattr(synthetic, "render_lesion", boom)
    generate_dataset(root, per_class=2, size=32, seed=0)
    assert _pngs(root) == before
    assert (root / MARKER_NAME).stat().st_mtime_ns == marker_before


@pytest.mark.parametrize("change", [dict(seed=1), dict(size=40), dict(per_class=3), dict(per_class=1)])
def test_changed_parameters_regenerate(tmp_path, change):
    root = tmp_path / "synth"
    generate_dataset(root, per_class=2, size=32, seed=0)
    old = (root / "melanoma" / "synth_0000.png").read_bytes()
    params = dict(per_class=2, size=32, seed=0) | change
    generate_dataset(root, **params)
    marker = json.loads((root / MARKER_NAME).read_text())
    assert {k: marker[k] for k in params} == params
    for cls in ISIC9:  # exactly per_class images, stale ones of a bigger run removed
        names = sorted(p.name for p in (root / cls.name).glob("*.png"))
        assert names == [f"synth_{i:04d}.png" for i in range(params["per_class"])]
    with Image.open(root / "melanoma" / "synth_0000.png") as im:
        assert im.size == (params["size"], params["size"])
        assert np.array_equal(np.asarray(im), render_lesion(3, 0, params["size"], seed=params["seed"]))
    if "seed" in change or "size" in change:
        assert (root / "melanoma" / "synth_0000.png").read_bytes() != old


def test_missing_or_corrupt_marker_regenerates(tmp_path):
    root = tmp_path / "synth"
    generate_dataset(root, per_class=1, size=16)
    p = root / "nevus" / "synth_0000.png"
    p.write_bytes(b"garbage")
    (root / MARKER_NAME).write_text("{not json")
    generate_dataset(root, per_class=1, size=16)
    with Image.open(p) as im:
        im.load()
    (root / MARKER_NAME).unlink()
    os.utime(p, ns=(0, 0))
    generate_dataset(root, per_class=1, size=16)
    assert p.stat().st_mtime_ns != 0
    assert (root / MARKER_NAME).is_file()


@pytest.mark.parametrize("kwargs", [dict(per_class=0, size=32), dict(per_class=2, size=8), dict(per_class=2, size=32, seed=-3)])
def test_generate_dataset_rejects_bad_arguments_in_one_line(tmp_path, kwargs):
    with pytest.raises(DermkdError) as ei:
        generate_dataset(tmp_path / "synth", **kwargs)
    assert "\n" not in str(ei.value)
    assert not (tmp_path / "synth").exists()


def test_generate_dataset_rejects_a_file_as_out_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DermkdError):
        generate_dataset(f, per_class=1, size=16)


# --------------------------------------------------------------------------- learnability
def _colour_features(a: np.ndarray) -> np.ndarray:
    px = a.reshape(-1, 3).astype(np.float64) / 255.0
    hists = [np.histogram(px[:, c], bins=8, range=(0.0, 1.0))[0] / len(px) for c in range(3)]
    return np.concatenate(hists + [px.mean(axis=0), px.std(axis=0)])


def test_colour_histograms_classify_well_above_chance_but_not_perfectly():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    per_class = 40
    X = np.array([_colour_features(render_lesion(c, i, 32)) for c in range(len(ISIC9)) for i in range(per_class)])
    y = np.repeat(np.arange(len(ISIC9)), per_class)
    perm = np.random.default_rng(0).permutation(len(y))
    train, test = perm[: len(y) // 2], perm[len(y) // 2 :]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X[train], y[train])
    acc = clf.score(X[test], y[test])
    assert 0.45 < acc < 0.97, f"colour-histogram accuracy {acc:.3f} (chance 0.11)"
