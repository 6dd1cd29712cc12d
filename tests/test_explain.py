"""Grad-CAM: every registered model names a layer that exists, and `dermkd explain` draws
the student beside the teacher it was distilled from."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import write_image
from PIL import Image

from dermkd.models import MODELS, create_model

pytest.importorskip("pytorch_grad_cam")


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_names_its_grad_cam_layer(name):
    entry = MODELS.get(name)
    net = create_model(name, 9, image_size=32).net
    assert entry.cam_layer is not None
    layer = net.get_submodule(entry.cam_layer)  # raises if the name is wrong
    assert any(p.requires_grad for p in layer.parameters()) or list(layer.modules())


def hand_grad_cam(explained, x, target):
    layer = explained.model.net.get_submodule(MODELS.get(explained.spec["name"]).cam_layer)
    seen = {}
    hook = layer.register_forward_hook(lambda module, inputs, output: seen.setdefault("a", output))
    try:
        out = explained.model.eval()(x)
        seen["a"].retain_grad()
        out[0, target].backward()
    finally:
        hook.remove()
    a, g = seen["a"].detach(), seen["a"].grad
    return torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1))[0].numpy()


def test_explain_a_kd_student_beside_its_teacher(run_cli, tmp_path):
    from dermkd.serve.explain import heat_map, models_to_explain

    assert run_cli("train", "--profile", "tiny", "--name", "t", "--model", "resnet18")[0] == 0
    code, _, err, cwd = run_cli("distill", "--teacher", "runs/t", "--profile", "tiny", "--name", "s")
    assert code == 0, err
    image = write_image(tmp_path / "ISIC_0000001.png", 5)
    code, out, err, _ = run_cli("explain", "runs/s", image, "--out", "cams")
    assert code == 0, err
    png = cwd / "cams" / "ISIC_0000001.gradcam.png"
    assert png.is_file() and "dsc (explained), resnet18 (teacher)" in out
    width, height = Image.open(png).size
    assert width > 2.5 * height  # three panels: the image, the student's map, the teacher's
    for explained in models_to_explain(cwd / "runs" / "s", []):
        rgb, grey, top, p = heat_map(explained, image)
        assert rgb.shape == (32, 32, 3) and grey.shape == (32, 32) and 0 <= grey.min() and grey.max() <= 1 + 1e-6
        assert 0 <= top < 9 and 0 < p <= 1
        # against Grad-CAM by hand: ReLU(sum_k mean(dy/dA_k) A_k) at the registry's layer
        manual = hand_grad_cam(explained, torch.from_numpy(rgb).permute(2, 0, 1)[None], top)
        if manual.size > 1:  # (a 1 x 1 map, resnet18 at 32 px, is constant: the library scales it to 0)
            # scaled to a maximum of 1, or all 0 when no location is positive
            assert (grey.max() > 0.99) == (manual.max() > manual.min())


def test_the_teacher_is_found_from_any_folder_also_in_runs_that_recorded_it_relative(run_cli, tmp_path, monkeypatch):
    import json

    from dermkd.serve.explain import models_to_explain

    assert run_cli("train", "--profile", "tiny", "--name", "t", "--epochs", "1")[0] == 0
    code, _, err, cwd = run_cli("distill", "--teacher", "runs/t", "--profile", "tiny", "--name", "s", "--epochs", "1")
    assert code == 0, err
    env_path = cwd / "runs" / "s" / "env.json"
    env = json.loads(env_path.read_text())
    assert Path(env["teacher"]["checkpoint"]).is_absolute()
    monkeypatch.chdir(tmp_path)  # elsewhere: the absolute record still finds the teacher
    assert [e.label for e in models_to_explain(cwd / "runs" / "s", [])] == ["dsc (explained)", "dsc (teacher)"]
    env["teacher"]["checkpoint"] = "runs/t/checkpoints/best.ckpt"  # as runs made before recorded it
    env_path.write_text(json.dumps(env))
    assert len(models_to_explain(cwd / "runs" / "s", [])) == 2
    (cwd / "runs" / "t" / "checkpoints" / "best.ckpt").unlink()
    assert [e.label for e in models_to_explain(cwd / "runs" / "s", [])] == ["dsc (explained)"]
