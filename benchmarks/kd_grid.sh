#!/usr/bin/env bash
# The KD grid on validation (src/dermkd/configs/study-kd-grid.yaml), as two studies side by
# side at one torch thread each (half the grid each, alpha 0.9 and alpha 0.5) into the same
# study folder; the second starts once the first has trained the shared teacher. Then
# `dermkd study` once more fills the results table with every finished run.
#   bash benchmarks/kd_grid.sh && python benchmarks/kd_grid.py runs/kd-grid
set -euo pipefail
DERMKD=${DERMKD:-.venv/bin/dermkd}
CONFIG=src/dermkd/configs/study-kd-grid.yaml
half() {  # $1: alpha
  local tmp; tmp=$(mktemp --suffix=.yaml)
  sed -e "s/alpha: \[0.5, 0.9\]/alpha: [$1]/" -e "s/^base:$/base:\n  train: {threads: 1}/" "$CONFIG" > "$tmp"
  "$DERMKD" study "$tmp" > "runs/kd-grid-a${1// /}.log" 2>&1
  rm -f "$tmp"
}
mkdir -p runs
half 0.9 & first=$!
until [ -f runs/kd-grid/teachers/efficientnet_lite0-s0/metrics.json ]; do
  kill -0 $first 2>/dev/null || { wait $first; exit $?; }
  sleep 20
done
sleep 240  # the first study builds the teacher-logit store; the second then reuses it
half 0.5
wait $first
half "0.5, 0.9"  # threads 1 as above, so every run is the same run
