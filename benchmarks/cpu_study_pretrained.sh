#!/usr/bin/env bash
# src/dermkd/configs/study-cpu-pretrained.yaml as two 1-thread halves side by side into one
# study folder (2 cores): the Table 4 sweep (it trains the shared teacher first) and the
# other sweeps, baselines first (they need no teacher; by the time the rest do, it is done).
# A last pass with the whole file fills the results table; then the report.
#   bash benchmarks/cpu_study_pretrained.sh && dermkd report runs/cpu-pretrained
set -euo pipefail
DERMKD=${DERMKD:-.venv/bin/dermkd}
PYTHON=${PYTHON:-.venv/bin/python}
CONFIG=src/dermkd/configs/study-cpu-pretrained.yaml
part() {  # $1: a log name; $2...: the sweeps to keep
  local log=$1; shift
  local tmp; tmp=$(mktemp --suffix=.yaml)
  "$PYTHON" - "$CONFIG" "$tmp" "$@" <<'PY'
import sys, yaml
src, dst, *keep = sys.argv[1:]
study = yaml.safe_load(open(src))
study["sweeps"] = {k: v for k, v in study["sweeps"].items() if k in keep}
study["base"].setdefault("train", {})["threads"] = 1
yaml.safe_dump(study, open(dst, "w"), sort_keys=False)
PY
  "$DERMKD" study "$tmp" > "runs/cpu-pretrained-$log.log" 2>&1 || true
  rm -f "$tmp"
}
mkdir -p runs
part table4 table4 & first=$!
sleep 60  # the first one pins the study's split
part rest strategies objectives kd_multiplier
wait $first
part all table4 strategies objectives kd_multiplier
