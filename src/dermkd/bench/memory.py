"""How much memory does dermkd need? Peak resident memory of a child process that trains
the student for one epoch as `dermkd train` does (cpu profile, `run_stage`, data decoded
in the child), and of one that loads that run and predicts the test split; each beside a
child that only imports torch and dermkd.

Each child reports its own peak, VmHWM from /proc/self/status, when it is done. Not
ru_maxrss: Linux carries it across exec, so a child of a large process would report at
least the parent's resident size at the fork.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, check
from dermkd.errors import DermkdError

TARGET_GIB = 4.0

CHILD = """
import json, re, sys
args = json.loads(sys.argv[1])
import torch
torch.set_num_threads(args["threads"])
import dermkd.train.stage, dermkd.pipeline, dermkd.evaluate.predict
{body}
status = open("/proc/self/status").read()
print(json.dumps({{"peak_kib": int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))}}))
"""

BODIES = {
    "baseline": "",
    "training": """
from dermkd.profiles import build_config
cfg = build_config(args["profile"], args["overrides"])
dermkd.train.stage.run_stage(cfg, dermkd.pipeline.load_data(cfg), args["run_dir"], resume=False)
""",
    "inference": """
from dermkd.train.checkpoints import load_model
model, _ = load_model(args["run_dir"])
dermkd.evaluate.predict.predict_proba(model, torch.load(args["images"]))
""",
}


def peak_gib(what: str, args: dict) -> float:
    """Peak RSS in GiB of a child running BODIES[what]."""
    proc = subprocess.run([sys.executable, "-c", CHILD.format(body=BODIES[what]), json.dumps(args)],
                          capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DermkdError(f"{what} child exited with {proc.returncode}: {last}")
    return json.loads(lines[-1])["peak_kib"] / 2**20


@BENCHMARKS.register("memory")
def memory(ctx: BenchContext) -> list[Figure]:
    if not Path("/proc/self/status").is_file():
        raise DermkdError(f"needs Linux's /proc/self/status (this is {sys.platform})")
    data = ctx.data
    profile = "tiny" if ctx.smoke else "cpu"
    overrides = {"data": {"root": str(data.root), "image_size": ctx.image_size}, "kd": {"strategy": "baseline"},
                 "train": {"epochs": 1, "threads": ctx.threads, "seed": ctx.seed, "progress": False,
                           "limit_train_batches": 2 if ctx.smoke else None}}
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.work_dir, prefix="memory-") as tmp:
        run_dir, images = Path(tmp) / "run", Path(tmp) / "test-images.pt"
        torch.save(data.images["test"], images)
        common = {"threads": ctx.threads, "run_dir": str(run_dir), "images": str(images)}
        baseline = peak_gib("baseline", common)
        train = peak_gib("training", {**common, "profile": profile, "overrides": overrides})
        infer = peak_gib("inference", common)
    reference = f"baseline {baseline:.2f} GiB (a process that imports torch + dermkd)"
    target, met = check(train, "<=", TARGET_GIB)
    n_train = "2 batches" if ctx.smoke else f"{len(data.labels['train'])} images"
    return [
        Figure("memory", "peak RSS, training (one epoch, run_stage)", train, "GiB", reference, target, met,
               note=f"{profile} profile, {ctx.image_size} px, {n_train}, validation and test scoring included"),
        Figure("memory", "peak RSS, inference (load run, predict test split)", infer, "GiB", reference,
               note=f"{len(data.labels['test'])} test images, predict_proba batch 64"),
    ]
