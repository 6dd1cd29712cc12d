"""Models: the DSC student, the Classifier wrapper, partial fine-tuning, weight files, the registry."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

import dermkd.models.weights as weights_mod
from dermkd.errors import DermkdError
from dermkd.models import MODELS, create_model
from dermkd.models.classifier import IMAGENET_MEAN, IMAGENET_STD, Classifier, count_parameters
from dermkd.models.dsc import DSC

TEACHERS = ("resnet50", "resnet18", "densenet121", "efficientnet_b0", "mobilenetv3_large_100", "vgg16_bn")


# --------------------------------------------------------------------------- DSC
@pytest.fixture(scope="module")
def dsc224():
    torch.manual_seed(0)
    return DSC(num_classes=9, image_size=224).eval()


@pytest.mark.parametrize("size", [224, 112, 32])
def test_dsc_output_shape(size, dsc224):
    torch.manual_seed(0)
    net = dsc224 if size == 224 else DSC(num_classes=9, image_size=size).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, size, size))
    assert out.shape == (2, 9)
    assert torch.isfinite(out).all()


# Parameter count by hand (weights + biases; batchnorm: weight + bias, running stats are buffers):
#   conv 3->64  2x2:  3*64*4 + 64   =      832
#   conv 64->64 2x2: 64*64*4 + 64   =   16,448
#   conv 64->32 2x2: 64*32*4 + 32   =    8,224
#   conv 32->32 2x2: 32*32*4 + 32   =    4,128
#   batchnorm2d(32): 32 + 32        =       64
#   conv 32->32 x2:  2 * 4,128      =    8,256
#   features total                  =   37,952
#   dense flat->2048: flat*2048 + 2048, flat = 32*(S/8)^2
#       S=224: flat = 32*28*28 = 25,088 -> 51,380,224 + 2,048 = 51,382,272
#       S=112: flat = 32*14*14 =  6,272 -> 12,845,056 + 2,048 = 12,847,104
#   dense 2048->1024: 2,097,152 + 1,024 = 2,098,176
#   batchnorm1d(1024): 1,024 + 1,024    =     2,048
#   dense 1024->1024: 1,048,576 + 1,024 = 1,049,600
#   dense 1024->9:        9,216 + 9     =     9,225
#   head without the first dense        = 3,159,049
#   S=224: 37,952 + 51,382,272 + 3,159,049 = 54,579,273
#   S=112: 37,952 + 12,847,104 + 3,159,049 = 16,044,105
@pytest.mark.parametrize("size, expected", [(224, 54_579_273), (112, 16_044_105)])
def test_dsc_parameter_count(size, expected, dsc224):
    net = dsc224 if size == 224 else DSC(num_classes=9, image_size=size)
    assert count_parameters(net) == expected
    assert sum(p.numel() for p in net.parameters()) == expected


def test_dsc_first_dense_layer_and_head_sizes(dsc224):
    net = dsc224
    dense = [m for m in net.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(25088, 2048), (2048, 1024), (1024, 1024), (1024, 9)]
    drop = [m for m in net.head if isinstance(m, nn.Dropout)]
    assert len(drop) == 1 and drop[0].p == pytest.approx(0.4)


@pytest.mark.parametrize("size", [100, 4, 0, 225])
def test_dsc_size_not_multiple_of_8(size):
    with pytest.raises(DermkdError, match=f"multiple of 8, got {size}"):
        DSC(num_classes=9, image_size=size)
    with pytest.raises(DermkdError, match="multiple of 8"):
        create_model("dsc", 9, image_size=size)


def test_dsc_conv_is_keras_same_padding_right_bottom():
    net = DSC(num_classes=9, image_size=32)
    convs = [m for m in net.features if isinstance(m, nn.Sequential)]
    assert len(convs) == 6
    for block in convs:
        pad, conv = block[0], block[1]
        assert isinstance(pad, nn.ZeroPad2d)
        assert tuple(pad.padding) == (0, 1, 0, 1)  # (left, right, top, bottom)
        assert conv.kernel_size == (2, 2) and conv.stride == (1, 1) and conv.padding == (0, 0)
        assert isinstance(block[2], nn.ReLU)
    first = convs[0]
    x = torch.rand(1, 3, 17, 13)
    assert first(x).shape == (1, 64, 17, 13)  # 'same': spatial size kept, odd sizes too
    # Padding on the right/bottom: a kernel that picks its bottom-right tap gives x shifted up-left,
    # with zeros in the last row and column (left/top padding would give the input itself).
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
    block = nn.Sequential(first[0], conv)
    x = torch.arange(1.0, 13.0).view(1, 1, 3, 4)
    y = block(x)[0, 0]
    expected = torch.tensor([[6.0, 7.0, 8.0, 0.0], [10.0, 11.0, 12.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(y, expected)


def test_dsc_batchnorm_uses_keras_momentum_and_eps():
    net = DSC(num_classes=9, image_size=32)
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [type(m).__name__ for m in bns] == ["BatchNorm2d", "BatchNorm1d"]
    for bn in bns:
        assert bn.momentum == pytest.approx(0.01)
        assert bn.eps == pytest.approx(1e-3)


def test_dsc_through_create_model_uses_imagenet_normalisation():
    model = create_model("dsc", 5, image_size=32)
    assert isinstance(model, Classifier) and isinstance(model.net, DSC)
    assert model.net.head[-1].out_features == 5
    assert torch.allclose(model.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    with pytest.raises(DermkdError, match="dsc has no ImageNet weights"):
        create_model("dsc", 9, image_size=32, pretrained="imagenet")
    with pytest.raises(DermkdError, match="dsc has no stage list"):
        create_model("dsc", 9, image_size=32, trainable_stages=1)


# --------------------------------------------------------------------------- Classifier
def test_classifier_applies_its_own_normalisation():
    torch.manual_seed(0)
    model = create_model("resnet18", 9).eval()
    assert torch.allclose(model.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert torch.allclose(model.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(x)
        ref = model.net((x - mean) / std)
        raw = model.net(x)
    assert out.shape == (2, 9)
    assert torch.allclose(out, ref, atol=1e-6)
    assert not torch.allclose(out, raw, atol=1e-3)  # normalisation actually happens
    # mean/std are not saved in the state dict (they come from the model's description)
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()
    d = model.describe()
    assert d["name"] == "resnet18" and d["num_classes"] == 9 and d["input_range"] == [0.0, 1.0]


def test_num_classes_below_two_is_an_error():
    with pytest.raises(DermkdError, match="num_classes must be >= 2, got 1"):
        create_model("resnet18", 1)


# --------------------------------------------------------------------------- partial fine-tuning
def _trainable_prefixes(model):
    return {n.split(".")[0] for n, p in model.net.named_parameters() if p.requires_grad}


def test_trainable_stages_one_trains_layer4_and_fc_only():
    model = create_model("resnet18", 9, trainable_stages=1)
    for name, p in model.net.named_parameters():
        assert p.requires_grad == name.startswith(("layer4.", "fc.")), name
    assert _trainable_prefixes(model) == {"layer4", "fc"}
    assert model.frozen == ["conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3"]
    n_trainable = count_parameters(model, trainable_only=True)
    assert n_trainable == sum(p.numel() for p in model.net.layer4.parameters()) + 512 * 9 + 9


def test_trainable_stages_zero_trains_head_only():
    model = create_model("resnet18", 9, trainable_stages=0)
    for name, p in model.net.named_parameters():
        assert p.requires_grad == name.startswith("fc."), name
    assert count_parameters(model, trainable_only=True) == 512 * 9 + 9


def test_trainable_stages_all_and_large():
    for stages in ("all", 5, 17):
        model = create_model("resnet18", 9, trainable_stages=stages)
        assert all(p.requires_grad for p in model.parameters()), stages
        assert model.frozen == []


def test_frozen_modules_stay_in_eval_mode():
    model = create_model("resnet18", 9, trainable_stages=1)
    model.train()
    assert model.training
    for name in ("conv1", "bn1", "layer1", "layer2", "layer3"):
        sub = model.net.get_submodule(name)
        assert not sub.training, name
        assert all(not m.training for m in sub.modules()), name
    assert model.net.layer4.training and model.net.layer4[0].bn1.training
    assert model.net.fc.training
    model.eval()
    assert not model.net.layer4.training
    model.train(True)
    assert not model.net.bn1.training and model.net.layer4.training


def test_training_step_leaves_frozen_weights_and_bn_stats_unchanged():
    torch.manual_seed(0)
    model = create_model("resnet18", 9, trainable_stages=1).train()
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.rand(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    after = model.net.state_dict()
    frozen_keys = [k for k in before if not k.startswith(("layer4.", "fc."))]
    assert "bn1.running_mean" in frozen_keys and "layer1.0.bn1.running_var" in frozen_keys
    for k in frozen_keys:
        assert torch.equal(before[k], after[k]), k
    assert all(p.grad is None for n, p in model.net.named_parameters() if not n.startswith(("layer4.", "fc.")))
    # the trainable part did move, and layer4's batch-norm statistics were updated
    assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert not torch.equal(before["layer4.0.bn1.running_mean"], after["layer4.0.bn1.running_mean"])


# --------------------------------------------------------------------------- weight files
@pytest.fixture(scope="module")
def resnet18_imagenet_sd():
    torch.manual_seed(123)
    net = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def r18_pth(tmp_path_factory, resnet18_imagenet_sd):
    f = tmp_path_factory.mktemp("weights") / "r18.pth"
    torch.save(resnet18_imagenet_sd, f)
    return f


def no_hub_for_pretrained(real):
    def create(name, pretrained=False, **kwargs):
        if pretrained:
            raise AssertionError("the hub must not be used when a weights file is given")
        return real(name, pretrained=False, **kwargs)

    return create


def _assert_loaded(model, sd):
    own = model.net.state_dict()
    non_fc = [k for k in sd if not k.startswith("fc.")]
    assert len(non_fc) > 50
    for k in non_fc:
        assert torch.equal(own[k], sd[k]), k
    assert own["fc.weight"].shape == (9, 512) and own["fc.bias"].shape == (9,)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 9)


def test_pretrained_file_pth(r18_pth, resnet18_imagenet_sd):
    model = create_model("resnet18", 9, pretrained_file=r18_pth).eval()
    _assert_loaded(model, resnet18_imagenet_sd)


def test_pretrained_file_safetensors(tmp_path, resnet18_imagenet_sd):
    f = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18_imagenet_sd.items()}, str(f))
    model = create_model("resnet18", 9, pretrained_file=str(f)).eval()
    _assert_loaded(model, resnet18_imagenet_sd)


def test_pretrained_file_wrapped_state_dict(tmp_path, resnet18_imagenet_sd):
    f = tmp_path / "wrapped.pth"
    torch.save({"state_dict": resnet18_imagenet_sd, "epoch": 3}, f)
    model = create_model("resnet18", 9, pretrained_file=f).eval()
    _assert_loaded(model, resnet18_imagenet_sd)


def test_pretrained_file_wins_over_imagenet(r18_pth, resnet18_imagenet_sd, monkeypatch):
    monkeypatch.setattr(weights_mod.timm, "create_model", no_hub_for_pretrained(weights_mod.timm.create_model))
    model = create_model("resnet18", 9, pretrained="imagenet", pretrained_file=r18_pth)
    _assert_loaded(model.eval(), resnet18_imagenet_sd)


def test_pretrained_file_of_another_architecture(tmp_path):
    f = tmp_path / "r34.pth"
    torch.save(timm.create_model("resnet34", pretrained=False, num_classes=1000).state_dict(), f)
    with pytest.raises(DermkdError, match="does not match this model") as err:
        create_model("resnet18", 9, pretrained_file=f)
    assert str(f) in str(err.value) and "unexpected" in str(err.value)


def test_pretrained_file_missing(tmp_path):
    f = tmp_path / "nope.pth"
    with pytest.raises(DermkdError, match="weights file not found") as err:
        create_model("resnet18", 9, pretrained_file=f)
    assert str(f) in str(err.value)


def test_pretrained_file_garbage(tmp_path):
    f = tmp_path / "garbage.pth"
    f.write_bytes(b"this is not a checkpoint\x00\x01\x02" * 10)
    with pytest.raises(DermkdError, match="cannot read weights file") as err:
        create_model("resnet18", 9, pretrained_file=f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)
    g = tmp_path / "garbage.safetensors"
    g.write_bytes(b"\xff" * 64)
    with pytest.raises(DermkdError, match="cannot read weights file"):
        create_model("resnet18", 9, pretrained_file=g)


def test_pretrained_imagenet_without_network_is_a_clear_error(monkeypatch):
    real = weights_mod.timm.create_model
    calls = []

    def offline(name, pretrained=False, **kwargs):
        calls.append((name, pretrained))
        if pretrained:
            raise OSError("Network is unreachable")
        return real(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(weights_mod.timm, "create_model", offline)
    with pytest.raises(DermkdError) as err:
        create_model("resnet18", 9, pretrained="imagenet")
    msg = str(err.value)
    assert "--pretrained-file" in msg
    assert "resnet18" in msg and "OSError: Network is unreachable" in msg
    assert calls == [("resnet18", False), ("resnet18", True)]  # our 9-class net, then the hub's 1000-class one


# --------------------------------------------------------------------------- registry
def test_unknown_model_lists_known_names():
    with pytest.raises(DermkdError) as err:
        create_model("resnet1000", 9)
    msg = str(err.value)
    assert msg.startswith("unknown model 'resnet1000'; known: ")
    for name in ("dsc",) + TEACHERS:
        assert name in msg
    with pytest.raises(DermkdError, match="unknown model 'x'"):
        MODELS.get("x")


def test_all_teachers_registered():
    assert set(TEACHERS) | {"dsc"} <= set(MODELS.names())
    for name in TEACHERS:
        assert MODELS.get(name).timm_name == name


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3_large_100"])
def test_small_timm_models_forward(name):
    torch.manual_seed(0)
    model = create_model(name, 9, trainable_stages=1).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 9)
    assert model.frozen  # the stage list exists for both
    assert any(p.requires_grad for p in model.parameters())
    assert not all(p.requires_grad for p in model.parameters())


def test_dsc_gap_replaces_the_flatten_with_global_pooling():
    # convs 37,888 + BN2d 64 + dense 32->2048 (67,584) + 2048->1024 (2,098,176) + BN1d 2,048
    # + 1024->1024 (1,049,600) + 1024->9 (9,225) = 3,264,585 at every input size
    for size in (32, 112, 224):
        m = create_model("dsc_gap", 9, image_size=size)
        assert sum(p.numel() for p in m.parameters()) == 3_264_585
        assert m(torch.rand(2, 3, size, size)).shape == (2, 9)
    assert m.net.head[0].in_features == 32
