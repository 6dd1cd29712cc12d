"""`dermkd predict`: the ISIC submission CSV (image + one probability column per class
code, nothing else), the details beside it, unreadable files listed and skipped, TTA, and
the same answers from a run directory and from its ONNX export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_image

from dermkd.data.taxonomy import ISIC9, code_of


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from dermkd.pipeline import load_data
    from dermkd.profiles import build_config
    from dermkd.train.stage import run_stage

    out = tmp_path_factory.mktemp("predict")
    cfg = build_config("tiny", {"out_dir": str(out), "name": "p", "kd": {"strategy": "baseline"}})
    return run_stage(cfg, load_data(cfg), out / "p").run_dir


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "in"
    for i in range(5):
        write_image(folder / "sub" / f"ISIC_{i:07d}.png", i)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


def test_predict_writes_the_isic_format_and_lists_unreadable_files(run_cli, trained, images):
    code, out, err, cwd = run_cli("predict", trained, images, "--out", "preds.csv")
    assert code == 0, err
    table = rows(cwd / "preds.csv")
    classes = json.loads((trained / "metrics.json").read_text())["model"]["classes"]
    assert len(classes) == len(ISIC9)
    codes = [code_of(c) for c in classes]
    assert list(table[0]) == ["image", *codes]  # nothing but the submission columns
    assert sorted(r["image"] for r in table) == [f"ISIC_{i:07d}" for i in range(5)]
    for r in table:
        assert sum(float(r[c]) for c in codes) == pytest.approx(1.0, abs=1e-5)
    details = {r["image"]: r for r in rows(cwd / "preds.details.csv")}
    assert details["broken"]["error"].startswith("not a readable image") and details["broken"]["top_class"] == ""
    for r in table:
        d = details[r["image"]]
        probs = {c: float(r[c]) for c in codes}
        assert code_of(d["top_class"]) == max(probs, key=probs.get)
        assert float(d["malignant_probability"]) == pytest.approx(sum(probs[c] for c in ("AK", "BCC", "MEL", "SCC")),
                                                                  abs=1e-5)
    assert "5 images scored" in out and "1 unreadable" in out


def test_the_onnx_export_and_the_run_give_the_same_probabilities(run_cli, trained, images):
    pytest.importorskip("onnxruntime")
    code, _, err, cwd = run_cli("export", trained, "--format", "onnx", "--out", "exp")
    assert code == 0, err
    onnx_file = next((cwd / "exp").glob("*.onnx"))
    assert run_cli("predict", trained, images, "--out", "torch.csv")[0] == 0
    assert run_cli("predict", onnx_file, images, "--out", "onnx.csv")[0] == 0
    a, b = rows(cwd / "torch.csv"), rows(cwd / "onnx.csv")
    assert [r["image"] for r in a] == [r["image"] for r in b]
    diff = max(abs(float(x[c]) - float(y[c])) for x, y in zip(a, b) for c in x if c != "image")
    assert diff < 1e-4


def test_tta_averages_the_four_flips(trained, images):
    from dermkd.serve.predict import collect_inputs, flips, open_model, predict_files

    predictor = open_model(trained)
    paths = collect_inputs([images / "sub"])
    plain = predict_files(predictor, paths, progress=False)
    tta = predict_files(predictor, paths, tta=True, progress=False)
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    views = list(flips(x))
    assert len(views) == 4 and np.array_equal(views[3][0, 0], x[0, 0, ::-1, ::-1])
    assert all(np.allclose(t.probabilities.sum(), 1.0, atol=1e-5) for t in tta)
    assert any(not np.allclose(p.probabilities, t.probabilities) for p, t in zip(plain, tta))


def test_inputs_from_a_csv_list_and_missing_inputs(tmp_path, images):
    from dermkd.errors import DermkdError
    from dermkd.serve.predict import collect_inputs

    listing = tmp_path / "list.csv"
    listing.write_text("image,label\nin/sub/ISIC_0000001.png,nevus\nin/sub/ISIC_0000003.png,nevus\n")
    assert [p.name for p in collect_inputs([listing, images / "sub" / "ISIC_0000001.png"])] == \
        ["ISIC_0000001.png", "ISIC_0000003.png"]  # each file once
    with pytest.raises(DermkdError, match="input not found: .*nope"):
        collect_inputs([tmp_path / "nope"])
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.png\n")
    with pytest.raises(DermkdError, match="needs a column image or path"):
        collect_inputs([bad])


def test_model_card_of_a_run_and_its_check(run_cli, trained):
    from dermkd.errors import DermkdError
    from dermkd.evaluate.stats import bootstrap_ci
    from dermkd.report.loading import read_predictions
    from dermkd.serve.predict import open_model

    code, out, err, _ = run_cli("card", trained)
    assert code == 0, err
    card = json.loads((trained / "model_card.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    assert [c["name"] for c in card["classes"]] == metrics["model"]["classes"]
    assert {c["code"]: c["malignant"] for c in card["classes"]}["MEL"] is True
    assert {c["code"]: c["malignant"] for c in card["classes"]}["NV"] is False
    assert card["input"]["shape"] == [None, 3, 32, 32] and card["output"]["shape"] == [None, 9]
    pred = read_predictions(trained / "predictions.csv")
    ci = bootstrap_ci(pred.labels, pred.preds, 9)["balanced_accuracy"]
    assert card["test_metrics"]["balanced_accuracy"] == {"value": metrics["balanced_accuracy"], "ci95": list(ci)}
    assert "not a medical device" in card["intended_use"] and "not a medical device" in (
        trained / "model_card.md").read_text()
    assert card["training_data"]["fingerprint"] == json.loads((trained / "env.json").read_text())["data"]["fingerprint"]
    # a card that no longer matches its model is caught when the model is loaded
    card["output"]["shape"] = [None, 7]
    (trained / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(DermkdError, match=r"the model card does not match its model: output \(1, 9\) for \(1, 7\)"):
        open_model(trained)
    (trained / "model_card.json").unlink()


def test_evaluate_scores_a_predictions_csv_against_labelled_folders(run_cli, trained, tmp_path):
    from dermkd.evaluate.metrics import compute_metrics

    folder = tmp_path / "labelled"
    for i, cls in enumerate(["nevus", "melanoma", "nevus", "dermatofibroma"]):
        write_image(folder / cls / f"ISIC_{i:07d}.png", 50 + i)
    assert run_cli("predict", trained, folder, "--out", "p.csv")[0] == 0
    code, _, err, cwd = run_cli("evaluate", "p.csv", "--data", folder, "--output", "m.json", "--truth-out", "t.csv")
    assert code == 0, err
    got = json.loads((cwd / "m.json").read_text())
    table = rows(cwd / "p.csv")
    classes = json.loads((trained / "metrics.json").read_text())["model"]["classes"]
    probs = np.array([[float(r[code_of(c)]) for c in classes] for r in table])
    truth = {f"ISIC_{i:07d}": c for i, c in enumerate(["nevus", "melanoma", "nevus", "dermatofibroma"])}
    y = np.array([classes.index(truth[r["image"]]) for r in table])
    expected = compute_metrics(y, probs.argmax(1), classes, probs)
    assert got["n"] == 4 and got["top1_accuracy"] == expected["top1_accuracy"]
    assert got["balanced_accuracy"] == expected["balanced_accuracy"]
    truth_rows = rows(cwd / "t.csv")  # the ISIC ground truth: same columns as the predictions, one-hot
    assert list(truth_rows[0]) == list(table[0]) and [r["image"] for r in truth_rows] == [r["image"] for r in table]
    assert all(float(r[code_of(truth[r["image"]])]) == 1.0 and sum(float(v) for k, v in r.items() if k != "image")
               == 1.0 for r in truth_rows)
    code, _, err, _ = run_cli("evaluate", "p.csv")
    assert code == 1 and "needs --data" in err


def test_an_id_under_two_class_folders_blocks_scoring_only_when_it_was_predicted(run_cli, trained, tmp_path):
    folder = tmp_path / "labelled"
    for i, cls in enumerate(["nevus", "melanoma", "nevus"]):
        write_image(folder / cls / f"ISIC_{i:07d}.png", 70 + i)
    write_image(folder / "melanoma" / "ISIC_0000000.png", 70)  # isic9 has such copies under two labels
    assert run_cli("predict", trained, folder / "nevus" / "ISIC_0000002.png", "--out", "one.csv")[0] == 0
    assert run_cli("evaluate", "one.csv", "--data", folder)[0] == 0  # the ambiguous id was not predicted
    assert run_cli("predict", trained, folder / "nevus", "--out", "both.csv")[0] == 0
    code, _, err, _ = run_cli("evaluate", "both.csv", "--data", folder)
    assert code == 1 and "1 predicted image ids are under two class folders" in err and "ISIC_0000000" in err
