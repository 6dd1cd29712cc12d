"""Explicit-parameter augmentation and the teacher-logit store (`--teacher-cache K`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dermkd.data.augment import DEFAULT_AUGMENT, PARAMS, TrainAugment, apply_view, sample_views
from dermkd.distill import logit_store
from dermkd.distill.logit_store import StoredViews, open_or_build, store_key
from dermkd.distill.strategies import Teacher
from dermkd.errors import DermkdError
from dermkd.io import read_json
from dermkd.models import create_model
from dermkd.pipeline import load_data
from dermkd.profiles import build_config
from dermkd.train.stage import run_stage


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = build_config("tiny", {"out_dir": str(out), "name": "store"})
    torch.manual_seed(0)
    teacher = Teacher(create_model("dsc_gap", len(load_data(cfg).classes), image_size=32))
    return cfg, load_data(cfg), teacher


def test_view_parameters_are_seeded_and_in_range():
    a = sample_views(200, 40, 30, generator=torch.Generator().manual_seed(3))
    b = sample_views(200, 40, 30, generator=torch.Generator().manual_seed(3))
    assert a.shape == (200, len(PARAMS)) and torch.equal(a, b)
    p = dict(zip(PARAMS, a.T))
    assert (p["top"] >= 0).all() and (p["top"] + p["height"] <= 40).all()
    assert (p["left"] >= 0).all() and (p["left"] + p["width"] <= 30).all()
    area = p["height"] * p["width"] / (40 * 30)
    assert area.min() > 0.6 and area.max() <= 1.0  # scale 0.7-1, up to rounding
    assert set(p["hflip"].tolist()) == {0.0, 1.0} and p["angle"].abs().max() <= DEFAULT_AUGMENT.degrees
    assert (p["brightness"] - 1).abs().max() <= DEFAULT_AUGMENT.brightness + 1e-6
    assert p["hue"].abs().max() <= DEFAULT_AUGMENT.hue + 1e-6


def test_a_view_replays_exactly_and_identity_params_keep_the_image():
    img = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
    params = sample_views(1, 24, 24, generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(apply_view(img, params, 24), apply_view(img, params, 24))
    identity = torch.tensor([0, 0, 24, 24, 0, 0, 0, 1, 1, 1, 0], dtype=torch.float32)
    assert torch.allclose(apply_view(img, identity, 24), img.float() / 255, atol=1 / 255)
    flipped = identity.clone()
    flipped[PARAMS.index("hflip")] = 1
    assert torch.allclose(apply_view(img, flipped, 24), img.flip(-1).float() / 255, atol=1 / 255)
    out = TrainAugment(16)(img)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32 and 0 <= out.min() <= out.max() <= 1


def test_store_holds_the_teachers_logits_of_the_stored_views(tiny, tmp_path):
    _, data, teacher = tiny
    store = open_or_build(teacher, "a" * 64, data, views=3, seed=7, root=tmp_path)
    n, c = len(data.labels["train"]), len(data.classes)
    assert store.logits.shape == (n, 3, c) and store.logits.dtype == np.float16
    assert store.params.shape == (n, 3, len(PARAMS))
    for i, k in [(0, 0), (n - 1, 2), (n // 2, 1)]:
        x = apply_view(data.images["train"][i], store.params[i, k], data.image_size)[None]
        expected = teacher(x, data.labels["train"][i:i + 1])[0]
        assert torch.allclose(torch.from_numpy(store.logits[i, k].astype(np.float32)), expected, atol=2e-2,
                              rtol=2e-3)
    meta = read_json(store.path / "meta.json")
    assert meta["key_parts"]["views"] == 3 and meta["teacher_forwards"] == 3 * n
    assert not list(tmp_path.glob("*.partial*"))


def test_store_is_reused_and_keyed_by_what_decides_it(tiny, tmp_path, monkeypatch):
    _, data, teacher = tiny
    first = open_or_build(teacher, "a" * 64, data, views=2, seed=0, root=tmp_path)
    monkeypatch.setattr(logit_store, "_build", lambda *a, **k: pytest.fail("a valid store was rebuilt"))
    again = open_or_build(teacher, "a" * 64, data, views=2, seed=0, root=tmp_path)
    assert again.path == first.path and np.array_equal(again.logits, first.logits)
    key = store_key("a" * 64, data, 2, 0)[0]
    assert first.path.name == key
    changed = [store_key("b" * 64, data, 2, 0)[0], store_key("a" * 64, data, 3, 0)[0],
               store_key("a" * 64, data, 2, 1)[0],
               store_key("a" * 64, data, 2, 0, dataclasses.replace(DEFAULT_AUGMENT, degrees=10))[0],
               store_key("a" * 64, dataclasses.replace(data, fingerprint="x"), 2, 0)[0],
               store_key("a" * 64, data, 2, 0, precision="bf16-mixed")[0]]
    assert len({key, *changed}) == 7


def test_bf16_store_is_close_to_fp32_but_its_own(tiny, tmp_path):
    """Under bf16 autocast the teacher's logits move by bfloat16 rounding, not more; the
    store says which precision made it."""
    _, data, teacher = tiny
    fp32 = open_or_build(teacher, "a" * 64, data, views=2, seed=0, root=tmp_path)
    bf16 = open_or_build(teacher, "a" * 64, data, views=2, seed=0, root=tmp_path, precision="bf16-mixed")
    assert bf16.path != fp32.path and bf16.meta["key_parts"]["precision"] == "bf16-mixed"
    assert torch.equal(bf16.params, fp32.params)  # the same views
    a, b = fp32.logits.astype(np.float32), bf16.logits.astype(np.float32)
    assert not np.array_equal(a, b)
    assert np.abs(a - b).max() <= 0.05 * np.abs(a).max() + 1e-3


def test_a_killed_build_leaves_no_store(tiny, tmp_path):
    _, data, _ = tiny

    class Dies(Teacher):
        def forward(self, images, labels):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_or_build(Dies(torch.nn.Identity()), "a" * 64, data, views=2, seed=0, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_stored_views_give_the_logits_of_the_view_they_return(tiny, tmp_path):
    _, data, teacher = tiny
    store = open_or_build(teacher, "a" * 64, data, views=4, seed=0, root=tmp_path)
    ds = StoredViews(data.images["train"], data.labels["train"], store, data.image_size)
    torch.manual_seed(1)
    x, y, t = ds[3]
    assert x.shape == (3, 32, 32) and t.shape == (len(data.classes),) and t.dtype == torch.float32
    k = [j for j in range(4) if np.array_equal(store.logits[3, j].astype(np.float32), t.numpy())]
    assert k and torch.equal(x, apply_view(data.images["train"][3], store.params[3, k[0]], 32))
    with pytest.raises(DermkdError, match="holds"):
        StoredViews(data.images["train"][:2], data.labels["train"][:2], store, 32)


def test_kd_run_with_the_store_never_calls_the_live_teacher(tmp_path, monkeypatch):
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "train": {"epochs": 2}})
    data = load_data(cfg)
    teacher = run_stage(dataclasses.replace(cfg, kd=dataclasses.replace(cfg.kd, strategy="baseline")), data,
                        tmp_path / "teacher").run_dir
    calls = {"n": 0}
    live = Teacher.forward

    def counting(self, images, labels):
        calls["n"] += 1
        return live(self, images, labels)

    monkeypatch.setattr(Teacher, "forward", counting)
    kd = dataclasses.replace(cfg, kd=dataclasses.replace(cfg.kd, strategy="standard", teacher_cache=2))
    result = run_stage(kd, data, tmp_path / "kd", teacher_source=teacher)
    n = len(data.labels["train"])
    batches = -(-2 * n // (2 * cfg.train.batch_size))
    assert calls["n"] == batches  # the store's build only: ceil(N K / build batch) forwards, none in training
    store = read_json(tmp_path / "kd" / "env.json")["teacher_store"]
    assert store["views"] == 2 and store["teacher_sha256"] == result.metrics["teacher"]["sha256"]
    assert result.metrics["n"] == len(data.labels["test"])


def test_teacher_cache_needs_a_teacher_network(tmp_path):
    cfg = build_config("tiny", {"out_dir": str(tmp_path), "kd": {"strategy": "teacher-free", "teacher_cache": 2}})
    with pytest.raises(DermkdError, match="needs a trained teacher network"):
        run_stage(cfg, load_data(cfg), tmp_path / "tf")
    with pytest.raises(DermkdError, match="teacher_cache"):
        build_config("tiny", {"kd": {"teacher_cache": -1}})


def test_a_larger_teacher_input_sees_the_same_view_as_the_student(tiny, tmp_path):
    """Resolution-decoupled KD: one stored view, cut from the 48 px decode, at 48 px for
    the teacher and 32 px for the student."""
    _, data, _ = tiny
    torch.manual_seed(0)
    big = Teacher(create_model("dsc_gap", len(data.classes), image_size=48))
    store = open_or_build(big, "b" * 64, data, views=2, seed=3, root=tmp_path, teacher_image_size=48)
    hr = store.source_images
    assert hr.shape == (len(data.labels["train"]), 3, 48, 48) and hr.dtype == torch.uint8
    assert store.meta["key_parts"]["teacher_image_size"] == 48
    assert store.params[..., 2:4].max() <= 48 and store.params[..., 2:4].max() > 32  # boxes on the 48 px image
    i, k = 2, 1
    x_t = apply_view(hr[i], store.params[i, k], 48)[None]
    assert torch.allclose(torch.from_numpy(store.logits[i, k].astype(np.float32)), big(x_t, None)[0], atol=2e-2,
                          rtol=2e-3)
    ds = StoredViews(data.images["train"], data.labels["train"], store, 32)
    torch.manual_seed(5)
    x, _, t = ds[i]
    j = [j for j in range(2) if np.array_equal(store.logits[i, j].astype(np.float32), t.numpy())][0]
    assert x.shape == (3, 32, 32) and torch.equal(x, apply_view(hr[i], store.params[i, j], 32))
    # the same teacher at the student's size is another store
    same = open_or_build(big, "b" * 64, data, views=2, seed=3, root=tmp_path)
    assert same.path != store.path and same.source_images is None
    with pytest.raises(DermkdError, match="needs the teacher-logit store"):
        build_config("tiny", {"kd": {"teacher_image_size": 48}})
