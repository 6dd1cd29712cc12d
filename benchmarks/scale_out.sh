#!/usr/bin/env bash
# Issue 14's figures on this machine (docs/results/scale-out.md):
#  1. DDP: the DSC student on isic9 (cpu profile, 2 epochs), 1 process x 2 threads, batch 32,
#     against 2 processes x 1 thread (gloo), batch 16 per process (the same effective batch 32);
#  2. the Ray backend (a local instance, 1 CPU per run) against the local backend on one
#     small study (benchmarks/scale-out-study.yaml), results tables compared;
#  3. the MLflow runs of that study, listed with `mlflow runs list`.
#   bash benchmarks/scale_out.sh   # about 10 minutes on 2 quiet cores
set -euo pipefail
DERMKD=${DERMKD:-.venv/bin/dermkd}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/scale-out}
DATA=${DATA:-../shared/data/isic9/Train}
mkdir -p "$OUT"
timed() {  # $1: log name; the rest: the command
  local name=$1; shift
  /usr/bin/time -f "%e s wall, %M KiB peak RSS" -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: $(cat "$OUT/$name.time")"
}
common=(train --profile cpu --data "$DATA" --model dsc --epochs 2 --out "$OUT" --no-progress --fresh)
timed ddp1 "$DERMKD" "${common[@]}" --name ddp1 --batch-size 32 --threads 2
timed ddp2 "$DERMKD" "${common[@]}" --name ddp2 --batch-size 16 --threads 1 --devices 2 --parallel ddp_fork
"$PY" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("ddp1", "ddp2"):
    m = json.load(open(f"{out}/{name}/metrics.json")); env = json.load(open(f"{out}/{name}/env.json"))
    print(name, env["parallel"], {k: round(m[k], 4) for k in ("top1_accuracy", "balanced_accuracy", "log_loss")},
          "wall", m["wall_seconds"], "s")
PY
rm -rf "$OUT/local" "$OUT/ray"
timed study-local "$DERMKD" study benchmarks/scale-out-study.yaml --out "$OUT/local"
timed study-ray "$DERMKD" study benchmarks/scale-out-study.yaml --out "$OUT/ray" --backend ray --tracker mlflow
"$PY" - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
def table(d):
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in csv.DictReader(open(f"{out}/{d}/scale-out/results.csv"))]
a, b = table("local"), table("ray")
print(f"results tables, wall_seconds aside: {'identical' if a == b else 'DIFFERENT'} ({len(a)} rows)")
PY
exp=$(MLFLOW_ALLOW_FILE_STORE=true "$PY" -c "import mlflow.tracking as t, pathlib; print(t.MlflowClient(pathlib.Path('$OUT/ray/scale-out/mlruns').resolve().as_uri()).get_experiment_by_name('scale-out').experiment_id)")
MLFLOW_ALLOW_FILE_STORE=true MLFLOW_TRACKING_URI="$(realpath "$OUT/ray/scale-out/mlruns" | sed 's|^|file://|')" \
  .venv/bin/mlflow runs list --experiment-id "$exp"
