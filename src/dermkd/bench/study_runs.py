"""The trained runs a benchmark's accuracy columns need, found in a finished students study
(`src/dermkd/configs/study-students.yaml`): the same KD run with a live teacher and with
the teacher-logit store (its `store` sweep), and the teacher both learned from."""

from __future__ import annotations

from pathlib import Path

from dermkd.errors import DermkdError
from dermkd.report.loading import load_study_dir
from dermkd.rundir import RunDir


def runs_from_study(study_dir: Path) -> dict[str, Path]:
    """{"student_run", "teacher_run", "live_run", "store_run"} of `study_dir`; the student
    scored for export is the live-teacher KD run. A DermkdError names what is missing."""
    study = load_study_dir(study_dir)
    store_sweep = [r for r in study.runs if r.done and "store" in r.sweeps]
    live = [r for r in store_sweep if r.axes["teacher_cache"] in ("0", "")]
    stored = [r for r in store_sweep if r.axes["teacher_cache"] not in ("0", "")]
    if not live or not stored:
        raise DermkdError(f"{study_dir}: no finished pair of `store` sweep runs (teacher_cache 0 and K > 0); "
                          "run `dermkd study src/dermkd/configs/study-students.yaml` first")
    live_run = live[0]
    store_run = next((r for r in stored if r.seed == live_run.seed), stored[0])
    root = Path(study_dir)
    found = {"student_run": root / "runs" / live_run.run_id,
             "teacher_run": root / "teachers" / f"{live_run.axes['teacher']}-s{live_run.axes['seed']}",
             "live_run": root / "runs" / live_run.run_id, "store_run": root / "runs" / store_run.run_id}
    needs = {"student_run": "best", "teacher_run": "best", "live_run": "predictions", "store_run": "predictions"}
    for role, path in found.items():
        needed = getattr(RunDir(path), needs[role])
        if not needed.is_file():
            raise DermkdError(f"{path}: no {needed.relative_to(path)} (a study copied without its checkpoints cannot "
                              "be benchmarked)")
    return found
