"""The study report, on fake study directories: no training, synthetic seeded predictions
written in the runner's own file formats."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from dermkd.data.taxonomy import ISIC9
from dermkd.evaluate.metrics import compute_metrics
from dermkd.evaluate.stats import bootstrap_ci, mcnemar
from dermkd.io import write_csv, write_json, write_yaml
from dermkd.report.cells import MISSING, p_value
from dermkd.report.costs import measure
from dermkd.report.study_report import write_report
from dermkd.study.grid import RunSpec, load_study
from dermkd.study.results import flatten_metrics, write_results
from dermkd.train.history import COLUMNS as HISTORY_COLUMNS

CLASSES = [c.name for c in ISIC9]
CODES = [c.code for c in ISIC9]
N_TEST = 150
LABELS = np.random.default_rng(123).integers(0, len(CLASSES), N_TEST)  # one test set, shared by every run
PATHS = [f"test/{CODES[y]}/img_{i:03d}.jpg" for i, y in enumerate(LABELS)]
IMAGE_SIZE = 32
FAILED_ERROR = "RuntimeError: out of memory (fake)"


def fake_preds(seed: int, accuracy: float) -> np.ndarray:
    """Right with probability `accuracy`, else a random class."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(N_TEST) < accuracy, LABELS, rng.integers(0, len(CLASSES), N_TEST))


def write_stage(run_dir: Path, model: str, preds: np.ndarray, strategy: str, params: int = 1000) -> dict:
    """metrics.json, history.csv, predictions.csv and env.json as run_stage writes them."""
    probs = np.full((N_TEST, len(CLASSES)), 0.02)
    probs[np.arange(N_TEST), preds] = 1 - 0.02 * (len(CLASSES) - 1)
    metrics = compute_metrics(LABELS, preds, CLASSES, probs)
    metrics.update(split="test", run=run_dir.name, strategy=strategy, teacher=None, epochs_trained=3,
                   wall_seconds=12.5, model={"name": model, "num_classes": len(CLASSES), "parameters": params,
                                             "classes": CLASSES, "image_size": IMAGE_SIZE})
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "env.json", {"status": "done", "strategy": strategy})
    write_csv(run_dir / "predictions.csv",
              [{"path": p, "label": int(y), "pred": int(k), **{f"p_{c}": float(v) for c, v in zip(CODES, pr)}}
               for p, y, k, pr in zip(PATHS, LABELS, preds, probs)],
              ["path", "label", "pred", *(f"p_{c}" for c in CODES)])
    epochs = range(3)
    write_csv(run_dir / "history.csv",
              [{"epoch": e, "train_loss": 2.0 - 0.3 * e, "train_hard_loss": 1.5 - 0.2 * e, "train_kd_loss": "",
                "train_acc": 0.3 + 0.1 * e, "val_loss": 2.1 - 0.25 * e, "val_acc": 0.28 + 0.09 * e, "lr": 0.01,
                "seconds": 4.2} for e in epochs], HISTORY_COLUMNS)
    return metrics


def accuracy_of(spec: RunSpec) -> float:
    """Baseline weak, standard/adamax strong (a real difference), the rest close to baseline."""
    if spec.strategy == "baseline":
        return 0.45
    if spec.strategy == "standard" and spec.optimizer == "adamax" and spec.kd_multiplier == 2:
        return 0.8
    return 0.5


def build_study(root: Path, sweeps: dict, seeds: list[int], fail: str | None = None) -> dict[str, RunSpec]:
    """A finished study directory for `sweeps`; the run whose id contains `fail` failed."""
    study_file = root.parent / f"{root.name}.yaml"
    study_file.write_text(yaml.safe_dump({"name": root.name, "profile": "tiny", "seeds": seeds,
                                          "base": {"teacher": {"name": "resnet18"}}, "sweeps": sweeps}))
    study = load_study(study_file)
    write_yaml(root / "study.yaml", dataclasses.asdict(study))  # as the runner does
    specs = study.specs()
    rows = []
    for i, spec in enumerate(specs):
        row = {"run": spec.run_id, **spec.axes(), "sweeps": ",".join(spec.sweeps)}
        if fail and fail in spec.run_id:
            row.update(status="failed", error=FAILED_ERROR)
        else:
            preds = fake_preds(1000 * spec.seed + i, accuracy_of(spec))
            row.update(status="done", error="", **flatten_metrics(
                write_stage(root / "runs" / spec.run_id, spec.student, preds, spec.strategy)))
        rows.append(row)
    for teacher in {s.teacher for s in specs if s.teacher != "-"}:
        for seed in seeds:
            write_stage(root / "teachers" / f"{teacher}-s{seed}", teacher, fake_preds(7 + seed, 0.7), "baseline")
    write_results(root, rows)
    return {s.run_id: s for s in specs}


FULL_SWEEPS = {
    "table4": {"strategy": ["standard"], "optimizer": ["adam", "sgd", "adagrad", "adamax", "nadam", "rmsprop"]},
    "strategies": {"strategy": ["baseline", "standard", "reversed", "defective", "self", "teacher-free"]},
    "teachers": {"strategy": ["standard"], "teacher": ["resnet18", "mobilenetv3_large_100"]},
    "kd_multiplier": {"strategy": ["standard"], "kd_multiplier": [1, 2]},
}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, RunSpec], str, str]:
    """One full fake study, reported once for every test below."""
    root = tmp_path_factory.mktemp("study") / "full"
    specs = build_study(root, FULL_SWEEPS, seeds=[0], fail="-m1-")
    html_path = write_report(root, latency_reps=2)
    return root, specs, html_path.read_text(), (root / "report" / "report.md").read_text()


def read_preds(root: Path, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.genfromtxt(root / "runs" / run_id / "predictions.csv", delimiter=",", skip_header=1,
                         usecols=(1, 2), dtype=np.int64)
    return data[:, 0], data[:, 1]


def section(html: str, title: str) -> str:
    """The HTML of one <section>, found by its heading."""
    match = re.search(rf"<section><h2>{re.escape(title)}.*?</section>", html, re.S)
    assert match, title
    return match.group(0)


def test_report_files_are_self_contained(full):
    root, _, html, md = full
    assert (root / "report" / "report.html").is_file() and (root / "report" / "report.md").is_file()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "<link" not in html and "url(" not in html and "<script" not in html
    for link in re.findall(r"\]\(([^)]+)\)", md):  # Markdown links point at files that exist
        assert (root / "report" / link).is_file(), link


def test_table4_beside_the_paper(full):
    root, specs, html, _ = full
    table4 = section(html, "Table 4 replica")
    assert "Table 4 (ours)" in table4 and "OvR accuracy" in table4 and "Top-1" in table4
    assert "0.9916" in table4  # the paper's Adamax sensitivity
    adamax = next(s for s in specs.values() if "table4" in s.sweeps and s.optimizer == "adamax")
    labels, preds = read_preds(root, adamax.run_id)
    ci = bootstrap_ci(labels, preds, len(CLASSES), n_boot=1000, seed=0)
    metrics = compute_metrics(labels, preds, CLASSES)
    for key, v in (("top1_accuracy", metrics["top1_accuracy"]), ("macro_f1", metrics["macro"]["f1"])):
        lo, hi = ci[key]
        assert f"{v:.4f} [{lo:.4f}, {hi:.4f}]" in table4
    ours = metrics["macro"]["sensitivity"]
    assert f"0.9916 ({ours - 0.9916:+.4f})" in table4
    for spec in specs.values():
        if "table4" in spec.sweeps:
            for ext in ("png", "svg"):
                assert (root / "report" / "figures" / f"curves-{spec.run_id}.{ext}").is_file()
    assert "Model loss/accuracy (Adamax)" in table4


def test_strategy_table_mcnemar_matches_recomputation(full):
    root, specs, html, _ = full
    table = section(html, "KD strategies")
    base = next(s for s in specs.values() if s.strategy == "baseline")
    _, base_preds = read_preds(root, base.run_id)
    for spec in specs.values():
        if "strategies" in spec.sweeps and spec.strategy != "baseline":
            labels, preds = read_preds(root, spec.run_id)
            assert p_value(mcnemar(labels, preds, base_preds)["p_value"]) in table
    assert "standard better than baseline" in table  # 0.8 vs 0.45 on 150 images
    assert "the evidence is too weak to rank them" in table
    figures = root / "report" / "figures"
    assert len(list(figures.glob("confusion-*.png"))) == 6 and (figures / "per-class-strategies.svg").is_file()


def test_teacher_table_and_costs(full):
    _, _, html, _ = full
    table = section(html, "Teachers")
    for model in ("resnet18", "mobilenetv3_large_100", "dsc"):
        assert f"<td>{model}</td>" in table
    teacher_top1 = compute_metrics(LABELS, fake_preds(7, 0.7), CLASSES)["top1_accuracy"]
    assert "student, trained without a teacher" in table and f"<td>{teacher_top1:.4f}</td>" in table


def test_pareto_front_and_references(tmp_path):
    """The front holds each student more accurate than every faster one; references stay off it."""
    from dermkd.report.figures import pareto

    points = {"fast": (1.0, 0.40, (0.35, 0.45)), "dominated": (5.0, 0.38, None), "mid": (4.0, 0.50, None),
              "slow": (9.0, 0.55, (0.5, 0.6))}
    fig = pareto(points, tmp_path / "p", references={"dsc, no teacher": (9.0, 0.60, None)})
    assert "on the Pareto front: fast, mid, slow." in fig.caption
    assert "for comparison: dsc, no teacher." in fig.caption
    assert fig.png.stat().st_size > 0 and "dsc, no teacher" in fig.svg.read_text()


def test_students_section_table_and_chart(tmp_path):
    root = tmp_path / "students"
    students = [{"strategy": ["standard"], "student": ["dsc", "dsc_gap", "resnet18"]},  # a union of two grids
                {"strategy": ["standard"], "student": ["resnet18"], "pretrained": ["imagenet"]}]
    specs = build_study(root, {"students": students, "reference": {"strategy": ["baseline"]}}, seeds=[0])
    html = write_report(root, latency_reps=1).read_text()
    table = section(html, "Students: accuracy against cost")
    for name in ("dsc", "dsc_gap", "resnet18", "resnet18 (imagenet)"):  # the same architecture, two starts
        assert f"<td>{name}</td>" in table
    baseline = next(s.run_id for s in specs.values() if s.strategy == "baseline")
    mine = next(s.run_id for s in specs.values() if s.student == "dsc_gap")
    labels, base = read_preds(root, baseline)
    _, preds = read_preds(root, mine)
    assert p_value(mcnemar(labels, base, preds)['p_value']) in table
    assert "Open squares, for comparison: dsc, no teacher, resnet18 (teacher)." in table
    assert (root / "report" / "figures" / "pareto-students.svg").is_file()


def test_dsc_flops_match_hand_count():
    """2 x multiply-adds of DSC's six 2x2 convs and four dense layers at 32 px."""
    s, k = IMAGE_SIZE, 4  # 2x2 kernels
    convs = [(s, 3, 64), (s, 64, 64), (s // 2, 64, 32), (s // 2, 32, 32), (s // 4, 32, 32), (s // 4, 32, 32)]
    macs = sum(side * side * c_in * k * c_out for side, c_in, c_out in convs)
    macs += 32 * (s // 8) ** 2 * 2048 + 2048 * 1024 + 1024 * 1024 + 1024 * len(CLASSES)
    assert measure("dsc", s, len(CLASSES), reps=1, warmup=0).flops == pytest.approx(2 * macs, rel=0.1)


def test_resnet18_flops_match_published_count():
    """ResNet-18: 1.82 G multiply-adds at 224 px; every feature map is 7x smaller per side at 32 px."""
    cost = measure("resnet18", IMAGE_SIZE, len(CLASSES), reps=2, warmup=1)
    assert cost.flops == pytest.approx(2 * 1.82e9 / 49, rel=0.1)
    assert 11.0e6 < cost.params < 11.4e6 and 0 < cost.latency_ms <= cost.latency_p95_ms


def test_summary_failures_and_seeds(full):
    _, specs, html, md = full
    failed = next(s.run_id for s in specs.values() if "-m1-" in s.run_id)
    for text in (html, md):
        assert failed in text and FAILED_ERROR in text
    summary = section(html, "Summary")
    assert "The best by top-1 accuracy is" in summary
    counts = re.search(r"(\d+) of (\d+) runs are better, (\d+) worse, and for (\d+) the evidence", summary)
    assert counts and int(counts[1]) + int(counts[3]) + int(counts[4]) == int(counts[2]) > 0
    claims = section(html, "The paper&#x27;s claims") or section(html, "The paper's claims")
    assert claims.count("<tr>") == 1 + 5 and "Paired top-1 difference of each run" in claims
    assert "our best macro OvR accuracy is" in summary
    assert "need more seeds" in section(html, "Across seeds")
    assert "Sweep: kd_multiplier" in html


def test_study_without_table4_with_seeds_and_missing_predictions(tmp_path):
    root = tmp_path / "small"
    specs = build_study(root, {"strategies": {"strategy": ["baseline", "standard", "teacher-free"]}}, seeds=[0, 1])
    lost = next(s.run_id for s in specs.values() if s.strategy == "teacher-free" and s.seed == 1)
    (root / "runs" / lost / "predictions.csv").unlink()
    html = write_report(root, tmp_path / "out", latency_reps=1).read_text()
    assert "is skipped" in section(html, "Table 4 replica")
    assert f"runs/{lost}/predictions.csv is missing" in html
    seeds = section(html, "Across seeds")
    assert "± " in seeds and "Wilcoxon" in seeds and "Friedman test over the 3 strategies" in seeds
    assert (tmp_path / "out" / "report.md").is_file()


def test_study_with_no_run_files_still_renders(tmp_path):
    """results.csv alone (run folders deleted): every section says what is missing."""
    root = tmp_path / "bare"
    build_study(root, {"table4": {"strategy": ["standard"], "optimizer": ["adam", "sgd"]}}, seeds=[0])
    for run_dir in (root / "runs").iterdir():
        for f in run_dir.iterdir():
            f.unlink()
    html = write_report(root, latency_reps=1).read_text()
    assert "No training curves for Adam" in html and "predictions.csv is missing" in html
    assert "The best by top-1 accuracy is" in html  # from results.csv alone, without an interval


def test_a_partial_study_says_so(tmp_path):
    """While a study runs, results.csv has fewer rows than study.yaml plans: the summary says PARTIAL."""
    from dermkd.report.loading import load_study_dir

    src = tmp_path / "s"
    src.mkdir()
    rows = [{"run": "baseline-dsc-adamax-ce-s0", "strategy": "baseline", "status": "done"}]
    write_results(src, rows)
    (src / "study.yaml").write_text(
        "name: s\nprofile: tiny\nbase: {}\nseeds: [0]\nsweeps:\n  a: {strategy: [baseline, standard]}\n")
    study = load_study_dir(src)
    assert study.planned == 2 and len(study.runs) == 1


def test_claim_verdicts_follow_the_paired_intervals():
    from dermkd.report.claims import FAILS, HOLDS, UNKNOWN, _verdict

    assert _verdict([("a", (3.0, 1.0, 5.0)), ("b", (2.0, 0.5, 4.0))])[0] == HOLDS
    assert _verdict([("a", (3.0, 1.0, 5.0)), ("b", (-2.0, -4.0, -0.5))])[0] == FAILS
    assert _verdict([("a", (3.0, 1.0, 5.0)), ("b", (1.0, -1.0, 3.0))])[0] == UNKNOWN
    verdict, text = _verdict([])
    assert verdict == UNKNOWN and "not in this study" in text
    _, text = _verdict([(f"r{i}", (float(i), i - 1.0, i + 1.0)) for i in range(4)])
    assert text.startswith("4 paired comparisons: 2 above 0, 0 below 0, 2 include 0; differences +0.0 to +3.0")


def test_calibration_section_ece_by_hand_before_and_after_the_stored_temperature(tmp_path):
    root = tmp_path / "cal"
    specs = build_study(root, {"strategies": {"strategy": ["baseline", "standard"]}}, seeds=[0])
    kd = next(r for r, s in specs.items() if s.strategy == "standard")
    write_json(root / "runs" / kd / "calibration.json", {"temperature": 2.0})
    html = section(write_report(root, latency_reps=1).read_text(), "Calibration")
    # every fake image puts 0.84 on its predicted class and 0.02 on the 8 others: one bin,
    # ECE = |accuracy - 0.84|; at T = 2 the confidence is sqrt(.84) / (sqrt(.84) + 8 sqrt(.02))
    acc = {r: float(np.mean(np.equal(*read_preds(root, r)))) for r in specs}
    conf_t2 = np.sqrt(0.84) / (np.sqrt(0.84) + 8 * np.sqrt(0.02))
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
    base = next(r for r in specs if r != kd)
    assert {r[0]: r[1:] for r in rows} == {
        base: (f"{abs(acc[base] - 0.84):.3f}", MISSING, MISSING),
        kd: (f"{abs(acc[kd] - 0.84):.3f}", "2.000", f"{abs(acc[kd] - conf_t2):.3f}")}
    assert (root / "report" / "figures" / "reliability.png").stat().st_size > 5000


def test_kd_claim_compares_each_kd_run_only_with_a_baseline_that_differs_in_kd_alone(tmp_path):
    """Table 4's SGD run has no SGD baseline: set against the Adamax baseline it would measure
    the optimizer, so the KD claim leaves it out; the Adamax KD run is its evidence."""
    from dermkd.report.analysis import Analysis
    from dermkd.report.claims import _kd_helps
    from dermkd.report.loading import load_study_dir

    root = tmp_path / "kd"
    specs = build_study(root, {"table4": {"strategy": ["standard"], "optimizer": ["sgd", "adamax"]},
                               "strategies": {"strategy": ["baseline"]}}, seeds=[0])
    study = load_study_dir(root)
    _, text = _kd_helps(study, Analysis(study))
    kd = next(r for r, s in specs.items() if s.optimizer == "adamax" and s.strategy == "standard")
    assert text.startswith(f"{kd} vs baseline-dsc-adamax-ce-s0: ") and "sgd" not in text
