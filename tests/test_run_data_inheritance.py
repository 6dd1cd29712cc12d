"""`dermkd evaluate RUN` and `dermkd distill --teacher RUN` (no --data) read the run's
whole data config: every layout, both tasks, every class-balance option. Before issue 11
they copied only root and image size, so a binary run ended in `KeyError: 'malignant'`.

Each case trains a 1-epoch tiny run through the CLI, then checks that evaluate scores
exactly the run's own test images with exactly its predictions, and that a student
distilled from it (for the layouts) is tested on the same test images.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import write_image

CLASSES = {"nevus": ("NV", "nv", "nevus"), "melanoma": ("MEL", "mel", "melanoma"),
           "basal cell carcinoma": ("BCC", "bcc", "basal cell carcinoma")}  # isic2019, ham10000, isic2020 codes
PER_CLASS = 10
ONE_HOT = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")


def images(root: Path) -> list[tuple[Path, str]]:
    """PER_CLASS distinct images per class, flat under root: (path, class name)."""
    out, seed = [], 0
    for name in CLASSES:
        for _ in range(PER_CLASS):
            out.append((write_image(root / f"ISIC_{seed:07d}.jpg", seed), name))
            seed += 1
    return out


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def make_layout(layout: str, tmp: Path) -> list[str]:
    """A data set in `layout` under tmp; returns the data flags for it."""
    root = tmp / "images"
    if layout == "folders":
        for i, name in enumerate(CLASSES):
            for j in range(PER_CLASS):
                write_image(root / name / f"img_{j:02d}.png", 100 * i + j)
        return ["--data", root]
    found = images(root)
    if layout == "csv":
        meta = write_rows(tmp / "labels.csv", ["path", "label"], [[p.name, n] for p, n in found])
    elif layout == "ham10000":
        meta = write_rows(tmp / "meta.csv", ["lesion_id", "image_id", "dx"],
                          [[f"HAM_{i // 2:07d}", p.stem, CLASSES[n][1]] for i, (p, n) in enumerate(found)])
    elif layout == "isic2019":
        meta = write_rows(tmp / "gt.csv", ["image", *ONE_HOT],
                          [[p.stem, *("1.0" if c == CLASSES[n][0] else "0.0" for c in ONE_HOT)] for p, n in found])
    else:  # isic2020
        meta = write_rows(tmp / "gt.csv", ["image_name", "patient_id", "diagnosis"],
                          [[p.stem, f"IP_{i}", CLASSES[n][2]] for i, (p, n) in enumerate(found)])
    return ["--data", root, "--layout", layout, "--metadata", meta]


def split_test_paths(run: Path) -> list[str]:
    with (run / "split.csv").open(encoding="utf-8") as fh:
        return sorted(r["path"] for r in csv.DictReader(fh) if r["split"] == "test")


def predictions(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["path"])


def train_and_evaluate(run_cli, data_flags: list, *extra: str) -> Path:
    code, _, err, cwd = run_cli("train", "--profile", "tiny", "--name", "t", *data_flags, *extra)
    assert code == 0, err
    run = cwd / "runs" / "t"
    out = cwd / "eval.csv"
    code, _, err, _ = run_cli("evaluate", run, "--predictions", out, "--output", cwd / "eval.json")
    assert code == 0, err
    evaluated = json.loads((cwd / "eval.json").read_text())
    assert evaluated["n"] == len(split_test_paths(run))
    assert predictions(out) == predictions(run / "predictions.csv")  # the same images, the same answers
    return run


@pytest.mark.parametrize("task", ["multiclass", "binary"])
@pytest.mark.parametrize("layout", ["folders", "csv", "ham10000", "isic2019", "isic2020"])
def test_evaluate_and_distill_reproduce_the_runs_own_test_split(run_cli, tmp_path, layout, task):
    run = train_and_evaluate(run_cli, make_layout(layout, tmp_path), "--task", task)
    classes = json.loads((run / "metrics.json").read_text())["model"]["classes"]
    assert classes == (["benign", "malignant"] if task == "binary" else ["basal cell carcinoma", "melanoma", "nevus"])
    if task == "binary":  # distillation: once per layout is enough, binary being the case that broke
        code, _, err, cwd = run_cli("distill", "--teacher", run, "--profile", "tiny", "--name", "s")
        assert code == 0, err
        assert split_test_paths(cwd / "runs" / "s") == split_test_paths(run)
        saved = (cwd / "runs" / "s" / "config.yaml").read_text()
        assert f"layout: {layout}" in saved and "task: binary" in saved


@pytest.mark.parametrize("balance", ["none", "loss", "sampler"])
def test_evaluate_reproduces_a_class_balanced_run(run_cli, tmp_path, balance):
    run = train_and_evaluate(run_cli, make_layout("folders", tmp_path), "--class-balance", balance)
    assert f"class_balance: {balance}" in (run / "config.yaml").read_text()


def test_a_run_made_by_another_version_is_one_line_that_says_what_to_do(run_cli, tmp_path):
    run = train_and_evaluate(run_cli, make_layout("folders", tmp_path))
    cfg = run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("data:\n", "data:\n  colour_space: rgb\n"))
    code, _, err, _ = run_cli("evaluate", run)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "unknown config key 'colour_space'" in err and "remove or rename that key" in err


def test_config_files_of_runs_made_before_the_change_still_load():
    """The committed result runs (made by earlier dermkd versions) load into today's config."""
    from dermkd.config import RunConfig
    from dermkd.io import load_yaml

    docs = Path(__file__).resolve().parents[1] / "docs" / "results"
    saved = sorted(docs.rglob("config.yaml"))
    assert len(saved) >= 10
    for path in saved:
        cfg = RunConfig.from_dict(load_yaml(path))
        assert cfg.augment.degrees == 20.0 and cfg.to_dict()["data"] == load_yaml(path)["data"] | {
            k: v for k, v in cfg.to_dict()["data"].items() if k not in load_yaml(path)["data"]}
