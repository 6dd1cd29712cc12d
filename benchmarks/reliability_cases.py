"""Every fault case of issue 12 run as a user would (real `dermkd` processes, tiny profile,
in a scratch folder), as one Markdown table: the command, its exit code, the last line it
printed on stderr, whether a traceback appeared, and what the run folder holds after.

    .venv/bin/python benchmarks/reliability_cases.py > docs/results/reliability-cases.md
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DERMKD = str(Path(sys.executable).with_name("dermkd"))
TINY = ["--profile", "tiny", "--threads", "1", "--synthetic-per-class", "16"]


def run(cwd: Path, *args: str, kill: signal.Signals | None = None, after_epochs: int = 1) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([DERMKD, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    if kill is not None:
        name = args[args.index("--name") + 1]
        history = cwd / "runs" / name / "history.csv"
        while not (history.is_file() and len(history.read_text().splitlines()) > after_epochs):
            time.sleep(0.02)
        proc.send_signal(kill)
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def status(cwd: Path, name: str) -> str:
    env = cwd / "runs" / name / "env.json"
    lock = cwd / "runs" / name / "run.lock"
    if not env.is_file():
        return "no run folder" if not (cwd / "runs" / name).exists() else "folder, no env.json"
    state = json.loads(env.read_text())
    return f"status {state['status']}" + (", lock left" if lock.exists() else "") + \
        (f", {len((cwd / 'runs' / name / 'history.csv').read_text().splitlines()) - 1} epochs in history"
         if (cwd / "runs" / name / "history.csv").is_file() else "")


def cases(cwd: Path) -> list[tuple[str, list[str], dict]]:
    (cwd / "bad.yaml").write_text("train: {epochs: three}\n")
    (cwd / "float.yaml").write_text("train: {epochs: 1.7}\n")
    (cwd / "bool.yaml").write_text("train: {epochs: true}\n")
    return [
        ("SIGKILL after 2 of 6 epochs", ["train", *TINY, "--epochs", "6", "--name", "k"],
         {"kill": signal.SIGKILL, "after_epochs": 2}),
        ("... the same command again", ["train", *TINY, "--epochs", "6", "--name", "k"], {}),
        ("Ctrl-C (SIGINT) after 1 epoch", ["train", *TINY, "--epochs", "6", "--name", "c"], {"kill": signal.SIGINT}),
        ("SIGTERM after 2 epochs", ["train", *TINY, "--epochs", "6", "--name", "t"],
         {"kill": signal.SIGTERM, "after_epochs": 2}),
        ("distill from the interrupted run", ["distill", "--teacher", "runs/t", *TINY, "--name", "s"], {}),
        ("... told to accept it", ["distill", "--teacher", "runs/t", *TINY, "--name", "s",
                                   "--allow-unfinished-teacher"], {}),
        ("finished run, other --epochs", ["train", *TINY, "--epochs", "3", "--name", "k"], {}),
        ("config epochs: three", ["train", *TINY, "--config", "bad.yaml", "--name", "y"], {}),
        ("config epochs: 1.7", ["train", *TINY, "--config", "float.yaml", "--name", "y"], {}),
        ("config epochs: true", ["train", *TINY, "--config", "bool.yaml", "--name", "y"], {}),
        ("unknown scheduler", ["train", *TINY, "--scheduler", "step", "--name", "y"], {}),
        ("evaluate a run folder without config", ["evaluate", "runs"], {}),
        ("evaluate a missing run", ["evaluate", "runs/nope"], {}),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        rows = []
        for title, args, how in cases(cwd):
            code, err = run(cwd, *args, **how)
            lines = [line for line in err.splitlines() if line.strip()]
            name = args[args.index("--name") + 1] if "--name" in args else "-"
            rows.append(f"| {title} | `dermkd {' '.join(args)}` | {code} | {lines[-1].strip() if lines else ''} | "
                        f"{'yes' if 'Traceback' in err else 'no'} | {status(cwd, name) if name != '-' else '-'} |")
    print("| case | command | exit | last stderr line | traceback | run folder after |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
