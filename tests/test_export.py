"""Export and fast inference: every format against eager PyTorch, atomic files, the
metadata file, one-line errors, and the inference benchmark at smoke size.

Models are 32 px and random; a "run" is a folder made here the way a training run
leaves it (config.yaml, split.csv, checkpoints/best.ckpt), so no training is needed.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dermkd.errors import DermkdError
from dermkd.evaluate.rundata import run_data
from dermkd.export import FORMATS, Source, export_model, load_predictor, source_from_run
from dermkd.export.metadata import read_sidecar, sidecar_path
from dermkd.export.predictor import eager
from dermkd.export.quantize import quantize_torch_dynamic
from dermkd.models import create_model
from dermkd.train.checkpoints import file_sha256

SIZE = 32
CLASSES = [f"class {i}" for i in range(9)]


def make_source(name: str, seed: int = 0) -> Source:
    torch.manual_seed(seed)
    train = torch.randint(0, 256, (24, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return Source.from_model(create_model(name, len(CLASSES), image_size=SIZE), CLASSES, SIZE,
                             train_images=lambda: train)


def images(n: int, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, SIZE, SIZE), dtype=np.float32)


@pytest.fixture(scope="module")
def dsc() -> Source:
    return make_source("dsc")


@pytest.fixture(scope="module")
def exported(dsc, tmp_path_factory) -> dict[str, Path]:
    """The dsc student in every format (one fp32 ONNX export shared by the ONNX formats)."""
    folder = tmp_path_factory.mktemp("export")
    return {fmt: export_model(dsc, fmt, folder / f"dsc-{fmt}{FORMATS.get(fmt).suffix}") for fmt in FORMATS.names()}


def eager_logits(source: Source, x: np.ndarray) -> np.ndarray:
    return eager(source.model, source.image_size, source.classes, threads=1)(x)


# --------------------------------------------------------------------------- fp32 formats
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_fp32_formats_match_pytorch_at_any_batch_size(fmt, dsc, exported):
    predict = load_predictor(exported[fmt], threads=1)
    for n in (1, 5):  # the batch axis is dynamic
        x = images(n)
        out = predict(x)
        assert out.shape == (n, len(CLASSES)) and out.dtype == np.float32
        np.testing.assert_allclose(out, eager_logits(dsc, x), atol=1e-4, rtol=0)
    torch_out = predict(torch.from_numpy(images(2)))  # tensors are accepted too
    np.testing.assert_allclose(torch_out, eager_logits(dsc, images(2)), atol=1e-4, rtol=0)


def test_onnx_graph_names_and_timm_model(tmp_path):
    """A timm model (depthwise convs, hard-swish, squeeze-excite) exports as faithfully."""
    import onnxruntime as ort

    source = make_source("mobilenetv3_small_100")
    path = export_model(source, "onnx", tmp_path / "mnv3.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("image", "tensor(float)", [3, SIZE, SIZE])
    assert isinstance(inp.shape[0], str) and out.name == "logits"  # symbolic batch dimension
    x = images(3)
    np.testing.assert_allclose(load_predictor(path)(x), eager_logits(source, x), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- int8
@pytest.mark.parametrize("fmt", ["onnx-int8-dynamic", "onnx-int8-static", "torch-int8-dynamic"])
def test_int8_formats_are_smaller_and_mostly_agree(fmt, dsc, exported, record_property):
    x = images(16)
    reference = eager_logits(dsc, x)
    out = load_predictor(exported[fmt], threads=1)(x)
    assert out.shape == reference.shape and np.isfinite(out).all()
    assert exported[fmt].stat().st_size < 0.5 * exported["onnx"].stat().st_size
    agreement = float(np.mean(out.argmax(1) == reference.argmax(1)))
    record_property("top1_agreement_with_fp32", agreement)  # random weights: near-tied logits may flip
    print(f"{fmt}: top-1 agreement with fp32 on random inputs {agreement:.2f}, "
          f"max |logit diff| {np.abs(out - reference).max():.2g}")
    np.testing.assert_allclose(out, reference, atol=0.05 * np.abs(reference).max(), rtol=0)


def test_torch_dynamic_quantisation_of_linear_layers(dsc):
    quantized = quantize_torch_dynamic(dsc.model)
    x = torch.from_numpy(images(4))
    with torch.no_grad():
        ref, out = dsc.model(x), quantized(x)
    assert torch.allclose(out, ref, atol=0.05 * ref.abs().max().item())
    assert not any(isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear for m in quantized.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in dsc.model.modules())  # the original is untouched

    def saved_bytes(module: torch.nn.Module) -> int:
        buf = io.BytesIO()
        torch.save(module.state_dict(), buf)
        return buf.tell()

    assert saved_bytes(quantized) < 0.35 * saved_bytes(dsc.model)


# --------------------------------------------------------------------------- files and errors
def test_a_failed_export_leaves_no_file_and_keeps_the_old_one(monkeypatch, tmp_path):
    source = make_source("dsc_gap")
    target = tmp_path / "model.onnx"

    def broken(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_model(source, "onnx", target)
    assert list(tmp_path.iterdir()) == []  # no partial file, no scratch folder
    monkeypatch.undo()

    export_model(source, "torchscript", target)  # a complete file, then a failing re-export over it
    before = target.read_bytes()
    monkeypatch.setattr(torch.jit, "save", lambda module, path: (Path(path).write_bytes(b"half"), broken())[1])
    with pytest.raises(RuntimeError):
        export_model(source, "torchscript", target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]


def test_metadata_file_describes_the_export(dsc, exported):
    path = exported["onnx-int8-static"]
    meta = read_sidecar(path).meta
    assert meta["format"] == "onnx-int8-static" and meta["runtime"] == "onnxruntime"
    assert meta["file"] == path.name and meta["sha256"] == file_sha256(path)
    assert meta["input"]["name"] == "image" and meta["input"]["shape"] == ["batch", 3, SIZE, SIZE]
    assert meta["input"]["range"] == [0.0, 1.0] and "inside the model" in meta["input"]["normalisation"]
    assert meta["input"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["output"]["classes"] == CLASSES and meta["output"]["shape"] == ["batch", len(CLASSES)]
    assert meta["model"]["name"] == "dsc" and meta["model"]["image_size"] == SIZE
    assert meta["calibration_images"] == 24  # all of the 24 training images (fewer than 64)
    assert meta["source"] == {"checkpoint": None, "sha256": None}
    assert {"dermkd", "torch", "onnx", "onnxruntime"} <= {k for k, v in meta["versions"].items() if v}
    torch_meta = read_sidecar(exported["torchscript"]).meta
    assert "name" not in torch_meta["input"] and torch_meta["calibration_images"] is None


def test_load_errors_are_one_line(tmp_path, exported):
    with pytest.raises(DermkdError, match="exported model not found"):
        load_predictor(tmp_path / "missing.onnx")
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(exported["onnx"].read_bytes())
    with pytest.raises(DermkdError, match="no metadata file bare.onnx.json"):
        load_predictor(bare)
    sidecar_path(bare).write_text('{"format": "tflite", "model": {"image_size": 32, "classes": ["a", "b"]}}')
    with pytest.raises(DermkdError, match="unknown export format 'tflite'; known: onnx"):
        load_predictor(bare)
    with pytest.raises(DermkdError, match="unknown export format"):
        export_model(make_source("dsc_gap"), "tflite", tmp_path / "x.tflite")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    sidecar_path(garbage).write_text(sidecar_path(exported["onnx"]).read_text())
    with pytest.raises(DermkdError, match="ONNX Runtime cannot load") as err:
        load_predictor(garbage)
    assert "\n" not in str(err.value)
    predict = load_predictor(exported["onnx"])
    with pytest.raises(DermkdError, match=r"shape \(B, 3, 32, 32\), got \(2, 3, 16, 16\)"):
        predict(np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(DermkdError, match="float images"):
        predict(np.zeros((2, 3, SIZE, SIZE), np.uint8))


def test_missing_checkpoint_and_calibration_images(tmp_path):
    with pytest.raises(DermkdError, match="checkpoint not found"):
        source_from_run(tmp_path / "no-such-run")
    source = Source.from_model(create_model("dsc_gap", 2, image_size=SIZE), ["a", "b"], SIZE)
    with pytest.raises(DermkdError, match="calibrates on training images"):
        export_model(source, "onnx-int8-static", tmp_path / "static.onnx")
    assert not (tmp_path / "static.onnx").exists()


def test_missing_optional_dependency_says_what_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == "onnxruntime"] + ["onnxruntime"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import onnxruntime[.x]` fail
    with pytest.raises(DermkdError, match=r"onnxruntime is not installed.*pip install 'dermkd\[export\]'"):
        export_model(make_source("dsc_gap"), "onnx-int8-dynamic", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# --------------------------------------------------------------------------- a trained run
@pytest.fixture
def fake_run(tiny_tree, tmp_path) -> Path:
    """A folder laid out as a training run leaves it, with random dsc weights."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"root": str(tiny_tree), "image_size": SIZE}}))
    splits = ["train"] * 4 + ["val", "test"]  # tiny_tree: 6 images per class
    rows = [f"{folder.name}/{f.name},{folder.name},{split}" for folder in sorted(tiny_tree.iterdir())
            for f, split in zip(sorted(folder.iterdir()), splits)]
    (run / "split.csv").write_text("\n".join(["path,label,split", *rows]) + "\n")
    classes = run_data(run).classes
    torch.manual_seed(0)
    model = create_model("dsc", len(classes), image_size=SIZE)
    spec = {**model.describe(), "classes": classes, "image_size": SIZE}
    torch.save({"hyper_parameters": {"model_spec": spec},
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
               run / "checkpoints" / "best.ckpt")
    return run


def test_export_from_a_run_records_its_checkpoint(fake_run, tmp_path):
    path = export_model(source_from_run(fake_run), "onnx-int8-static", tmp_path / "student.onnx")
    meta = read_sidecar(path).meta
    ckpt = fake_run / "checkpoints" / "best.ckpt"
    assert meta["source"] == {"checkpoint": str(ckpt), "sha256": file_sha256(ckpt)}
    assert meta["calibration_images"] == 12  # the run's own training split: 3 classes x 4
    assert load_predictor(path)(images(2)).shape == (2, 3)


def inference_figures(ctx) -> list:
    import dermkd.bench.inference  # noqa: F401  (registers the benchmark)
    from dermkd.bench.common import BENCHMARKS

    figures = BENCHMARKS.get("inference")(ctx)
    for f in figures:
        assert f.bench == "inference" and f.reference and math.isfinite(f.value), f
    return figures


def test_inference_benchmark_smoke(tmp_path):
    from dermkd.bench.common import BenchContext
    from dermkd.bench.inference import BACKENDS

    names = [f.name for f in inference_figures(BenchContext(size="smoke", work_dir=tmp_path, threads=1))]
    for model in ("student dsc", "student dsc_gap", "teacher resnet50"):
        for backend in ("eager", *BACKENDS):
            assert f"{model} {backend}: batch-1 latency p50" in names
            assert f"{model} {backend}: batch-32 throughput" in names
    assert not any("top-1" in n for n in names)  # random weights: no accuracy figures


def test_inference_benchmark_scores_trained_runs(fake_run, tmp_path):
    """The fake run stands for the teacher too, so that no ResNet-50 is exported here."""
    from dermkd.bench.common import BenchContext

    ctx = BenchContext(size="smoke", work_dir=tmp_path, threads=1, student_run=fake_run, teacher_run=fake_run)
    values = {f.name: f.value for f in inference_figures(ctx)}
    for role in ("student", "teacher"):
        assert 0 <= values[f"{role} dsc eager: top-1"] <= 100
        assert values[f"{role} dsc onnx: same prediction as eager"] == 100.0
        assert f"{role} dsc onnx-int8-static: top-1 change vs eager" in values
    assert not any(n.startswith("student dsc_gap") and "top-1" in n for n in values)  # random weights


@pytest.mark.slow
def test_torch_compile_predictor_matches_eager():
    """Slow: inductor compiles C++ for each input shape (tens of seconds on 2 cores)."""
    from dermkd.export.predictor import compiled

    source = make_source("dsc_gap")
    predict = compiled(source.model, SIZE, CLASSES, threads=1)
    for n in (1, 3):
        x = images(n)
        np.testing.assert_allclose(predict(x), eager_logits(source, x), atol=1e-4, rtol=0)


def test_cli_export_writes_each_format_and_checks_it(fake_run, run_cli):
    code, out, err, _ = run_cli("export", fake_run, "--format", "onnx", "--format", "torchscript",
                                "--out", fake_run / "exp", "--check")
    assert code == 0, err
    for name in ("dsc.onnx.onnx", "dsc.torchscript.pt"):
        assert (fake_run / "exp" / name).is_file() and sidecar_path(fake_run / "exp" / name).is_file()
    tops = [line.rsplit("test top-1 ", 1)[1].split()[0] for line in out.splitlines() if "test top-1" in line]
    assert len(tops) == 3 and len(set(tops)) == 1  # onnx, torchscript and eager agree on the test split
    code, _, err, _ = run_cli("export", fake_run, "--format", "tflite")
    assert code == 1 and err.splitlines() == [err.strip()] and "unknown export format 'tflite'" in err
    code, _, err, _ = run_cli("export", fake_run / "nope")
    assert code == 1 and "not found" in err
